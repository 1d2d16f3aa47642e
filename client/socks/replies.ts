/**
 * SOCKS5 reply codes (RFC 1928 §6) and how the client's SOCKS port reports a
 * stream that failed before CONNECTED (docs/protocol.md §10, §12). The END
 * reasons themselves are the protocol core's (src/cell/reasons.ts); turning
 * them into SOCKS replies is this server's business.
 */
import { EndReason } from '../../src/cell/reasons.js';

/** RFC 1928 REP codes. */
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

/**
 * The reply for a stream that ended with END `reason` before CONNECTED, as
 * Tor maps it: DONE and CONNRESET before CONNECTED mean the destination
 * closed on us (connection refused); GENERAL_FAILURE for reasons without a
 * closer code. docs/protocol.md §10.
 */
export function socksReplyForEnd(reason: number): SocksReply {
  switch (reason) {
    case EndReason.RESOLVEFAILED:
    case EndReason.NOROUTE:
      return SocksReply.HOST_UNREACHABLE;
    case EndReason.CONNECTREFUSED:
    case EndReason.DONE:
    case EndReason.CONNRESET:
      return SocksReply.CONNECTION_REFUSED;
    case EndReason.EXITPOLICY:
      return SocksReply.NOT_ALLOWED;
    case EndReason.TIMEOUT:
      return SocksReply.TTL_EXPIRED;
    default:
      return SocksReply.GENERAL_FAILURE;
  }
}
