import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nodeCrypto, type CryptoBackend } from '../../src/crypto/crypto.js';
import { nobleCrypto } from '../../src/crypto/noble-backend.js';
import { fromHex, hex } from '../../src/bytes.js';
import { CipherState, SymmetricState, XkHandshake, NOISE_PROTOCOL_NAME, chachaNonce } from '../../src/link/noise.js';

const backends: CryptoBackend[] = [nodeCrypto, nobleCrypto];

interface Vector {
  source: string;
  prologue: string;
  initStatic: string;
  initEphemeral: string;
  respStatic: string;
  respEphemeral: string;
  /** Public key of respStatic as the initiator knows it in advance. */
  initRemoteStatic?: string;
  handshakeHash?: string;
  /** Messages alternate initiator, responder, initiator, ... (the first three are the handshake). */
  messages: Array<{ payload: string; ciphertext: string }>;
}

// Published test vectors for Noise_XK_25519_ChaChaPoly_SHA256, copied as data.
const VECTORS: Vector[] = [
  {
    // rweather/noise-c, tests/vector/noise-c-basic.txt, "Noise_XK_25519_ChaChaPoly_SHA256".
    // (Keys are private keys; init_remote_static there is the responder's public key.)
    source: 'noise-c',
    prologue: '50726f6c6f677565313233',
    initStatic: 'e61ef9919cde45dd5f82166404bd08e38bceb5dfdfded0a34c8df7ed542214d1',
    initEphemeral: '893e28b9dc6ca8d611ab664754b8ceb7bac5117349a4439a6b0569da977c464a',
    initRemoteStatic: '31e0303fd6418d2f8c0e78b91f22e8caed0fbe48656dcf4767e4834f701b8f62',
    respStatic: '4a3acbfdb163dec651dfa3194dece676d437029c62a408b4c5ea9114246e4893',
    respEphemeral: 'bbdb4cdbd309f1a1f2e1456967fe288cadd6f712d65dc7b7793d5e63da6b375b',
    handshakeHash: 'c7fc7c515bbcec7001e3b09df01f4691ef55912ae6c0c1283581557483ebb29a',
    messages: [
      {
        payload: '4c756477696720766f6e204d69736573',
        ciphertext:
          'ca35def5ae56cec33dc2036731ab14896bc4c75dbb07a61f879f8e3afa4c7944a3785af283c991bab613473804356ef6f6f2b62da8045c2a09d21b404107542d',
      },
      {
        payload: '4d757272617920526f746862617264',
        ciphertext:
          '95ebc60d2b1fa672c1f46a8aa265ef51bfe38e7ccb39ec5be34069f1448088433a4534805fa9fe4eb8343ace6609166aa62b33a49adbffaa09fcac8710d3c0',
      },
      {
        payload: '462e20412e20486179656b',
        ciphertext:
          '5d8e67b9c1b8e36f5dc674bc5cd2ce243fb5d1710fa57de0370da7cc979015392b410497a747e8c643b342b426b06653aa6fd4288dfd8d70f419bf1262ef247cedf3f54cb0b69e7cbc63a0',
      },
      { payload: '4361726c204d656e676572', ciphertext: '3205e1265f809505e6edc092839d3156745d2abafbfd946b261e41' },
      {
        payload: '4a65616e2d426170746973746520536179',
        ciphertext: '470bcb1ae099555ff0d729500df550418d6ee5149d9e40bd2f4c6b3d263cc818d5',
      },
      {
        payload: '457567656e2042f6686d20766f6e2042617765726b',
        ciphertext: 'd7187ed9d217ba6e91cf596e4871012ccedf7b5bed0d4cb8f7affb020fa17a95a23371e0f6',
      },
    ],
  },
  {
    // mcginty/snow, tests/vectors/snow.txt, "Noise_XK_25519_ChaChaPoly_SHA256" (no handshake hash given).
    source: 'snow',
    prologue:
      '5468657265206973206e6f20726967687420616e642077726f6e672e2054686572652773206f6e6c792066756e20616e6420626f72696e672e',
    initStatic: 'd79245fc228517d26ab3026f901e6de5e87029f62f5337bb7aeaf290630663c5',
    initEphemeral: '821a1cfc35eafdfd7ceec182cea0b46a8b41715f8b1a6c3255da349a4205a912',
    initRemoteStatic: 'baa04200175deb54e07ebee17c69f8a464400d33504a8f0b960a49638712df5c',
    respStatic: '41f32f158d5bde75b0814850d79885e717c1858b34ae1787911dabb846dfb28a',
    respEphemeral: 'd3d600d3d556e1819de798950067a5b9f07977aa4dfc7ccea983bccc4f92ed5d',
    messages: [
      {
        payload: '5ff166c364c401f5cccefe5dbef2399eb35af4f77373ac26e98cc2178b3d4f05',
        ciphertext:
          'e72ac10bdc197cc923051ac8ce5e8f952873928d4c0be6bc3e1ce2c44a5d8948fcff0ce5c4eb228940fa1f01db75144acf89e5f5fe3f456ebb2439d1c59e430840751ef5f93567d268d5399b78c56137',
      },
      {
        payload: '44d9a8b2dfc5e4db9109c08e7345ad331bc74d16d5580a0ccab5695a0d4ea406',
        ciphertext:
          '573253370220f0dcfae0ff8f800d885f67aaa0aabf13191e4b17241b0a50ba1721b33d6f53bb9147724bb5f9b80347d4151c68de9ecd62170433df78eb5e3dee843ced53014a2922d7f7c7a447ddc347',
      },
      {
        payload: '82e4f70bd164c183c4d116f4d18e92c1e8c57257dcc5414b10e1df7ba66490dc',
        ciphertext:
          '7aee57bc9c27b1489388b1b114335b1c777a242dd3f199d0a44cf3588910371cfefaced10536e91859a496caeb78f52e63d3703766c33e05bbd94c985421e1d1461d769fd6b9f333b32ca30cb17ee09ac7af9b7499a5a8d0a3e19aff0e1dd055',
      },
      {
        payload: '534f98102268d35aed2ad42b7929840845b67f3d1e27fa05b9365675cdf9ecf3',
        ciphertext: 'c837eb9eba146171756bdc87f554052496e2ccc7c8e7a224d49a53302240134c9925c8919662f162f8e086dc93694eb1',
      },
      {
        payload: '7cdebd667263c56a74ed30fcc0783f4ee90b17cc4e8c4c31e47f81484211caf1',
        ciphertext: '553d810ba41db883b8f990b088f834eecf960c66dc63c65eefef0a51e5661289069ce103e5c9b742ae33806d383eb2a1',
      },
    ],
  },
];

for (const backend of backends) {
  for (const v of VECTORS) {
    test(`Noise_XK_25519_ChaChaPoly_SHA256 ${v.source} vector through ${backend.name}`, () => {
      const initS = fromHex(v.initStatic);
      const respS = fromHex(v.respStatic);
      const respPublic = backend.x25519PublicKey(respS);
      if (v.initRemoteStatic !== undefined) assert.equal(hex(respPublic), v.initRemoteStatic);
      const init = new XkHandshake({
        initiator: true,
        prologue: fromHex(v.prologue),
        s: { secret: initS, public: backend.x25519PublicKey(initS) },
        rs: respPublic,
        ephemeral: fromHex(v.initEphemeral),
        backend,
      });
      const resp = new XkHandshake({
        initiator: false,
        prologue: fromHex(v.prologue),
        s: { secret: respS, public: respPublic },
        ephemeral: fromHex(v.respEphemeral),
        backend,
      });
      for (let i = 0; i < 3; i++) {
        const m = v.messages[i]!;
        const [writer, reader] = i % 2 === 0 ? [init, resp] : [resp, init];
        const wire = writer.writeMessage(fromHex(m.payload));
        assert.equal(hex(wire), m.ciphertext, `handshake message ${i + 1}`);
        assert.equal(hex(reader.readMessage(wire)), m.payload);
      }
      assert.equal(init.next, 'done');
      assert.equal(resp.next, 'done');
      assert.equal(hex(resp.remoteStatic!), hex(backend.x25519PublicKey(initS)));
      const ik = init.finish();
      const rk = resp.finish();
      assert.equal(hex(ik.handshakeHash), hex(rk.handshakeHash));
      if (v.handshakeHash !== undefined) assert.equal(hex(ik.handshakeHash), v.handshakeHash);
      for (let i = 3; i < v.messages.length; i++) {
        const m = v.messages[i]!;
        const [send, recv] = i % 2 === 0 ? [ik.send, rk.recv] : [rk.send, ik.recv];
        const wire = send.encryptWithAd(new Uint8Array(0), fromHex(m.payload));
        assert.equal(hex(wire), m.ciphertext, `transport message ${i}`);
        assert.equal(hex(recv.decryptWithAd(new Uint8Array(0), wire)!), m.payload);
      }
    });
  }

  test(`XK handshake failures through ${backend.name}`, () => {
    const pair = () => {
      const secret = backend.randomBytes(32);
      return { secret, public: backend.x25519PublicKey(secret) };
    };
    const rs = pair();
    const wrong = pair();
    const prologue = new TextEncoder().encode('p');
    // The initiator expects another responder key: message 1 fails at the responder.
    const init = new XkHandshake({ initiator: true, prologue, s: pair(), rs: wrong.public, backend });
    const resp = new XkHandshake({ initiator: false, prologue, s: rs, backend });
    assert.throws(() => resp.readMessage(init.writeMessage(new Uint8Array(0))), { code: 'ERR_HANDSHAKE' });
    assert.throws(() => resp.readMessage(new Uint8Array(48)), { code: 'ERR_HANDSHAKE' }, 'failed state stays failed');
    // A different prologue also fails message 1.
    const i2 = new XkHandshake({ initiator: true, prologue, s: pair(), rs: rs.public, backend });
    const r2 = new XkHandshake({ initiator: false, prologue: new Uint8Array(1), s: rs, backend });
    assert.throws(() => r2.readMessage(i2.writeMessage(new Uint8Array(0))), { code: 'ERR_HANDSHAKE' });
    // A flipped bit anywhere in message 2 fails.
    const i3 = new XkHandshake({ initiator: true, prologue, s: pair(), rs: rs.public, backend });
    const r3 = new XkHandshake({ initiator: false, prologue, s: rs, backend });
    r3.readMessage(i3.writeMessage(new Uint8Array(0)));
    const m2 = r3.writeMessage(new Uint8Array(5));
    m2[40]! ^= 1;
    assert.throws(() => i3.readMessage(m2), { code: 'ERR_HANDSHAKE' });
    // Too short.
    const r4 = new XkHandshake({ initiator: false, prologue, s: rs, backend });
    assert.throws(() => r4.readMessage(new Uint8Array(47)), { code: 'ERR_HANDSHAKE' });
    // Out of turn.
    const r5 = new XkHandshake({ initiator: false, prologue, s: rs, backend });
    assert.throws(() => r5.writeMessage(new Uint8Array(0)), { code: 'ERR_CONFIG' });
  });

  test(`CipherState nonce, failure and Rekey through ${backend.name}`, () => {
    const key = backend.randomBytes(32);
    const a = new CipherState(key, backend);
    const b = new CipherState(key, backend);
    const ad = new Uint8Array(0);
    const c0 = a.encryptWithAd(ad, new Uint8Array(10));
    assert.equal(a.nonce, 1);
    // Nonce n is 4 zero bytes then n little-endian.
    assert.equal(hex(chachaNonce(0x0102)), '000000000201000000000000');
    assert.equal(hex(c0), hex(backend.chachaPolySeal(key, chachaNonce(0), ad, new Uint8Array(10))));
    const bad = new Uint8Array(c0);
    bad[0]! ^= 1;
    assert.equal(b.decryptWithAd(ad, bad), null);
    assert.equal(b.nonce, 0, 'failed decryption does not advance the nonce');
    assert.equal(hex(b.decryptWithAd(ad, c0)!), hex(new Uint8Array(10)));
    // Rekey: k' = first 32 bytes of ENCRYPT(k, 2^64-1, empty, zeros), nonce kept.
    const expected = backend.chachaPolySeal(key, chachaNonce(0xffffffffffffffffn), ad, new Uint8Array(32)).slice(0, 32);
    a.rekey();
    b.rekey();
    assert.equal(a.nonce, 1);
    const c1 = a.encryptWithAd(ad, Uint8Array.of(7));
    assert.equal(hex(c1), hex(backend.chachaPolySeal(expected, chachaNonce(1), ad, Uint8Array.of(7))));
    assert.deepEqual(b.decryptWithAd(ad, c1), Uint8Array.of(7));
  });

  test(`CipherState nonces past 2^32 and up to 2^53 equal chachaNonce(n), sealed and detached (${backend.name})`, () => {
    const key = backend.randomBytes(32);
    const ad = new Uint8Array(0);
    for (const n of [0, 1, 0xff, 0x1234_5678, 0xffff_ffff, 0x1_0000_0000, 0x1_0000_0000 + 0x0102_0304, 0x12_3456_789a_bcde, Number.MAX_SAFE_INTEGER - 1]) {
      const plaintext = backend.randomBytes(1 + (n % 40));
      const want = backend.chachaPolySeal(key, chachaNonce(n), ad, plaintext);
      const cs = new CipherState(key, backend);
      cs.setNonce(n);
      assert.equal(hex(cs.encryptWithAd(ad, plaintext)), hex(want), `n = ${n}`);
      cs.setNonce(n);
      const [body, tag] = cs.encryptWithAdDetached(ad, plaintext);
      assert.equal(hex(body) + hex(tag), hex(want), `detached, n = ${n}`);
      const rx = new CipherState(key, backend);
      rx.setNonce(n);
      assert.equal(hex(rx.decryptWithAd(ad, want)!), hex(plaintext), `open, n = ${n}`);
    }
  });
}

test('protocol name is exactly 32 bytes and becomes h unhashed', () => {
  assert.equal(NOISE_PROTOCOL_NAME.length, 32);
  const ss = new SymmetricState(NOISE_PROTOCOL_NAME);
  assert.equal(Buffer.from(ss.handshakeHash).toString(), NOISE_PROTOCOL_NAME);
  const long = new SymmetricState('Noise_XK_25519_ChaChaPoly_SHA256_and_more');
  assert.equal(hex(long.handshakeHash), hex(nodeCrypto.sha256(new TextEncoder().encode('Noise_XK_25519_ChaChaPoly_SHA256_and_more'))));
});
