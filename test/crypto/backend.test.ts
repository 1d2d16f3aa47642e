import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nodeCrypto } from '../../src/crypto/crypto.js';
import { nobleCrypto } from '../../src/crypto/noble-backend.js';
import { fromHex, hex } from '../../src/bytes.js';

const backends = [nodeCrypto, nobleCrypto];

// RFC 8032 §7.1, tests 1-3 (secret key, public key, message, signature).
const RFC8032 = [
  {
    seed: '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60',
    pub: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
    msg: '',
    sig: 'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
  },
  {
    seed: '4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb',
    pub: '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c',
    msg: '72',
    sig: '92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00',
  },
  {
    seed: 'c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7',
    pub: 'fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025',
    msg: 'af82',
    sig: '6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a',
  },
];

for (const backend of backends) {
  test(`RFC 8032 Ed25519 vectors through ${backend.name}`, () => {
    for (const v of RFC8032) {
      assert.equal(hex(backend.ed25519PublicKey(fromHex(v.seed))), v.pub);
      assert.equal(hex(backend.ed25519Sign(fromHex(v.seed), fromHex(v.msg))), v.sig);
      assert.equal(backend.ed25519Verify(fromHex(v.pub), fromHex(v.msg), fromHex(v.sig)), true);
      const bad = fromHex(v.sig);
      bad[5]! ^= 1;
      assert.equal(backend.ed25519Verify(fromHex(v.pub), fromHex(v.msg), bad), false);
    }
  });

  test(`RFC 7748 X25519 vector through ${backend.name}`, () => {
    // RFC 7748 §6.1 Diffie-Hellman example.
    const a = fromHex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a');
    const b = fromHex('5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb');
    assert.equal(hex(backend.x25519PublicKey(a)), '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a');
    assert.equal(hex(backend.x25519PublicKey(b)), 'de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f');
    assert.equal(hex(backend.x25519(a, backend.x25519PublicKey(b))), '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742');
    assert.throws(() => backend.x25519(a, new Uint8Array(32)), { code: 'ERR_HANDSHAKE' });
  });
}

test('node:crypto and @noble agree on random inputs', () => {
  const eq = (x: Uint8Array, y: Uint8Array) => assert.equal(hex(x), hex(y));
  for (let i = 0; i < 20; i++) {
    const k32 = nodeCrypto.randomBytes(32);
    const k16 = nodeCrypto.randomBytes(16);
    const other = nodeCrypto.randomBytes(32);
    const msg = nodeCrypto.randomBytes(1 + i * 37);
    eq(nodeCrypto.sha1(msg), nobleCrypto.sha1(msg));
    eq(nodeCrypto.sha256(msg), nobleCrypto.sha256(msg));
    eq(nodeCrypto.sha3_256(msg), nobleCrypto.sha3_256(msg));
    eq(nodeCrypto.shake256(msg, 20 + i), nobleCrypto.shake256(msg, 20 + i));
    eq(nodeCrypto.hmacSha256(k32, msg), nobleCrypto.hmacSha256(k32, msg));
    eq(nodeCrypto.x25519PublicKey(k32), nobleCrypto.x25519PublicKey(k32));
    eq(nodeCrypto.x25519(k32, nodeCrypto.x25519PublicKey(other)), nobleCrypto.x25519(k32, nobleCrypto.x25519PublicKey(other)));
    eq(nodeCrypto.ed25519Sign(k32, msg), nobleCrypto.ed25519Sign(k32, msg));
    const nonce = nodeCrypto.randomBytes(12);
    const sealed = nodeCrypto.chachaPolySeal(k32, nonce, msg.subarray(0, 5), msg);
    eq(sealed, nobleCrypto.chachaPolySeal(k32, nonce, msg.subarray(0, 5), msg));
    eq(nobleCrypto.chachaPolyOpen(k32, nonce, msg.subarray(0, 5), sealed)!, msg);
    for (const backend of [nodeCrypto, nobleCrypto]) {
      const [body, tag] = backend.chachaPolySealDetached(k32, nonce, msg.subarray(0, 5), msg);
      assert.equal(tag.length, 16);
      eq(new Uint8Array([...body, ...tag]), sealed);
    }
    // Empty AD (a link frame's): the node backend skips its AD call, and must still agree with noble both ways.
    const sealedNoAd = nodeCrypto.chachaPolySeal(k32, nonce, new Uint8Array(0), msg);
    eq(sealedNoAd, nobleCrypto.chachaPolySeal(k32, nonce, new Uint8Array(0), msg));
    eq(nodeCrypto.chachaPolyOpen(k32, nonce, new Uint8Array(0), nobleCrypto.chachaPolySeal(k32, nonce, new Uint8Array(0), msg))!, msg);
    assert.equal(nodeCrypto.chachaPolyOpen(k32, nonce, msg.subarray(0, 1), sealedNoAd), null, 'a frame sealed without AD does not open with some');
    assert.equal(nodeCrypto.chachaPolyOpen(k32, nonce, new Uint8Array(0), sealed), null, 'a frame sealed with AD does not open without');
    sealed[0]! ^= 1;
    assert.equal(nodeCrypto.chachaPolyOpen(k32, nonce, msg.subarray(0, 5), sealed), null);
    // Streaming AES-CTR, split at different points on each side.
    for (const key of [k16, k32]) {
      const a = nodeCrypto.aesCtr(key);
      const b = nobleCrypto.aesCtr(key);
      const split = i % msg.length;
      const outA = [...a.update(msg.subarray(0, split)), ...a.update(msg.subarray(split))];
      const outB = [...b.update(msg.subarray(0, msg.length - split)), ...b.update(msg.subarray(msg.length - split))];
      assert.deepEqual(outA, outB);
    }
    const da = nodeCrypto.runningSha1(k16);
    const db = nobleCrypto.runningSha1(k16);
    da.update(msg);
    db.update(msg);
    eq(da.peek(), db.peek());
    const fork = da.clone();
    fork.update(msg);
    eq(da.peek(), db.peek());
    const nobleFork = db.clone();
    nobleFork.update(msg);
    eq(fork.finish(), nobleFork.finish());
    da.update(msg);
    eq(da.peek(), nobleCrypto.sha1(new Uint8Array([...k16, ...msg, ...msg])));
  }
});
