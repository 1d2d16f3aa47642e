import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nodeCrypto, nobleCrypto, type CryptoBackend } from '../../src/crypto/crypto.js';
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

function relay(backend: CryptoBackend) {
  const seed = backend.randomBytes(32);
  const linkKey = generateKeyPair(backend);
  return { seed, identity: backend.ed25519PublicKey(seed), linkKey, cert: signLinkCertificate(seed, linkKey.public, backend) };
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
    assert.equal(hex(verifyLinkCertificate(r.cert, r.linkKey.public, backend)), hex(r.identity));
    const decoded = decodeLinkCertificate(r.cert);
    assert.equal(hex(decoded.identity), hex(r.identity));
    assert.equal(hex(encodeLinkCertificate(decoded)), hex(r.cert));
    // Any flipped bit in the certificate, or another link key, fails.
    for (const at of [0, 17, 31, 32, 63, 95]) {
      const bad = new Uint8Array(r.cert);
      bad[at]! ^= 0x01;
      assert.throws(() => verifyLinkCertificate(bad, r.linkKey.public, backend), { code: 'ERR_BAD_SIGNATURE' }, `bit at ${at}`);
    }
    assert.throws(() => verifyLinkCertificate(r.cert, generateKeyPair(backend).public, backend), { code: 'ERR_BAD_SIGNATURE' });
    assert.throws(() => verifyLinkCertificate(r.cert.subarray(0, 95), r.linkKey.public, backend), { code: 'ERR_MALFORMED' });
    assert.throws(() => verifyLinkCertificate(concat(r.cert, Uint8Array.of(0)), r.linkKey.public, backend), { code: 'ERR_MALFORMED' });
    // Another identity's signature over the same key does not verify under this identity.
    const other = relay(backend);
    const forged = concat(r.identity, decodeLinkCertificate(signLinkCertificate(other.seed, r.linkKey.public, backend)).signature);
    assert.throws(() => verifyLinkCertificate(forged, r.linkKey.public, backend), { code: 'ERR_BAD_SIGNATURE' });
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
