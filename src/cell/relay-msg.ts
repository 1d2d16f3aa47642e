/**
 * Typed relay messages (docs/protocol.md §6): one readonly type per relay
 * command, told apart by `kind`, and one codec table that maps each kind to
 * Tor's command number and its body encoder and decoder. A message is only
 * the body of a relay cell; the stream id and the 11-byte header belong to
 * src/cell/relay-cell.ts, and the crypto to src/crypto/onion-layer.ts.
 *
 *   const { command, body } = encodeRelayMsg({ kind: 'end', reason: EndReason.DONE });
 *   const msg = decodeRelayMsg(cell.command, cell.data);   // switch (msg.kind) { ... }
 *
 * Unknown commands (and the obsolete EXTEND / EXTENDED) decode as
 * `unrecognized`, so the role code decides how to reject them. Body layouts
 * live next to their codecs: stream-messages.ts (BEGIN, CONNECTED, END,
 * RESOLVE, RESOLVED), extend2.ts, sendme.ts, flow-messages.ts (XON, XOFF);
 * the trivial ones are here.
 * To add a message: its interface, a union member and one CODECS entry here.
 */
import { RELAY_DATA_LENGTH } from '../constants.js';
import { malformed, oversized, truncated } from '../errors.js';
import { decodeExtend2, decodeExtended2, encodeExtend2, encodeExtended2, type LinkSpecifier } from './extend2.js';
import { RelayCommand, isCircuitCommand, writeRelayFields, type PaddingSource } from './relay-cell.js';
import { decodeSendme, encodeSendmeV1 } from './sendme.js';
import { decodeXoff, decodeXon, encodeXoff, encodeXon } from './flow-messages.js';
import {
  decodeBegin,
  decodeConnected,
  decodeEndBody,
  decodeResolve,
  decodeResolved,
  encodeBegin,
  encodeConnected,
  encodeEnd,
  encodeResolve,
  encodeResolved,
  type ResolvedAnswer,
} from './stream-messages.js';

export type { LinkSpecifier } from './extend2.js';
export type { ResolvedAnswer } from './stream-messages.js';

/** BEGIN (1): open a stream to host:port at this hop (an exit). */
export interface Begin {
  readonly kind: 'begin';
  /** A hostname, an IPv4 address or an IPv6 address (without brackets). */
  readonly host: string;
  /** 1..65535. */
  readonly port: number;
  /** Tor's BEGIN flags, u32 (0 when absent). */
  readonly flags: number;
}

/** DATA (2): stream bytes, at most 498. Decoded data is a view into the cell, not a copy. */
export interface Data {
  readonly kind: 'data';
  readonly data: Uint8Array;
}

/** END (3): close a stream. `address` (and optionally `ttl`) only with reason EXITPOLICY. */
export interface End {
  readonly kind: 'end';
  /** src/cell/reasons.ts EndReason; an empty body decodes as MISC. */
  readonly reason: number;
  readonly address?: string;
  /** Seconds, u32; only with `address`. */
  readonly ttl?: number;
}

/** CONNECTED (4): the exit reached the destination. */
export interface Connected {
  readonly kind: 'connected';
  /** IPv4 or IPv6 text, or null for an empty body. */
  readonly address: string | null;
  /** Seconds, u32; 0 (and not sent) when `address` is null. */
  readonly ttl: number;
  /** Allium: the BEGIN flags the exit accepts (BeginFlag), non-zero; absent when none. Only with an address. */
  readonly flags?: number;
}

/** SENDME (5): flow-control credit. Version 1 carries the 20-byte digest; version 0 carries nothing. */
export interface Sendme {
  readonly kind: 'sendme';
  readonly version: 0 | 1;
  /** 20 bytes for version 1, null for version 0. */
  readonly digest: Uint8Array | null;
}

/** EXTEND2 (14): extend the circuit by one hop. */
export interface Extend2 {
  readonly kind: 'extend2';
  readonly specifiers: LinkSpecifier[];
  /** u16; 3 is ntor v3. */
  readonly handshakeType: number;
  readonly handshakeData: Uint8Array;
}

/** EXTENDED2 (15): the new hop's CREATED2 handshake data. */
export interface Extended2 {
  readonly kind: 'extended2';
  readonly handshakeData: Uint8Array;
}

/** TRUNCATE (8): drop the hops after this one. Empty body. */
export interface Truncate {
  readonly kind: 'truncate';
}

/** TRUNCATED (9): the hops after the sender are gone; `reason` is a DESTROY reason. */
export interface Truncated {
  readonly kind: 'truncated';
  readonly reason: number;
}

/** DROP (10): long-range padding; its body is ignored and sent empty. */
export interface Drop {
  readonly kind: 'drop';
}

/** RESOLVE (11): look a hostname up at the exit (an in-addr.arpa / ip6.arpa name for a reverse lookup). */
export interface Resolve {
  readonly kind: 'resolve';
  readonly hostname: string;
}

/** RESOLVED (12): the answers to a RESOLVE (possibly none). */
export interface Resolved {
  readonly kind: 'resolved';
  readonly answers: ResolvedAnswer[];
}

/** BEGIN_DIR (13): open a stream to this hop's directory service. Empty body. */
export interface BeginDir {
  readonly kind: 'begin_dir';
}

/**
 * XOFF (43): stop sending on this stream (congestion-controlled circuits
 * only, docs/protocol.md §7.4). Body: version 0.
 */
export interface Xoff {
  readonly kind: 'xoff';
}

/**
 * XON (44): resume sending on this stream; `kbpsEwma` is the receiver's
 * advisory drain rate in units of 1000 bytes per second (u32), 0 = no limit.
 */
export interface Xon {
  readonly kind: 'xon';
  readonly kbpsEwma: number;
}

/**
 * FIN (240, Allium's, docs/protocol.md §6.4): the sender sends no more DATA on
 * this stream and still receives. Only on streams that negotiated half-close.
 * Empty body.
 */
export interface Fin {
  readonly kind: 'fin';
}

/** Any other command, body kept as received (a view). */
export interface Unrecognized {
  readonly kind: 'unrecognized';
  /** 0..255, not one of the commands above. */
  readonly command: number;
  readonly body: Uint8Array;
}

export type RelayMsg =
  | Begin
  | Data
  | End
  | Connected
  | Sendme
  | Extend2
  | Extended2
  | Truncate
  | Truncated
  | Drop
  | Resolve
  | Resolved
  | BeginDir
  | Xoff
  | Xon
  | Fin
  | Unrecognized;

export type RelayMsgKind = RelayMsg['kind'];
type KnownKind = Exclude<RelayMsgKind, 'unrecognized'>;
type MsgOf<K extends RelayMsgKind> = Extract<RelayMsg, { kind: K }>;

interface MsgCodec<K extends KnownKind> {
  readonly command: number;
  /** `body` is the whole message body, at most 498 bytes. */
  decode(body: Uint8Array): MsgOf<K>;
  encode(msg: MsgOf<K>): Uint8Array;
}

const EMPTY = new Uint8Array(0);

function expectEmpty(body: Uint8Array, what: string): void {
  if (body.length !== 0) throw malformed(`${what}: body must be empty, got ${body.length} bytes`);
}

/** The one table of relay messages: kind → command number and body codec. */
const CODECS: { readonly [K in KnownKind]: MsgCodec<K> } = {
  begin: {
    command: RelayCommand.BEGIN,
    decode: (body) => ({ kind: 'begin', ...decodeBegin(body) }),
    encode: (m) => encodeBegin(m),
  },
  data: {
    command: RelayCommand.DATA,
    decode: (body) => ({ kind: 'data', data: body }),
    encode: (m) => {
      if (!(m.data instanceof Uint8Array)) throw new TypeError('DATA: expected Uint8Array');
      return m.data;
    },
  },
  end: {
    command: RelayCommand.END,
    decode: (body) => ({ kind: 'end', ...decodeEndBody(body) }),
    encode: (m) => encodeEnd(m),
  },
  connected: {
    command: RelayCommand.CONNECTED,
    decode: (body) => ({ kind: 'connected', ...decodeConnected(body) }),
    encode: (m) => encodeConnected(m.address, m.ttl, m.flags ?? 0),
  },
  sendme: {
    command: RelayCommand.SENDME,
    decode: (body) => {
      const digest = decodeSendme(body);
      return { kind: 'sendme', version: digest === null ? 0 : 1, digest };
    },
    encode: (m) => {
      if (m.version === 1) return encodeSendmeV1(m.digest ?? EMPTY);
      if (m.version !== 0 || m.digest !== null) throw new RangeError('SENDME: version 0 carries no digest; only 0 and 1 exist');
      return EMPTY;
    },
  },
  extend2: {
    command: RelayCommand.EXTEND2,
    decode: (body) => ({ kind: 'extend2', ...decodeExtend2(body) }),
    encode: (m) => encodeExtend2(m),
  },
  extended2: {
    command: RelayCommand.EXTENDED2,
    decode: (body) => ({ kind: 'extended2', handshakeData: decodeExtended2(body) }),
    encode: (m) => encodeExtended2(m.handshakeData),
  },
  truncate: {
    command: RelayCommand.TRUNCATE,
    decode: (body) => {
      expectEmpty(body, 'TRUNCATE');
      return { kind: 'truncate' };
    },
    encode: () => EMPTY,
  },
  truncated: {
    command: RelayCommand.TRUNCATED,
    decode: (body) => {
      if (body.length === 0) throw truncated('TRUNCATED');
      if (body.length > 1) throw malformed(`TRUNCATED: ${body.length - 1} bytes after the reason`);
      return { kind: 'truncated', reason: body[0]! };
    },
    encode: (m) => {
      if (!Number.isInteger(m.reason) || m.reason < 0 || m.reason > 0xff) throw new RangeError(`TRUNCATED: reason ${m.reason} is not a u8`);
      return Uint8Array.of(m.reason);
    },
  },
  drop: {
    command: RelayCommand.DROP,
    decode: () => ({ kind: 'drop' }),
    encode: () => EMPTY,
  },
  resolve: {
    command: RelayCommand.RESOLVE,
    decode: (body) => ({ kind: 'resolve', hostname: decodeResolve(body) }),
    encode: (m) => encodeResolve(m.hostname),
  },
  resolved: {
    command: RelayCommand.RESOLVED,
    decode: (body) => ({ kind: 'resolved', answers: decodeResolved(body) }),
    encode: (m) => encodeResolved(m.answers),
  },
  begin_dir: {
    command: RelayCommand.BEGIN_DIR,
    decode: (body) => {
      expectEmpty(body, 'BEGIN_DIR');
      return { kind: 'begin_dir' };
    },
    encode: () => EMPTY,
  },
  xoff: {
    command: RelayCommand.XOFF,
    decode: (body) => {
      decodeXoff(body);
      return { kind: 'xoff' };
    },
    encode: () => encodeXoff(),
  },
  xon: {
    command: RelayCommand.XON,
    decode: (body) => ({ kind: 'xon', kbpsEwma: decodeXon(body) }),
    encode: (m) => encodeXon(m.kbpsEwma),
  },
  fin: {
    command: RelayCommand.FIN,
    decode: (body) => {
      expectEmpty(body, 'FIN');
      return { kind: 'fin' };
    },
    encode: () => EMPTY,
  },
};

type AnyCodec = MsgCodec<KnownKind> & { encode(msg: RelayMsg): Uint8Array };

/** command number → codec, for decoding. */
const BY_COMMAND: ReadonlyArray<AnyCodec | undefined> = (() => {
  const table = new Array<AnyCodec | undefined>(256).fill(undefined);
  for (const codec of Object.values(CODECS)) table[codec.command] = codec as AnyCodec;
  return table;
})();

/**
 * Decode the body of a relay cell whose command is `command` (a byte).
 * `body` is the cell's meaningful data (at most 498 bytes); decoded byte
 * fields are views into it. Unknown commands give `unrecognized`.
 * Throws DecodeError: ERR_OVERSIZED for a body over 498 bytes, ERR_TRUNCATED
 * or ERR_MALFORMED as each body format says (docs/protocol.md §6.3, §6.6, §7).
 * RangeError if `command` is not a byte.
 */
export function decodeRelayMsg(command: number, body: Uint8Array): RelayMsg {
  if (body.length > RELAY_DATA_LENGTH) throw oversized(`relay message body of ${body.length} bytes`);
  const codec = BY_COMMAND[command];
  if (codec !== undefined) return codec.decode(body);
  if ((command & 0xff) !== command) throw new RangeError(`relay command ${command} is not a byte`);
  return { kind: 'unrecognized', command, body };
}

/**
 * Encode a message as a relay command and body, ready for writeRelayCell.
 * DATA and `unrecognized` bodies are returned as given (no copy).
 * Throws DecodeError ERR_OVERSIZED if the body would exceed 498 bytes, and
 * RangeError / TypeError for values the format cannot carry (each codec
 * says which), or an `unrecognized` message whose command is a known one.
 */
export function encodeRelayMsg(msg: RelayMsg): { command: number; body: Uint8Array } {
  let command: number;
  let body: Uint8Array;
  if (msg.kind === 'unrecognized') {
    command = msg.command;
    if (!Number.isInteger(command) || command < 0 || command > 0xff) throw new RangeError(`relay command ${command} is not a byte`);
    if (BY_COMMAND[command] !== undefined) throw new RangeError(`relay command ${command} has a typed message; encode that instead`);
    if (!(msg.body instanceof Uint8Array)) throw new TypeError('unrecognized relay message: body must be a Uint8Array');
    body = msg.body;
  } else {
    const codec = CODECS[msg.kind] as AnyCodec | undefined;
    if (codec === undefined) throw new RangeError(`unknown relay message kind ${String((msg as { kind: unknown }).kind)}`);
    command = codec.command;
    body = codec.encode(msg);
  }
  if (body.length > RELAY_DATA_LENGTH) throw oversized(`relay message body of ${body.length} bytes`);
  return { command, body };
}

/**
 * Encode `msg` for stream `streamId` straight into `payload`, a zero-filled
 * 509-byte relay payload (as writeRelayCell does), ready for OnionLayer.seal().
 * DATA goes through without any intermediate object. Throws as
 * encodeRelayMsg and writeRelayCell do.
 */
export function writeRelayMsg(payload: Uint8Array, streamId: number, msg: RelayMsg, padding?: PaddingSource): void {
  if (msg.kind === 'data') {
    if (!(msg.data instanceof Uint8Array)) throw new TypeError('DATA: expected Uint8Array');
    writeRelayFields(payload, RelayCommand.DATA, streamId, msg.data, padding);
    return;
  }
  const { command, body } = encodeRelayMsg(msg);
  writeRelayFields(payload, command, streamId, body, padding);
}

/** Tor's command number for a message kind. RangeError for `unrecognized` (its command is in the message). */
export function relayCommandOf(kind: RelayMsgKind): number {
  if (kind === 'unrecognized') throw new RangeError("'unrecognized' has no fixed command; use msg.command");
  const codec = CODECS[kind] as AnyCodec | undefined;
  if (codec === undefined) throw new RangeError(`unknown relay message kind ${String(kind)}`);
  return codec.command;
}

/**
 * Whether the message concerns the whole circuit and so must travel with
 * stream id 0: EXTEND2, EXTENDED2, TRUNCATE, TRUNCATED, DROP (and the obsolete
 * EXTEND / EXTENDED as `unrecognized`). SENDME is false: it is circuit-level
 * with stream id 0 and stream-level otherwise, so its stream id decides.
 */
export function isCircuitLevel(msg: RelayMsg): boolean {
  switch (msg.kind) {
    case 'extend2':
    case 'extended2':
    case 'truncate':
    case 'truncated':
    case 'drop':
      return true;
    case 'unrecognized':
      return isCircuitCommand(msg.command);
    default:
      return false;
  }
}
