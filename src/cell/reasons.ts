/**
 * END and DESTROY reasons, with Tor's numbers: the single source of truth for
 * reason codes on the wire and their names. (How the SOCKS port reports an END
 * reason is the SOCKS server's: client/socks/replies.ts.)
 * docs/protocol.md §10.
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
