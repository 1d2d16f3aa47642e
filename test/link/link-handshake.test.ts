import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nodeCrypto, type CryptoBackend } from '../../src/crypto/crypto.js';
import { nobleCrypto } from '../../src/crypto/noble-backend.js';
import { concat, hex } from '../../src/bytes.js';
import {
  LINK_CERT_LENGTH,
  LinkInitiator,
  LinkResponder,
  decodeLinkCertificate,
  encodeLinkCertificate,
  signLinkCertificate,
  verifyLinkCertificate,
  type LinkHandshakeMachine,
} from '../../src/link/link-handshake.js';
import { generateKeyPair } from '../../src/link/noise.js';
import { newRelaySigner } from '../../relay/keys.js';
import { SIGNING_KEY_CERT_LENGTH } from '../../src/netdoc/signing-key-cert.js';

const NOW = Date.UTC(2030, 0, 2);
const DAY = 86_400_000;

function relay(backend: CryptoBackend, certifiedAt = NOW) {
  const seed = backend.randomBytes(32);
  const linkKey = generateKeyPair(backend);
  const signer = newRelaySigner(seed, certifiedAt, 30 * DAY);
  return { seed, signer, identity: backend.ed25519PublicKey(seed), linkKey, cert: signLinkCertificate(signer, linkKey.public, backend) };
}

/** Shuttle bytes between two machines until neither has output. */
function run(a: LinkHandshakeMachine, b: LinkHandshakeMachine): void {
  for (let i = 0; i < 10; i++) {
    const ab = a.takeOutput();
    const ba = b.takeOutput();
    if (ab.length === 0 && ba.length === 0) return;
    for (const m of ab) b.push(m);
    for (const m of ba) a.push(m);
  }
}

for (const backend of [nodeCrypto, nobleCrypto]) {
  test(`link certificate sign / verify / tamper through ${backend.name}`, () => {
    const r = relay(backend);
    assert.equal(r.cert.length, LINK_CERT_LENGTH);
    const cert = verifyLinkCertificate(r.cert, r.linkKey.public, backend, NOW);
    assert.equal(hex(cert.identity), hex(r.identity));
    assert.equal(hex(cert.signingKey), hex(r.signer.cert.signingKey));
    const decoded = decodeLinkCertificate(r.cert);
    assert.equal(hex(decoded.signingKeyCert), hex(r.signer.cert.bytes));
    assert.equal(hex(encodeLinkCertificate(decoded)), hex(r.cert));
    // Any flipped bit in the certificate's signed fields or signatures, or another link key, fails
    // (bit 0 is the version: malformed).
    for (const at of [17, 31, 32, 63, 80, 150, 200, 201, 240, LINK_CERT_LENGTH - 1]) {
      const bad = new Uint8Array(r.cert);
      bad[at]! ^= 0x01;
      assert.throws(() => verifyLinkCertificate(bad, r.linkKey.public, backend), { code: 'ERR_BAD_SIGNATURE' }, `bit at ${at}`);
    }
    const badVersion = new Uint8Array(r.cert);
    badVersion[0] = 2;
    assert.throws(() => verifyLinkCertificate(badVersion, r.linkKey.public, backend), { code: 'ERR_MALFORMED' });
    assert.throws(() => verifyLinkCertificate(r.cert, generateKeyPair(backend).public, backend), { code: 'ERR_BAD_SIGNATURE' });
    assert.throws(() => verifyLinkCertificate(r.cert.subarray(0, LINK_CERT_LENGTH - 1), r.linkKey.public, backend), { code: 'ERR_MALFORMED' });
    assert.throws(() => verifyLinkCertificate(r.cert.subarray(0, SIGNING_KEY_CERT_LENGTH), r.linkKey.public, backend), { code: 'ERR_MALFORMED' });
    assert.throws(() => verifyLinkCertificate(concat(r.cert, Uint8Array.of(0)), r.linkKey.public, backend), { code: 'ERR_MALFORMED' });
    // Another relay's signing key signing this link key, under this relay's certificate, does not verify.
    const other = relay(backend);
    const forged = concat(r.signer.cert.bytes, decodeLinkCertificate(signLinkCertificate(other.signer, r.linkKey.public, backend)).signature);
    assert.throws(() => verifyLinkCertificate(forged, r.linkKey.public, backend), { code: 'ERR_BAD_SIGNATURE' });
    // Outside the certificate's window (± 1 h of skew): refused with the reason.
    assert.ok(verifyLinkCertificate(r.cert, r.linkKey.public, backend, NOW + 30 * DAY + 3599_000));
    assert.throws(() => verifyLinkCertificate(r.cert, r.linkKey.public, backend, NOW + 30 * DAY + 3601_000), { code: 'ERR_DOCUMENT', message: /expired at/ });
    assert.throws(() => verifyLinkCertificate(r.cert, r.linkKey.public, backend, NOW - 3601_000), { code: 'ERR_DOCUMENT', message: /not valid before/ });
  });

  test(`relay-to-relay and client-to-relay handshakes through ${backend.name}`, () => {
    const responder = relay(backend);
    const initiatorRelay = relay(backend);
    // Relay initiator.
    const i1 = new LinkInitiator({
      peerLinkKey: responder.linkKey.public,
      peerIdentity: responder.identity,
      staticKey: initiatorRelay.linkKey,
      certificate: initiatorRelay.cert,
      backend,
    });
    const r1 = new LinkResponder({ staticKey: responder.linkKey, certificate: responder.cert, backend });
    run(i1, r1);
    assert.ok(i1.done && r1.done);
    assert.equal(hex(i1.result.peer.identity!), hex(responder.identity));
    assert.equal(hex(r1.result.peer.identity!), hex(initiatorRelay.identity));
    assert.equal(hex(r1.result.peer.linkKey), hex(initiatorRelay.linkKey.public));
    assert.equal(hex(i1.result.keys.handshakeHash), hex(r1.result.keys.handshakeHash));
    const ct = i1.result.keys.send.encryptWithAd(new Uint8Array(0), Uint8Array.of(1, 2, 3));
    assert.deepEqual(r1.result.keys.recv.decryptWithAd(new Uint8Array(0), ct), Uint8Array.of(1, 2, 3));
    // Anonymous client.
    const clientKey = generateKeyPair(backend);
    const i2 = new LinkInitiator({ peerLinkKey: responder.linkKey.public, peerIdentity: responder.identity, staticKey: clientKey, backend });
    const r2 = new LinkResponder({ staticKey: responder.linkKey, certificate: responder.cert, backend });
    run(i2, r2);
    assert.ok(i2.done && r2.done);
    assert.equal(r2.result.peer.identity, null);
    assert.equal(hex(r2.result.peer.linkKey), hex(clientKey.public));
  });
}

test('the initiator rejects a responder proving another identity or another link key', () => {
  const responder = relay(nodeCrypto);
  const other = relay(nodeCrypto);
  // Expected identity differs.
  const i1 = new LinkInitiator({ peerLinkKey: responder.linkKey.public, peerIdentity: other.identity, staticKey: generateKeyPair() });
  const r1 = new LinkResponder({ staticKey: responder.linkKey, certificate: responder.cert });
  assert.throws(() => run(i1, r1), { name: 'HandshakeError' });
  // Responder's certificate is for another link key (a stolen certificate).
  const stolen = new LinkResponder({ staticKey: responder.linkKey, certificate: other.cert });
  const i2 = new LinkInitiator({ peerLinkKey: responder.linkKey.public, peerIdentity: other.identity, staticKey: generateKeyPair() });
  assert.throws(() => run(i2, stolen), { name: 'HandshakeError' });
  // Wrong link key: the responder cannot read message 1.
  const i3 = new LinkInitiator({ peerLinkKey: other.linkKey.public, peerIdentity: responder.identity, staticKey: generateKeyPair() });
  const r3 = new LinkResponder({ staticKey: responder.linkKey, certificate: responder.cert });
  assert.throws(() => run(i3, r3), { name: 'HandshakeError' });
});

test('both sides refuse a peer whose signing-key certificate is not current at their clock (§3.3)', () => {
  const expired = relay(nodeCrypto, NOW - 40 * DAY); // certified until NOW − 10 days
  const fresh = relay(nodeCrypto);
  // The initiator checks the responder's certificate against its clock.
  const i1 = new LinkInitiator({ peerLinkKey: expired.linkKey.public, peerIdentity: expired.identity, staticKey: generateKeyPair(), now: NOW });
  const r1 = new LinkResponder({ staticKey: expired.linkKey, certificate: expired.cert, now: NOW });
  assert.throws(() => run(i1, r1), { name: 'HandshakeError', message: /responder link certificate refused: .*expired at/ });
  // The responder checks a relay initiator's certificate.
  const i2 = new LinkInitiator({ peerLinkKey: fresh.linkKey.public, peerIdentity: fresh.identity, staticKey: expired.linkKey, certificate: expired.cert, now: NOW });
  const r2 = new LinkResponder({ staticKey: fresh.linkKey, certificate: fresh.cert, now: NOW });
  assert.throws(() => run(i2, r2), { name: 'HandshakeError', message: /initiator link certificate refused: .*expired at/ });
  assert.equal(r2.done, false);
  // The same certificates at a time inside their window are accepted.
  const i3 = new LinkInitiator({ peerLinkKey: expired.linkKey.public, peerIdentity: expired.identity, staticKey: generateKeyPair(), now: NOW - 20 * DAY });
  const r3 = new LinkResponder({ staticKey: expired.linkKey, certificate: expired.cert, now: NOW - 20 * DAY });
  run(i3, r3);
  assert.ok(i3.done && r3.done);
});

test('the responder rejects an initiator certificate that does not sign its static key', () => {
  const responder = relay(nodeCrypto);
  const liar = relay(nodeCrypto);
  const i = new LinkInitiator({
    peerLinkKey: responder.linkKey.public,
    peerIdentity: responder.identity,
    staticKey: generateKeyPair(), // not liar.linkKey
    certificate: liar.cert,
  });
  const r = new LinkResponder({ staticKey: responder.linkKey, certificate: responder.cert });
  assert.throws(() => run(i, r), { name: 'HandshakeError' });
  assert.equal(r.done, false);
});

test('bad handshake framing: oversized header, wrong sizes, trailing bytes', () => {
  const responder = relay(nodeCrypto);
  const mk = () => new LinkResponder({ staticKey: responder.linkKey, certificate: responder.cert });
  assert.throws(() => mk().push(Uint8Array.of(0xff, 0xff)), { name: 'HandshakeError' });
  assert.throws(() => mk().push(concat(Uint8Array.of(0, 10), new Uint8Array(10))), { name: 'HandshakeError' });
  // A valid message 1 followed by extra bytes.
  const i = new LinkInitiator({ peerLinkKey: responder.linkKey.public, peerIdentity: responder.identity, staticKey: generateKeyPair() });
  const msg1 = i.takeOutput()[0]!;
  assert.throws(() => mk().push(concat(msg1, Uint8Array.of(1))), { name: 'HandshakeError' });
  // Byte-at-a-time delivery works.
  const r = mk();
  for (const b of msg1) r.push(Uint8Array.of(b));
  assert.equal(r.takeOutput().length, 1);
  // Bytes after message 3 are handed back as leftover.
  const i2 = new LinkInitiator({ peerLinkKey: responder.linkKey.public, peerIdentity: responder.identity, staticKey: generateKeyPair() });
  const r2 = mk();
  r2.push(i2.takeOutput()[0]!);
  i2.push(r2.takeOutput()[0]!);
  r2.push(concat(i2.takeOutput()[0]!, Uint8Array.of(9, 8, 7)));
  assert.deepEqual(r2.result.leftover, Uint8Array.of(9, 8, 7));
});
