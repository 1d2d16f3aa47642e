/**
 * END and DESTROY reasons, with Tor's numbers: the single source of truth for
 * reason codes on the wire, their names, and how the SOCKS server reports them.
 * docs/protocol.md §8.
 */

export const EndReason = {
  MISC: 1,
  RESOLVEFAILED: 2,
  CONNECTREFUSED: 3,
  EXITPOLICY: 4,
  DESTROY: 5,
  DONE: 6,
  TIMEOUT: 7,
  NOROUTE: 8,
  HIBERNATING: 9,
  INTERNAL: 10,
  RESOURCELIMIT: 11,
  CONNRESET: 12,
  TORPROTOCOL: 13,
  NOTDIRECTORY: 14,
} as const;
export type EndReason = (typeof EndReason)[keyof typeof EndReason];

export const DestroyReason = {
  NONE: 0,
  PROTOCOL: 1,
  INTERNAL: 2,
  REQUESTED: 3,
  HIBERNATING: 4,
  RESOURCELIMIT: 5,
  CONNECTFAILED: 6,
  OR_IDENTITY: 7,
  CHANNEL_CLOSED: 8,
  FINISHED: 9,
  TIMEOUT: 10,
  DESTROYED: 11,
  NOSUCHSERVICE: 12,
} as const;
export type DestroyReason = (typeof DestroyReason)[keyof typeof DestroyReason];

/** RFC 1928 reply codes. */
export const SocksReply = {
  SUCCEEDED: 0x00,
  GENERAL_FAILURE: 0x01,
  NOT_ALLOWED: 0x02,
  NETWORK_UNREACHABLE: 0x03,
  HOST_UNREACHABLE: 0x04,
  CONNECTION_REFUSED: 0x05,
  TTL_EXPIRED: 0x06,
  COMMAND_NOT_SUPPORTED: 0x07,
  ADDRESS_TYPE_NOT_SUPPORTED: 0x08,
} as const;
export type SocksReply = (typeof SocksReply)[keyof typeof SocksReply];

function nameOf(table: Record<string, number>, value: number): string {
  for (const [name, v] of Object.entries(table)) if (v === value) return name;
  return `UNKNOWN(${value})`;
}

export function endReasonName(reason: number): string {
  return nameOf(EndReason, reason);
}

export function destroyReasonName(reason: number): string {
  return nameOf(DestroyReason, reason);
}

/** How the SOCKS server reports a stream that ended before CONNECTED. */
export function socksReplyForEnd(reason: number): SocksReply {
  switch (reason) {
    case EndReason.RESOLVEFAILED:
      return SocksReply.HOST_UNREACHABLE;
    case EndReason.CONNECTREFUSED:
      return SocksReply.CONNECTION_REFUSED;
    case EndReason.EXITPOLICY:
      return SocksReply.NOT_ALLOWED;
    case EndReason.TIMEOUT:
      return SocksReply.TTL_EXPIRED;
    case EndReason.NOROUTE:
      return SocksReply.NETWORK_UNREACHABLE;
    default:
      return SocksReply.GENERAL_FAILURE;
  }
}
