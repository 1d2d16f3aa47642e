/**
 * Relay signing-key certificates (docs/protocol.md §8.2.3, §8.6): the
 * authority layout with the relay contexts; truncated, oversized and
 * malformed input refused with a reason; a relay certificate never passes
 * for an authority one or the reverse; descriptors and link certificates
 * checked against the certificate's window.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { concat, utf8 } from '../../src/bytes.js';
import { crypto } from '../../src/crypto/crypto.js';
import { DocumentError } from '../../src/errors.js';
import {
  CERT_CONTEXTS,
  SIGNING_KEY_CERT_LENGTH,
  certTimeProblem,
  decodeSigningKeyCert,
  makeSigningKeyCert,
} from '../../src/netdoc/signing-key-cert.js';
import { decodeAuthorityCert, makeAuthorityCert } from '../../src/netdoc/authority-cert.js';
import { encodeDescriptor, parseDescriptor } from '../../src/netdoc/descriptor.js';
import { signLinkCertificate } from '../../src/link/link-handshake.js';
import { makeDescriptor, relayKeys, relaySigner, seedOf, T0 } from './helpers.js';

const code = (c: string) => (e: unknown) => e instanceof DocumentError && e.code === c;
const DAY = 86_400_000;
const HOUR = 3600_000;

test('relay certificate layout: the authority layout with the relay contexts', () => {
  const cert = makeSigningKeyCert('relay', seedOf(1), seedOf(2), T0, T0 + DAY);
  const b = cert.bytes;
  assert.equal(b.length, SIGNING_KEY_CERT_LENGTH);
  assert.equal(b[0], 1);
  assert.deepEqual(b.subarray(1, 33), crypto.ed25519PublicKey(seedOf(1)));
  assert.deepEqual(b.subarray(33, 65), crypto.ed25519PublicKey(seedOf(2)));
  assert.equal(Buffer.from(b).readUInt32BE(65), T0 / 1000);
  assert.equal(Buffer.from(b).readUInt32BE(69), (T0 + DAY) / 1000);
  assert.equal(CERT_CONTEXTS.relay.cert, 'allium-relay-cert-v1');
  assert.equal(CERT_CONTEXTS.relay.cross, 'allium-relay-cross-cert-v1');
  assert.ok(crypto.ed25519Verify(cert.signingKey, concat(utf8('allium-relay-cross-cert-v1'), cert.identity, b.subarray(69, 73)), b.subarray(73, 137)));
  assert.ok(crypto.ed25519Verify(cert.identity, concat(utf8('allium-relay-cert-v1'), b.subarray(0, 73)), b.subarray(137)));
  assert.deepEqual(decodeSigningKeyCert('relay', b), cert);
});

test('truncated, oversized and malformed relay certificates are refused with the reason', () => {
  const cert = makeSigningKeyCert('relay', seedOf(1), seedOf(2), T0, T0 + DAY);
  for (let n = 0; n < SIGNING_KEY_CERT_LENGTH; n++) {
    assert.throws(() => decodeSigningKeyCert('relay', cert.bytes.subarray(0, n)), code('ERR_MALFORMED'), `${n} bytes`);
  }
  assert.throws(() => decodeSigningKeyCert('relay', concat(cert.bytes, new Uint8Array(1))), /relay signing-key certificate: expected 201 bytes, got 202/);
  assert.throws(() => decodeSigningKeyCert('relay', new Uint8Array(100_000)), code('ERR_MALFORMED'));
  const edit = (at: number, value: number) => {
    const copy = cert.bytes.slice();
    copy[at] = value;
    return copy;
  };
  assert.throws(() => decodeSigningKeyCert('relay', edit(0, 0)), /unknown version 0/);
  // expires not after published, and a lifetime over 400 days: malformed before any signature is checked.
  const times = (published: number, expires: number) => {
    const copy = cert.bytes.slice();
    Buffer.from(copy.buffer, copy.byteOffset).writeUInt32BE(published, 65);
    Buffer.from(copy.buffer, copy.byteOffset).writeUInt32BE(expires, 69);
    return copy;
  };
  assert.throws(() => decodeSigningKeyCert('relay', times(T0 / 1000, T0 / 1000)), /expires must be after published/);
  assert.throws(() => decodeSigningKeyCert('relay', times(T0 / 1000, T0 / 1000 + 401 * 86_400)), /lifetime longer than 400 days/);
  // The signing key equal to the identity key.
  assert.throws(() => makeSigningKeyCert('relay', seedOf(1), seedOf(1), T0, T0 + DAY), /must differ from the identity key/);
  // Every other changed byte: forged (one of the two signatures fails).
  for (const at of [1, 32, 33, 64, 68, 72, 73, 136, 137, 200]) {
    assert.throws(() => decodeSigningKeyCert('relay', edit(at, cert.bytes[at]! ^ 0x04)), code('ERR_BAD_SIGNATURE'), `byte ${at}`);
  }
  // Random bytes of the right length never decode.
  for (let i = 0; i < 50; i++) {
    const junk = crypto.randomBytes(SIGNING_KEY_CERT_LENGTH);
    junk[0] = 1;
    assert.throws(() => decodeSigningKeyCert('relay', junk), (e: unknown) => e instanceof DocumentError);
  }
});

test('a relay certificate is not an authority certificate, nor the reverse', () => {
  const relay = makeSigningKeyCert('relay', seedOf(1), seedOf(2), T0, T0 + DAY);
  const authority = makeAuthorityCert(seedOf(1), seedOf(2), T0, T0 + DAY);
  assert.notDeepEqual(relay.bytes, authority.bytes);
  assert.throws(() => decodeAuthorityCert(relay.bytes), code('ERR_BAD_SIGNATURE'));
  assert.throws(() => decodeSigningKeyCert('relay', authority.bytes), code('ERR_BAD_SIGNATURE'));
  assert.deepEqual(decodeAuthorityCert(authority.bytes), authority);
});

test('descriptors: the certificate must cover the publication time and, with a clock, now', () => {
  const keys = relayKeys(1);
  const text = encodeDescriptor(makeDescriptor(keys), keys.signer); // certified T0 − 1 day .. T0 + 30 days
  assert.ok(parseDescriptor(text, { now: T0 }));
  const lateInLife = encodeDescriptor(makeDescriptor(keys, { published: T0 + 29 * DAY }), keys.signer);
  assert.ok(parseDescriptor(lateInLife, { now: T0 + 30 * DAY + HOUR - 1000 }).descriptor, 'one hour of skew after the expiry');
  assert.throws(() => parseDescriptor(lateInLife, { now: T0 + 30 * DAY + HOUR + 1000 }), /signing-key certificate expired at 2030-02-01 03:04:05/);
  // Published after the certificate expired: refused even without a clock.
  const late = relaySigner(1, T0, { published: T0 - 10 * DAY, expires: T0 - DAY });
  const lateKeys = { ...keys, signer: late, linkCert: signLinkCertificate(late, keys.linkKey) };
  const lateText = encodeDescriptor(makeDescriptor(lateKeys), late);
  assert.throws(() => parseDescriptor(lateText), /outside its signing-key certificate's lifetime/);
  assert.throws(() => parseDescriptor(lateText, { now: T0 }), /signing-key certificate expired at/);
  // Not yet valid at now (beyond the skew).
  const early = relaySigner(1, T0, { published: T0 + 2 * HOUR, expires: T0 + DAY });
  const earlyKeys = { ...keys, signer: early, linkCert: signLinkCertificate(early, keys.linkKey) };
  assert.throws(() => parseDescriptor(encodeDescriptor(makeDescriptor(earlyKeys, { published: T0 + 2 * HOUR }), early), { now: T0 }), /not valid before/);
  // The signer must match the descriptor's identity and link certificate.
  assert.throws(() => encodeDescriptor(makeDescriptor(keys), relaySigner(2)), /not certified for this identity/);
  assert.throws(() => encodeDescriptor(makeDescriptor(keys), relaySigner(1, T0 + DAY)), /link-cert carries another signing-key certificate/);
});

test('certTimeProblem: the window with skew', () => {
  const cert = makeSigningKeyCert('relay', seedOf(1), seedOf(2), T0, T0 + DAY);
  assert.equal(certTimeProblem(cert, T0, 0), null);
  assert.equal(certTimeProblem(cert, T0 + DAY, 0), null);
  assert.match(certTimeProblem(cert, T0 + DAY + 1, 0)!, /expired at/);
  assert.equal(certTimeProblem(cert, T0 + DAY + HOUR, HOUR), null);
  assert.match(certTimeProblem(cert, T0 - 1, 0)!, /not valid before/);
});
