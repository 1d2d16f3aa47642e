/**
 * The server side of the SOCKS handshake as a sans-IO state machine: feed it
 * the client's bytes, write out whatever it returns in `send`, and stop when it
 * returns a `request` (handshake done) or an `error` (write `send`, then close).
 * The caller then owes the client one final reply: successReply(),
 * failureReply() or resolvedReply() below, in the request's SOCKS version.
 *
 * The first byte decides the version: 5 is SOCKS5, 4 is SOCKS4 or SOCKS4a
 * (DSTIP 0.0.0.x with a hostname after the USERID); anything else is closed
 * without a reply.
 *
 * SOCKS5 methods: username/password (RFC 1929), preferred when offered, with
 * any credentials accepted (they are the stream-isolation key, as in Tor), and
 * no-auth. A SOCKS4 USERID is the username (password ''). Commands: CONNECT,
 * and Tor's RESOLVE (0xF0, SOCKS5 and SOCKS4a) and RESOLVE_PTR (0xF1, SOCKS5,
 * an IP address). Hostnames are never resolved here: a domain goes through as
 * a string, once src/net/hostname.ts has found it a valid hostname or IP
 * literal (CONNECT and RESOLVE, SOCKS5 and SOCKS4a); anything else gets the
 * failure reply (SOCKS5 0x04 host unreachable, SOCKS4 0x5B rejected) before a
 * byte leaves the machine. docs/protocol.md §12.
 */
import { AlliumError, DecodeError, ProtocolError, malformed, oversized } from '../../src/errors.js';
import { parseDestination } from '../../src/net/hostname.js';
import { SocksReply } from './replies.js';
import { concat } from '../../src/bytes.js';
import { formatIp, parseIp } from '../../src/net/address.js';
import {
  AuthMethod,
  MAX_AUTH_REQUEST_BYTES,
  MAX_GREETING_BYTES,
  MAX_REQUEST_BYTES,
  SOCKS4_VERSION,
  SOCKS_VERSION,
  Socks4Reply,
  SocksCommandCode,
  type AddressType,
  decodeAuthRequest,
  decodeGreeting,
  decodeRequest,
  decodeSocks4Request,
  encodeAuthReply,
  encodeMethodSelection,
  encodeReply,
  encodeSocks4Reply,
  isKnownAddressType,
  replyBytes,
  socks4ReplyBytes,
} from './messages.js';

/** What the client asked for: a stream (CONNECT), or a lookup through the network (Tor's RESOLVE, RESOLVE_PTR). */
export type SocksCommand = 'connect' | 'resolve' | 'resolve_ptr';

export interface SocksRequest {
  /** 4 for SOCKS4 and SOCKS4a, 5 for SOCKS5: the final reply must use it. */
  version: 4 | 5;
  command: SocksCommand;
  /**
   * A hostname (resolved at the exit), or an IP address, in canonical text
   * (src/net/hostname.ts): a lower-case hostname, or canonical IP text (no
   * brackets). For RESOLVE_PTR always an IP address.
   */
  host: string;
  /** 0..65535; never 0 for a SOCKS4 CONNECT. Meaningless (often 0) for RESOLVE and RESOLVE_PTR. */
  port: number;
  addressType: AddressType;
  /** Present when the client authenticated with RFC 1929, or sent a non-empty SOCKS4 USERID (binary strings). */
  username?: string;
  password?: string;
}

/** A RESOLVE or RESOLVE_PTR answer for resolvedReply(): an address (ipv4/ipv6) or a name (hostname). */
export type SocksResolveAnswer = { type: 'ipv4' | 'ipv6' | 'hostname'; value: string };

export interface HandshakeStep {
  /** Bytes to write to the client (possibly several replies concatenated). */
  send?: Uint8Array;
  /** The handshake is complete; the caller now owes the client the final reply. */
  request?: SocksRequest;
  /** Bytes the client sent after the request (pipelined data), in order; with `request` only. */
  earlyData?: Uint8Array;
  /** Fatal: write `send` (if any), then close the connection. */
  error?: AlliumError;
  /** True while the handshake waits for more input. */
  needMore: boolean;
}

/**
 * Upper bound on handshake bytes: the largest greeting, RFC 1929 request and
 * request together. Every message is self-delimiting, so an honest client can
 * never hit it; it also caps what is buffered while a message is incomplete.
 */
export const MAX_HANDSHAKE_BYTES = MAX_GREETING_BYTES + MAX_AUTH_REQUEST_BYTES + MAX_REQUEST_BYTES;

type State = 'greeting' | 'auth' | 'request' | 'socks4' | 'done' | 'failed';

export interface SocksHandshakeOptions {
  /** Default MAX_HANDSHAKE_BYTES. */
  maxHandshakeBytes?: number;
}

export class SocksServerHandshake {
  #state: State = 'greeting';
  #buffer: Uint8Array = new Uint8Array(0);
  /** Bytes consumed by completed messages. */
  #consumed = 0;
  #username: string | undefined;
  #password: string | undefined;
  readonly #max: number;

  constructor(options: SocksHandshakeOptions = {}) {
    this.#max = options.maxHandshakeBytes ?? MAX_HANDSHAKE_BYTES;
  }

  get state(): State {
    return this.#state;
  }

  feed(bytes: Uint8Array): HandshakeStep {
    if (this.#state === 'done' || this.#state === 'failed') {
      return this.#fail(undefined, new ProtocolError(`socks handshake: input after the handshake ${this.#state === 'done' ? 'finished' : 'failed'}`));
    }
    // Copy: the caller's buffer may be reused, and early data must survive.
    this.#buffer = concat(this.#buffer, bytes);
    const out: Uint8Array[] = [];
    try {
      for (;;) {
        const step = this.#advance(out);
        if (step === 'progress') continue;
        if (step !== 'more') return step;
        if (this.#consumed + this.#buffer.length > this.#max) {
          return this.#fail(out, oversized('socks handshake: too many bytes without completing'));
        }
        return out.length > 0 ? { send: concat(...out), needMore: true } : { needMore: true };
      }
    } catch (err) {
      if (err instanceof DecodeError) {
        // A malformed request still gets a reply; earlier phases just close.
        if (this.#state === 'request') out.push(replyBytes(SocksReply.GENERAL_FAILURE));
        if (this.#state === 'socks4') out.push(socks4ReplyBytes(Socks4Reply.REJECTED));
        return this.#fail(out, err);
      }
      throw err;
    }
  }

  /** Process one message if it is complete: a terminal step, 'progress', or 'more' (need input). */
  #advance(out: Uint8Array[]): HandshakeStep | 'progress' | 'more' {
    switch (this.#state) {
      case 'greeting': {
        if (this.#consumed === 0 && this.#buffer[0] === SOCKS4_VERSION) {
          this.#state = 'socks4';
          return 'progress';
        }
        const d = decodeGreeting(this.#buffer);
        if (d === null) return 'more';
        this.#take(d.length);
        const methods = d.value.methods;
        if (methods.includes(AuthMethod.USERNAME_PASSWORD)) {
          out.push(encodeMethodSelection({ method: AuthMethod.USERNAME_PASSWORD }));
          this.#state = 'auth';
        } else if (methods.includes(AuthMethod.NO_AUTH)) {
          out.push(encodeMethodSelection({ method: AuthMethod.NO_AUTH }));
          this.#state = 'request';
        } else {
          out.push(encodeMethodSelection({ method: AuthMethod.NO_ACCEPTABLE }));
          return this.#fail(out, new ProtocolError('socks handshake: no acceptable authentication method'));
        }
        return 'progress';
      }
      case 'auth': {
        const d = decodeAuthRequest(this.#buffer);
        if (d === null) return 'more';
        this.#take(d.length);
        this.#username = d.value.username;
        this.#password = d.value.password;
        out.push(encodeAuthReply({ status: 0 }));
        this.#state = 'request';
        return 'progress';
      }
      case 'request': {
        const b = this.#buffer;
        // Reject what we cannot serve as soon as the header says so.
        if (b.length >= 4 && b[0] === SOCKS_VERSION && b[2] === 0) {
          if (commandOf(b[1]!) === null) {
            out.push(replyBytes(SocksReply.COMMAND_NOT_SUPPORTED));
            return this.#fail(out, new ProtocolError(`socks handshake: command ${b[1]!} not supported`));
          }
          if (!isKnownAddressType(b[3]!)) {
            out.push(replyBytes(SocksReply.ADDRESS_TYPE_NOT_SUPPORTED));
            return this.#fail(out, new ProtocolError(`socks handshake: address type ${b[3]!} not supported`));
          }
        }
        const d = decodeRequest(b);
        if (d === null) return 'more';
        this.#take(d.length);
        const command = commandOf(d.value.command)!;
        let host = d.value.host;
        if (command === 'resolve_ptr') {
          // A reverse lookup needs an address; a domain field may still spell one.
          const ip = parseIp(host);
          if (ip === null) {
            out.push(replyBytes(SocksReply.ADDRESS_TYPE_NOT_SUPPORTED));
            return this.#fail(out, new ProtocolError('socks handshake: RESOLVE_PTR of something that is not an IP address'));
          }
          host = formatIp(ip);
        }
        return this.#finish(out, { version: 5, command, host, port: d.value.port, addressType: d.value.addressType });
      }
      case 'socks4': {
        const d = decodeSocks4Request(this.#buffer);
        if (d === null) return 'more';
        this.#take(d.length);
        const { command: code, addressType, host, port, userId } = d.value;
        const command = code === SocksCommandCode.CONNECT ? 'connect' : code === SocksCommandCode.RESOLVE ? 'resolve' : null;
        if (command === null || (command === 'connect' && port === 0)) {
          out.push(socks4ReplyBytes(Socks4Reply.REJECTED));
          const why = command === null ? `command ${code} not supported over SOCKS4` : 'SOCKS4 CONNECT to port 0';
          return this.#fail(out, new ProtocolError(`socks handshake: ${why}`));
        }
        if (userId !== '') {
          this.#username = userId;
          this.#password = '';
        }
        return this.#finish(out, { version: 4, command, host, port, addressType });
      }
      default:
        return this.#fail(out, new ProtocolError(`socks handshake: feed in state ${this.#state}`));
    }
  }

  /**
   * The request is complete: check its destination, attach the credentials
   * and hand over what follows as early data. A CONNECT or RESOLVE whose host
   * is no hostname or IP literal (src/net/hostname.ts) is refused here, as an
   * exit would refuse it (RESOLVEFAILED): SOCKS5 0x04, SOCKS4 0x5B.
   */
  #finish(out: Uint8Array[], request: SocksRequest): HandshakeStep {
    if (request.command !== 'resolve_ptr') {
      const destination = parseDestination(request.host);
      if (destination.type === 'invalid') {
        out.push(failureReply(request, SocksReply.HOST_UNREACHABLE));
        return this.#fail(out, malformed(`socks request: not a valid destination (${destination.why})`));
      }
      request.host = destination.host;
    }
    if (this.#username !== undefined) {
      request.username = this.#username;
      request.password = this.#password ?? '';
    }
    this.#state = 'done';
    const earlyData = this.#buffer;
    this.#buffer = new Uint8Array(0);
    const step: HandshakeStep = { request, needMore: false };
    if (out.length > 0) step.send = concat(...out);
    if (earlyData.length > 0) step.earlyData = earlyData;
    return step;
  }

  #take(n: number): void {
    this.#consumed += n;
    this.#buffer = this.#buffer.subarray(n);
  }

  #fail(out: Uint8Array[] | undefined, error: AlliumError): HandshakeStep {
    this.#state = 'failed';
    this.#buffer = new Uint8Array(0);
    const step: HandshakeStep = { error, needMore: false };
    if (out !== undefined && out.length > 0) step.send = concat(...out);
    return step;
  }
}

/** SOCKS5 command byte → command, null for one we do not serve (BIND, UDP ASSOCIATE, unknown). */
function commandOf(code: number): SocksCommand | null {
  switch (code) {
    case SocksCommandCode.CONNECT:
      return 'connect';
    case SocksCommandCode.RESOLVE:
      return 'resolve';
    case SocksCommandCode.RESOLVE_PTR:
      return 'resolve_ptr';
    default:
      return null;
  }
}

/** The reply granting a CONNECT: SOCKS5 SUCCEEDED with 0.0.0.0:0, or SOCKS4 GRANTED. */
export function successReply(request: Pick<SocksRequest, 'version'>): Uint8Array {
  return request.version === 4 ? socks4ReplyBytes(Socks4Reply.GRANTED) : replyBytes(SocksReply.SUCCEEDED);
}

/** The failure reply: SOCKS5 `code` (./replies.ts) with 0.0.0.0:0, or SOCKS4 REJECTED (SOCKS4 has one failure code). */
export function failureReply(request: Pick<SocksRequest, 'version'>, code: SocksReply): Uint8Array {
  return request.version === 4 ? socks4ReplyBytes(Socks4Reply.REJECTED) : replyBytes(code);
}

/**
 * The reply to RESOLVE / RESOLVE_PTR, as Tor gives it: the answer in the
 * bound-address field with port 0 (SOCKS5: IPv4, IPv6 or a domain; SOCKS4a:
 * an IPv4 address in DSTIP). `null`, or an answer the version cannot carry
 * (SOCKS4 and anything but IPv4), is a failure: SOCKS5 HOST_UNREACHABLE,
 * SOCKS4 REJECTED.
 */
export function resolvedReply(request: Pick<SocksRequest, 'version'>, answer: SocksResolveAnswer | null): Uint8Array {
  if (request.version === 4) {
    if (answer?.type !== 'ipv4') return socks4ReplyBytes(Socks4Reply.REJECTED);
    return encodeSocks4Reply({ code: Socks4Reply.GRANTED, port: 0, address: answer.value });
  }
  if (answer === null) return replyBytes(SocksReply.HOST_UNREACHABLE);
  const addressType = answer.type === 'hostname' ? 'domain' : answer.type;
  return encodeReply({ reply: SocksReply.SUCCEEDED, addressType, host: answer.value, port: 0 });
}
