/**
 * The server side of the SOCKS5 handshake as a sans-IO state machine: feed it
 * the client's bytes, write out whatever it returns in `send`, and stop when it
 * returns a `request` (handshake done) or an `error` (write `send`, then close).
 *
 * Methods: username/password (RFC 1929), preferred when offered, with any
 * credentials accepted (they are the stream-isolation key, as in Tor), and
 * no-auth. Commands: CONNECT only. Hostnames are never resolved here: a domain
 * goes through as a string, once src/net/hostname.ts has found it a valid
 * hostname or IP literal; anything else gets reply 0x04 (host unreachable)
 * before a byte leaves the machine. docs/protocol.md §12.
 */
import { AlliumError, DecodeError, ProtocolError, malformed, oversized } from '../../src/errors.js';
import { parseDestination } from '../../src/net/hostname.js';
import { SocksReply } from './replies.js';
import { concat } from '../../src/bytes.js';
import {
  AuthMethod,
  MAX_AUTH_REQUEST_BYTES,
  MAX_GREETING_BYTES,
  MAX_REQUEST_BYTES,
  SOCKS_VERSION,
  SocksCommandCode,
  type AddressType,
  decodeAuthRequest,
  decodeGreeting,
  decodeRequest,
  encodeAuthReply,
  encodeMethodSelection,
  isKnownAddressType,
  replyBytes,
} from './messages.js';

export interface SocksRequest {
  command: 'connect';
  /** Canonical (src/net/hostname.ts): a lower-case hostname, or an IP address in canonical text (no brackets). */
  host: string;
  port: number;
  addressType: AddressType;
  /** Present when the client authenticated with RFC 1929 (binary strings). */
  username?: string;
  password?: string;
}

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

type State = 'greeting' | 'auth' | 'request' | 'done' | 'failed';

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
        return this.#fail(out, err);
      }
      throw err;
    }
  }

  /** Process one message if it is complete: a terminal step, 'progress', or 'more' (need input). */
  #advance(out: Uint8Array[]): HandshakeStep | 'progress' | 'more' {
    switch (this.#state) {
      case 'greeting': {
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
          if (b[1] !== SocksCommandCode.CONNECT) {
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
        const destination = parseDestination(d.value.host);
        if (destination.type === 'invalid') {
          // Not a name any exit could look up: refused here, as an exit would (RESOLVEFAILED → 0x04).
          out.push(replyBytes(SocksReply.HOST_UNREACHABLE));
          return this.#fail(out, malformed(`socks request: not a valid destination (${destination.why})`));
        }
        const request: SocksRequest = {
          command: 'connect',
          host: destination.host,
          port: d.value.port,
          addressType: d.value.addressType,
        };
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
      default:
        return this.#fail(out, new ProtocolError(`socks handshake: feed in state ${this.#state}`));
    }
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
