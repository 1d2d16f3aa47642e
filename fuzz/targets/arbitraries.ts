/**
 * fast-check generators shared by the fuzz targets: the grammar of the
 * values the protocol carries (addresses, hostnames, relay messages, link
 * specifiers), biased towards the edges each format has.
 */
import fc from 'fast-check';
import { RELAY_DATA_LENGTH } from '../../src/constants.js';
import { encodeRelayMsg, type RelayMsg, type ResolvedAnswer } from '../../src/cell/relay-msg.js';
import { LinkSpecifierType, targetToSpecifiers, type LinkSpecifier } from '../../src/cell/extend2.js';
import { EndReason } from '../../src/cell/reasons.js';
import { formatIPv6 } from '../../src/net/address.js';

export const byte = fc.integer({ min: 0, max: 255 });
export const u16 = fc.integer({ min: 0, max: 0xffff });
export const u32 = fc.integer({ min: 0, max: 0xffff_ffff });
export const port = fc.integer({ min: 1, max: 65535 });

export const bytes = (maxLength: number, minLength = 0): fc.Arbitrary<Uint8Array> => fc.uint8Array({ minLength, maxLength });

export const ipv4 = fc.tuple(byte, byte, byte, byte).map((b) => b.join('.'));

/** IPv6 text in canonical form, biased towards zero runs and IPv4-mapped addresses. */
export const ipv6 = fc
  .tuple(fc.array(fc.oneof(fc.constant(0), byte), { minLength: 16, maxLength: 16 }), fc.boolean())
  .map(([b, mapped]) => {
    const a = Uint8Array.from(b);
    if (mapped) a.set([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]);
    return formatIPv6(a);
  });

const HOST_CHARS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_'.split('');
export const hostname = fc.string({ unit: fc.constantFrom(...HOST_CHARS), minLength: 1, maxLength: 80 });
export const host = fc.oneof(hostname, ipv4, ipv6);

/** Printable ASCII, the alphabet of documents and HTTP. */
export const printable = (maxLength: number): fc.Arbitrary<string> =>
  fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength });

export const linkSpecifiers: fc.Arbitrary<LinkSpecifier[]> = fc.oneof(
  fc
    .record({ address: ipv4, port, identity: bytes(32, 32), linkKey: bytes(32, 32), v6: fc.option(bytes(18, 18)) })
    .map(({ v6, ...t }) => {
      const s = targetToSpecifiers(t);
      if (v6 !== null) s.push({ type: LinkSpecifierType.IPV6, body: v6 });
      return s;
    }),
  fc.array(fc.record({ type: fc.oneof(fc.constantFrom(0, 1, 2, 3, 128), byte), body: bytes(40) }), { maxLength: 6 }),
);

const resolvedAnswer: fc.Arbitrary<ResolvedAnswer> = fc.oneof(
  fc.record({ type: fc.constant('ipv4' as const), address: ipv4, ttl: u32 }),
  fc.record({ type: fc.constant('ipv6' as const), address: ipv6, ttl: u32 }),
  fc.record({ type: fc.constant('hostname' as const), hostname, ttl: u32 }),
  fc.record({ type: fc.constant('unrecognized' as const), code: fc.constantFrom(1, 2, 7, 0x20, 0xef, 0xff), value: bytes(30), ttl: u32 }),
);

/** Every relay message kind, with values inside and at the edges of what each body allows. */
export const relayMsg: fc.Arbitrary<RelayMsg> = fc.oneof(
  fc.record({ kind: fc.constant('begin' as const), host, port, flags: fc.oneof(fc.constant(0), u32) }),
  fc.record({ kind: fc.constant('data' as const), data: bytes(RELAY_DATA_LENGTH) }),
  fc.oneof(
    fc.record({ kind: fc.constant('end' as const), reason: byte }),
    fc.record({ kind: fc.constant('end' as const), reason: fc.constant(EndReason.EXITPOLICY), address: fc.oneof(ipv4, ipv6), ttl: u32 }),
    fc.record({ kind: fc.constant('end' as const), reason: fc.constant(EndReason.EXITPOLICY), address: fc.oneof(ipv4, ipv6) }),
  ),
  fc.record({ kind: fc.constant('connected' as const), address: fc.option(fc.oneof(ipv4, ipv6)), ttl: u32 }),
  fc.oneof(
    fc.constant({ kind: 'sendme' as const, version: 0 as const, digest: null }),
    fc.record({ kind: fc.constant('sendme' as const), version: fc.constant(1 as const), digest: bytes(20, 20) }),
  ),
  fc.record({ kind: fc.constant('extend2' as const), specifiers: linkSpecifiers, handshakeType: fc.oneof(fc.constant(3), u16), handshakeData: bytes(300) }),
  fc.record({ kind: fc.constant('extended2' as const), handshakeData: bytes(400) }),
  fc.constant({ kind: 'truncate' as const }),
  fc.record({ kind: fc.constant('truncated' as const), reason: byte }),
  fc.constant({ kind: 'drop' as const }),
  fc.record({ kind: fc.constant('resolve' as const), hostname }),
  fc.oneof(
    fc.record({ kind: fc.constant('resolved' as const), answers: fc.array(resolvedAnswer, { maxLength: 8 }) }),
    fc.record({ kind: fc.constant('resolved' as const), answers: fc.record({ type: fc.constant('error' as const), transient: fc.boolean(), ttl: u32 }).map((a) => [a]) }),
  ),
  fc.constant({ kind: 'begin_dir' as const }),
  fc.record({ kind: fc.constant('unrecognized' as const), command: fc.constantFrom(0, 6, 7, 16, 40, 200, 255), body: bytes(RELAY_DATA_LENGTH) }),
);

/** A relay message as command byte + body; a generated value the encoder refuses becomes an empty DROP-less body. */
export function relayMsgBytes(msg: RelayMsg): Uint8Array {
  try {
    const { command, body } = encodeRelayMsg(msg);
    const out = new Uint8Array(1 + body.length);
    out[0] = command;
    out.set(body, 1);
    return out;
  } catch {
    return Uint8Array.of(0);
  }
}
