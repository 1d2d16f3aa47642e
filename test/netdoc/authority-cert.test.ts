/**
 * Authority key certificates (docs/protocol.md §8.6) and the consensus
 * signatures made with certified signing keys: exact layout, forged and
 * malformed certificates, time windows, and the reasons a client names when
 * it refuses a consensus.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { concat, utf8 } from '../../src/bytes.js';
import { crypto } from '../../src/crypto/crypto.js';
import {
  AUTHORITY_CERT_LENGTH,
  CERT_CONTEXT,
  CROSS_CERT_CONTEXT,
  certTimeProblem,
  decodeAuthorityCert,
  makeAuthorityCert,
} from '../../src/netdoc/authority-cert.js';
import { encodeConsensus, encodeConsensusBody, signConsensusBody, verifyConsensus, type ConsensusBody } from '../../src/netdoc/consensus.js';
import { bodyDigest, checkSignature, parseSignatureArgs } from '../../src/netdoc/dir-signature.js';
import { DocumentError } from '../../src/errors.js';
import { authoritySigner, seedOf, T0 } from './helpers.js';

const code = (c: string) => (e: unknown) => e instanceof DocumentError && e.code === c;
const DAY = 86_400_000;

test('layout: version, identity, signing key, published, expires, cross-cert, certification (201 bytes)', () => {
  const identitySeed = seedOf(1);
  const signingSeed = seedOf(2);
  const cert = makeAuthorityCert(identitySeed, signingSeed, T0, T0 + DAY);
  const b = cert.bytes;
  assert.equal(b.length, AUTHORITY_CERT_LENGTH);
  assert.equal(b[0], 1);
  assert.deepEqual(b.subarray(1, 33), crypto.ed25519PublicKey(identitySeed));
  assert.deepEqual(b.subarray(33, 65), crypto.ed25519PublicKey(signingSeed));
  assert.equal(Buffer.from(b).readUInt32BE(65), T0 / 1000);
  assert.equal(Buffer.from(b).readUInt32BE(69), (T0 + DAY) / 1000);
  // The cross-certificate: the signing key over the context, the identity and expires.
  const expires = b.subarray(69, 73);
  assert.ok(crypto.ed25519Verify(cert.signingKey, concat(utf8(CROSS_CERT_CONTEXT), cert.identity, expires), b.subarray(73, 137)));
  // The certification: the identity key over the context and the first 73 bytes.
  assert.ok(crypto.ed25519Verify(cert.identity, concat(utf8(CERT_CONTEXT), b.subarray(0, 73)), b.subarray(137)));
  const back = decodeAuthorityCert(b);
  assert.deepEqual(back, cert);
  // Ed25519 signatures are deterministic, so the bytes are a fixed function of the inputs.
  assert.deepEqual(makeAuthorityCert(identitySeed, signingSeed, T0, T0 + DAY).bytes, b);
});

test('malformed and forged certificates are refused with the reason', () => {
  const cert = makeAuthorityCert(seedOf(1), seedOf(2), T0, T0 + DAY);
  assert.throws(() => decodeAuthorityCert(cert.bytes.subarray(0, 200)), code('ERR_MALFORMED'));
  assert.throws(() => decodeAuthorityCert(concat(cert.bytes, new Uint8Array(1))), code('ERR_MALFORMED'));
  assert.throws(() => decodeAuthorityCert(new Uint8Array(0)), code('ERR_MALFORMED'));
  const edit = (at: number, value: number) => {
    const copy = cert.bytes.slice();
    copy[at] = value;
    return copy;
  };
  assert.throws(() => decodeAuthorityCert(edit(0, 2)), /unknown version 2/);
  // Any changed byte of the signed part or of a signature: forged.
  for (const at of [1, 40, 66, 72, 80, 150, 200]) {
    assert.throws(() => decodeAuthorityCert(edit(at, cert.bytes[at]! ^ 0x01)), (e: unknown) => e instanceof DocumentError && /does not verify/.test(e.message), `byte ${at}`);
  }
  // A certification by another identity over someone's signing key: forged.
  const other = makeAuthorityCert(seedOf(3), seedOf(2), T0, T0 + DAY);
  const spliced = concat(cert.bytes.subarray(0, 137), other.bytes.subarray(137));
  assert.throws(() => decodeAuthorityCert(spliced), /forged certificate/);
  // Fields the format refuses.
  assert.throws(() => makeAuthorityCert(seedOf(1), seedOf(1), T0, T0 + DAY), /must differ/);
  assert.throws(() => makeAuthorityCert(seedOf(1), seedOf(2), T0, T0), /after published/);
  assert.throws(() => makeAuthorityCert(seedOf(1), seedOf(2), T0, T0 + 401 * DAY), /400 days/);
  assert.throws(() => makeAuthorityCert(seedOf(1), seedOf(2), T0 + 1, T0 + DAY), /whole second/);
});

test('time window with clock-skew tolerance', () => {
  const cert = makeAuthorityCert(seedOf(1), seedOf(2), T0, T0 + DAY);
  assert.equal(certTimeProblem(cert, T0, 0), null);
  assert.equal(certTimeProblem(cert, T0 + DAY, 0), null);
  assert.match(certTimeProblem(cert, T0 + DAY + 1000, 0)!, /^certificate expired at 2030-01-03 03:04:05$/);
  assert.match(certTimeProblem(cert, T0 - 1000, 0)!, /not valid before/);
  assert.equal(certTimeProblem(cert, T0 + DAY + 1000, 60_000), null);
  assert.equal(certTimeProblem(cert, T0 - 1000, 60_000), null);
});

const signers = [authoritySigner(41), authoritySigner(42), authoritySigner(43)];
const ids = signers.map((s) => s.cert.identity);
const body: ConsensusBody = {
  validAfter: T0,
  freshUntil: T0 + 60_000,
  validUntil: T0 + 180_000,
  authorities: ids.map((identity, i) => ({ nickname: `auth${i + 1}`, identity, address: `127.100.0.${i + 1}`, dirPort: 7000 })),
  relays: [],
};

test('a consensus signed with certified signing keys: the certificate chains to the trusted identity', () => {
  const text = encodeConsensus(body, signers);
  const c = verifyConsensus(text, ids, T0);
  assert.deepEqual(c.verifiedSigners, ids);
  assert.equal(c.signatures.length, 3);
  assert.deepEqual(c.signatures.map((s) => s.identity), ids);
  // The signature is over the context and SHA-256 of the body, with the signing key.
  const bodyText = encodeConsensusBody(body);
  const sig = parseSignatureArgs(signConsensusBody(bodyText, signers[0]!).trim().split(' ').slice(1), 'test');
  assert.ok(crypto.ed25519Verify(signers[0]!.cert.signingKey, concat(utf8('allium-dir-signature-v1'), crypto.sha256(utf8(bodyText))), sig.signature));
  assert.equal(checkSignature(sig, bodyDigest(bodyText), T0, 0).ok, true);
  // The identity key itself does not sign consensuses: a signature by it does not count.
  const byIdentity = crypto.ed25519Sign(seedOf(41), concat(utf8('allium-dir-signature-v1'), bodyDigest(bodyText)));
  const check = checkSignature({ ...sig, signature: byIdentity }, bodyDigest(bodyText), T0, 0);
  assert.deepEqual(check, { ok: false, reason: 'signature does not verify' });
});

test('refusals name the reason: only one of three signed, forged certificate, expired certificate, outside the window', () => {
  const names = new Map(ids.map((id, i) => [Buffer.from(id).toString('hex'), `auth${i + 1}`]));
  const opts = { names, clockSkewMs: 0 };
  // Only one of three.
  assert.throws(() => verifyConsensus(encodeConsensus(body, [signers[0]!]), ids, T0, opts), (e: unknown) => {
    assert.ok(e instanceof DocumentError && e.code === 'ERR_BAD_SIGNATURE');
    assert.equal(e.message, 'consensus: signed by 1 of 3 trusted authorities, need 2 (auth2: no signature; auth3: no signature)');
    return true;
  });
  // Two of three with expired certificates.
  const expired = [signers[0]!, authoritySigner(42, { published: T0 - 10 * DAY, expires: T0 - DAY }), authoritySigner(43, { published: T0 - 10 * DAY, expires: T0 - 1000 })];
  assert.throws(() => verifyConsensus(encodeConsensus(body, expired), ids, T0, opts), (e: unknown) => {
    assert.ok(e instanceof DocumentError && e.code === 'ERR_BAD_SIGNATURE');
    assert.match(e.message, /signed by 1 of 3 .*auth2: certificate expired at 2030-01-01 03:04:05; auth3: certificate expired at 2030-01-02 03:04:04/);
    return true;
  });
  // Two of three whose certificates are forged: a signing key certified by someone else's identity
  // (the certification replaced), and one whose expiry was pushed back without re-certifying.
  const bodyText = encodeConsensusBody(body);
  const forge = (s: typeof signers[number], mutate: (b: Buffer) => void) => {
    const line = signConsensusBody(bodyText, s);
    const [kw, certB64, sigB64] = line.trim().split(' ');
    const cert = Buffer.from(certB64!, 'base64');
    mutate(cert);
    return `${kw} ${cert.toString('base64').replace(/=+$/, '')} ${sigB64}\n`;
  };
  const stranger = makeAuthorityCert(seedOf(99), signers[1]!.signingSeed, T0 - DAY, T0 + DAY);
  const forged1 = forge(signers[1]!, (b) => b.set(stranger.bytes.subarray(137), 137));
  const forged2 = forge(signers[2]!, (b) => b.writeUInt32BE(b.readUInt32BE(69) + 3600, 69));
  const text = bodyText + signConsensusBody(bodyText, signers[0]!) + forged1 + forged2;
  assert.throws(() => verifyConsensus(text, ids, T0, opts), (e: unknown) => {
    assert.ok(e instanceof DocumentError && e.code === 'ERR_BAD_SIGNATURE');
    assert.match(e.message, /signed by 1 of 3 .*auth2: forged certificate .*auth3: forged certificate/);
    return true;
  });
  // The one good signature and one good forged-free signature are enough.
  assert.ok(verifyConsensus(bodyText + signConsensusBody(bodyText, signers[0]!) + forged1 + signConsensusBody(bodyText, signers[2]!), ids, T0, opts));
  // A certificate for an identity nobody trusts counts for nothing even if it is valid.
  assert.throws(() => verifyConsensus(encodeConsensus(body, [signers[0]!, authoritySigner(77)]), ids, T0, opts), /signed by 1 of 3/);
  // Outside the validity window.
  assert.throws(() => verifyConsensus(encodeConsensus(body, signers), ids, body.validUntil + 1000, opts), (e: unknown) => {
    assert.ok(e instanceof DocumentError && e.code === 'ERR_DOCUMENT');
    assert.equal(e.message, 'consensus: outside its validity window: expired at 2030-01-02 03:07:05 (clock-skew tolerance 0 s)');
    return true;
  });
  assert.throws(() => verifyConsensus(encodeConsensus(body, signers), ids, body.validAfter - 1000, opts), /not valid until 2030-01-02 03:04:05/);
});

test('a certificate that is not yet valid, or expires before now, does not count; skew tolerance applies to certificates too', () => {
  const late = [authoritySigner(41, { published: T0 + DAY, expires: T0 + 2 * DAY }), authoritySigner(42, { published: T0 + 30_000, expires: T0 + DAY })];
  const text = encodeConsensus(body, late);
  assert.throws(() => verifyConsensus(text, ids.slice(0, 2), T0, { clockSkewMs: 0 }), /certificate not valid before/);
  // With 60 s of tolerance the second one counts, but 1 of 2 is not a majority.
  assert.throws(() => verifyConsensus(text, ids.slice(0, 2), T0), /signed by 1 of 2/);
  assert.ok(verifyConsensus(text, ids.slice(1, 2), T0));
});
