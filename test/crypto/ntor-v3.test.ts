import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nodeCrypto } from '../../src/crypto/crypto.js';
import { nobleCrypto } from '../../src/crypto/noble-backend.js';
import { fromHex, hex, utf8 } from '../../src/bytes.js';
import { DecodeError, HandshakeError } from '../../src/errors.js';
import {
  ntorV3ClientFinish,
  ntorV3ClientStart,
  ntorV3ServerHandshake,
  type NtorV3RelaySecret,
} from '../../src/crypto/ntor-v3.js';

const backends = [nodeCrypto, nobleCrypto];

// Tor proposal 332 §X.2 (also tor's src/test/test_ntor_v3.c).
const V = {
  b: '4051daa5921cfa2a1c27b08451324919538e79e788a81b38cbed097a5dff454a',
  B: 'f8307a2bc1870b00b828bb74dbb8fd88e632a6375ab3bcd1ae706aaa8b6cdd1d',
  ID: '9fad2af287ef942632833d21f946c6260c33fae6172b60006e86e4a6911753a2',
  x: 'b825a3719147bcbe5fb1d0b0fcb9c09e51948048e2e3283d2ab7b45b5ef38b49',
  X: '252fe9ae91264c91d4ecb8501f79d0387e34ad8ca0f7c995184f7d11d5da4f46',
  CM: '68656c6c6f20776f726c64',
  VER: '78797a7a79',
  y: '4865a5b7689dafd978f529291c7171bc159be076b92186405d13220b80e2a053',
  Y: '4bf4814326fdab45ad5184f5518bd7fae25dc59374062698201a50a22954246d',
  SM: '486f6c61204d756e646f',
  clientHandshake:
    '9fad2af287ef942632833d21f946c6260c33fae6172b60006e86e4a6911753a2f8307a2bc1870b00b828bb74dbb8fd88e632a6375ab3bcd1ae706aaa8b6cdd1d252fe9ae91264c91d4ecb8501f79d0387e34ad8ca0f7c995184f7d11d5da4f463bebd9151fd3b47c180abc9e044d53565f04d82bbb3bebed3d06cea65db8be9c72b68cd461942088502f67',
  serverHandshake:
    '4bf4814326fdab45ad5184f5518bd7fae25dc59374062698201a50a22954246d2fc5f8773ca824542bc6cf6f57c7c29bbf4e5476461ab130c5b18ab0a91276651202c3e1e87c0d32054c',
  keystream:
    '9c19b631fd94ed86a817e01f6c80b0743a43f5faebd39cfaa8b00fa8bcc65c3bfeaa403d91acbd68a821bf6ee8504602b094a254392a07737d5662768c7a9fb1b2814bb34780eaee6e867c773e28c212ead563e98a1cd5d5b4576f5ee61c59bde025ff2851bb19b721421694f263818e3531e43a9e4e3e2c661e2ad547d8984caa28ebecd3e4525452299be26b9185a20a90ce1eac20a91f2832d731b54502b09749b5a2a2949292f8cfcbeffb790c7790ed935a9d251e7e336148ea83b063a5618fcff674a44581585fd22077ca0e52c59a24347a38d1a1ceebddbf238541f226b8f88d0fb9c07a1bcd2ea764bbbb5dacdaf5312a14c0b9e4f06309b0333b4a',
};

const vectorRelay = (): NtorV3RelaySecret => ({
  identity: fromHex(V.ID),
  onionKey: fromHex(V.B),
  onionSecret: fromHex(V.b),
});

function randomRelay(): NtorV3RelaySecret {
  const onionSecret = nodeCrypto.randomBytes(32);
  return {
    identity: nodeCrypto.ed25519PublicKey(nodeCrypto.randomBytes(32)),
    onionKey: nodeCrypto.x25519PublicKey(onionSecret),
    onionSecret,
  };
}

const VERIFICATION = utf8('allium-circuit-v1');
const EMPTY = new Uint8Array([0]);

for (const backend of backends) {
  test(`proposal 332 §X.2 test vectors through ${backend.name}`, () => {
    assert.equal(hex(backend.x25519PublicKey(fromHex(V.x))), V.X);
    assert.equal(hex(backend.x25519PublicKey(fromHex(V.y))), V.Y);
    assert.equal(hex(backend.x25519PublicKey(fromHex(V.b))), V.B);

    const relay = vectorRelay();
    const { state, onionskin } = ntorV3ClientStart(relay, fromHex(V.CM), fromHex(V.VER), {
      ephemeralSecret: fromHex(V.x),
      backend,
    });
    assert.equal(hex(onionskin), V.clientHandshake);

    let seen: string | undefined;
    const server = ntorV3ServerHandshake(
      relay,
      onionskin,
      fromHex(V.VER),
      (cm) => {
        seen = hex(cm);
        return fromHex(V.SM);
      },
      256,
      { ephemeralSecret: fromHex(V.y), backend },
    );
    assert.equal(seen, V.CM);
    assert.equal(hex(server.clientMessage), V.CM);
    assert.equal(hex(server.reply), V.serverHandshake);
    assert.equal(hex(server.keyMaterial), V.keystream);

    const client = ntorV3ClientFinish(state, server.reply, 256);
    assert.equal(hex(client.serverMessage), V.SM);
    assert.equal(hex(client.keyMaterial), V.keystream);
  });

  test(`72 bytes of tor1 key material are the keystream prefix (${backend.name})`, () => {
    const relay = vectorRelay();
    const { state, onionskin } = ntorV3ClientStart(relay, fromHex(V.CM), fromHex(V.VER), { ephemeralSecret: fromHex(V.x), backend });
    const server = ntorV3ServerHandshake(relay, onionskin, fromHex(V.VER), () => fromHex(V.SM), 72, {
      ephemeralSecret: fromHex(V.y),
      backend,
    });
    assert.equal(hex(server.reply), V.serverHandshake);
    assert.equal(hex(server.keyMaterial), V.keystream.slice(0, 144));
    assert.equal(hex(ntorV3ClientFinish(state, server.reply, 72).keyMaterial), V.keystream.slice(0, 144));
  });

  test(`round trip with random keys (${backend.name})`, () => {
    for (let i = 0; i < 5; i++) {
      const relay = randomRelay();
      const cm = backend.randomBytes(i * 50);
      const sm = backend.randomBytes(i * 30 + 1);
      const { state, onionskin } = ntorV3ClientStart(relay, cm, VERIFICATION, { backend });
      assert.equal(onionskin.length, 128 + cm.length);
      const server = ntorV3ServerHandshake(relay, onionskin, VERIFICATION, () => sm, 72, { backend });
      assert.equal(hex(server.clientMessage), hex(cm));
      assert.equal(server.reply.length, 64 + sm.length);
      const client = ntorV3ClientFinish(state, server.reply, 72);
      assert.equal(hex(client.serverMessage), hex(sm));
      assert.equal(client.keyMaterial.length, 72);
      assert.equal(hex(client.keyMaterial), hex(server.keyMaterial));
    }
  });
}

test('the two backends interoperate', () => {
  const relay = randomRelay();
  const { state, onionskin } = ntorV3ClientStart(relay, EMPTY, VERIFICATION, { backend: nodeCrypto });
  const server = ntorV3ServerHandshake(relay, onionskin, VERIFICATION, () => EMPTY, 72, { backend: nobleCrypto });
  assert.equal(hex(ntorV3ClientFinish(state, server.reply, 72).keyMaterial), hex(server.keyMaterial));
});

test('tampering with any onionskin byte is a HandshakeError', () => {
  const relay = randomRelay();
  const { onionskin } = ntorV3ClientStart(relay, utf8('hello'), VERIFICATION);
  let called = 0;
  for (let i = 0; i < onionskin.length; i++) {
    const bad = new Uint8Array(onionskin);
    bad[i]! ^= 0x01;
    assert.throws(
      () =>
        ntorV3ServerHandshake(relay, bad, VERIFICATION, () => {
          called++;
          return EMPTY;
        }, 72),
      (err: unknown) => err instanceof HandshakeError && err.code === 'ERR_HANDSHAKE',
      `byte ${i}`,
    );
  }
  assert.equal(called, 0, 'makeReply must not see an unauthenticated message');
});

test('tampering with any reply byte is a HandshakeError', () => {
  const relay = randomRelay();
  const cm = utf8('hello');
  const x = nodeCrypto.randomBytes(32);
  const y = nodeCrypto.randomBytes(32);
  const { onionskin } = ntorV3ClientStart(relay, cm, VERIFICATION, { ephemeralSecret: x });
  const { reply } = ntorV3ServerHandshake(relay, onionskin, VERIFICATION, () => utf8('world'), 72, { ephemeralSecret: y });
  for (let i = 0; i < reply.length; i++) {
    const bad = new Uint8Array(reply);
    bad[i]! ^= 0x80;
    const { state } = ntorV3ClientStart(relay, cm, VERIFICATION, { ephemeralSecret: x });
    assert.throws(() => ntorV3ClientFinish(state, bad, 72), HandshakeError, `byte ${i}`);
  }
  // Dropping or adding a byte of the encrypted server message changes AUTH too.
  for (const bad of [reply.subarray(0, reply.length - 1), new Uint8Array([...reply, 0])]) {
    const { state } = ntorV3ClientStart(relay, cm, VERIFICATION, { ephemeralSecret: x });
    assert.throws(() => ntorV3ClientFinish(state, bad, 72), HandshakeError);
  }
  const { state } = ntorV3ClientStart(relay, cm, VERIFICATION, { ephemeralSecret: x });
  assert.equal(new TextDecoder().decode(ntorV3ClientFinish(state, reply, 72).serverMessage), 'world');
});

test('wrong relay identity or onion key is rejected', () => {
  const relay = randomRelay();
  const other = randomRelay();
  const toOtherId = ntorV3ClientStart({ identity: other.identity, onionKey: relay.onionKey }, EMPTY, VERIFICATION).onionskin;
  assert.throws(() => ntorV3ServerHandshake(relay, toOtherId, VERIFICATION, () => EMPTY, 72), HandshakeError);
  const toOtherKey = ntorV3ClientStart({ identity: relay.identity, onionKey: other.onionKey }, EMPTY, VERIFICATION).onionskin;
  assert.throws(() => ntorV3ServerHandshake(relay, toOtherKey, VERIFICATION, () => EMPTY, 72), HandshakeError);
  // A reply from a relay that does not hold b cannot pass AUTH.
  const { state, onionskin } = ntorV3ClientStart(relay, EMPTY, VERIFICATION);
  const impostor = { ...relay, onionSecret: other.onionSecret };
  assert.throws(() => ntorV3ServerHandshake(impostor, onionskin, VERIFICATION, () => EMPTY, 72), HandshakeError);
  const forged = ntorV3ServerHandshake(
    other,
    ntorV3ClientStart(other, EMPTY, VERIFICATION).onionskin,
    VERIFICATION,
    () => EMPTY,
    72,
  ).reply;
  assert.throws(() => ntorV3ClientFinish(state, forged, 72), HandshakeError);
});

test('a different verification string fails the handshake', () => {
  const relay = randomRelay();
  const { onionskin } = ntorV3ClientStart(relay, EMPTY, VERIFICATION);
  assert.throws(() => ntorV3ServerHandshake(relay, onionskin, utf8('allium-circuit-v2'), () => EMPTY, 72), HandshakeError);
});

test('truncated onionskin or reply is a DecodeError, never a crash', () => {
  const relay = randomRelay();
  const { onionskin } = ntorV3ClientStart(relay, EMPTY, VERIFICATION);
  for (let n = 0; n < 128; n++) {
    assert.throws(
      () => ntorV3ServerHandshake(relay, onionskin.subarray(0, n), VERIFICATION, () => EMPTY, 72),
      (err: unknown) => err instanceof DecodeError && err.code === 'ERR_TRUNCATED',
      `length ${n}`,
    );
  }
  // 128..(full-1) bytes parse but the MAC no longer matches.
  assert.throws(() => ntorV3ServerHandshake(relay, onionskin.subarray(0, 128), VERIFICATION, () => EMPTY, 72), HandshakeError);

  const x = nodeCrypto.randomBytes(32);
  const start = () => ntorV3ClientStart(relay, EMPTY, VERIFICATION, { ephemeralSecret: x });
  const { reply } = ntorV3ServerHandshake(relay, start().onionskin, VERIFICATION, () => EMPTY, 72);
  for (let n = 0; n < 64; n++) {
    assert.throws(
      () => ntorV3ClientFinish(start().state, reply.subarray(0, n), 72),
      (err: unknown) => err instanceof DecodeError && err.code === 'ERR_TRUNCATED',
      `length ${n}`,
    );
  }
});

test('a small-order client or relay key is a HandshakeError', () => {
  const relay = randomRelay();
  const { onionskin } = ntorV3ClientStart(relay, EMPTY, VERIFICATION);
  const bad = new Uint8Array(onionskin);
  bad.fill(0, 64, 96); // X = 0
  assert.throws(() => ntorV3ServerHandshake(relay, bad, VERIFICATION, () => EMPTY, 72), HandshakeError);
  const { state } = ntorV3ClientStart(relay, EMPTY, VERIFICATION);
  assert.throws(() => ntorV3ClientFinish(state, new Uint8Array(65), 72), HandshakeError); // Y = 0
});

test('a client state is used once', () => {
  const relay = randomRelay();
  const { state, onionskin } = ntorV3ClientStart(relay, EMPTY, VERIFICATION);
  const { reply } = ntorV3ServerHandshake(relay, onionskin, VERIFICATION, () => EMPTY, 72);
  ntorV3ClientFinish(state, reply, 72);
  assert.throws(() => ntorV3ClientFinish(state, reply, 72), { code: 'ERR_CONFIG' });
});
