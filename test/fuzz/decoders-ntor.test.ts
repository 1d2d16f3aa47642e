/**
 * Fuzz the ntor-v3 circuit handshake's network-facing side (src/crypto/ntor-v3.ts):
 * a relay parses the onionskin of a CREATE2/EXTEND2, a client the reply of a
 * CREATED2/EXTENDED2. Random and mutated inputs must give a result or an
 * AlliumError; a genuine exchange agrees on keys and messages. Seeded, with
 * fixed ephemeral keys.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { crypto } from '../../src/crypto/crypto.js';
import { TOR1_KEY_MATERIAL_LENGTH } from '../../src/constants.js';
import { CIRCUIT_VERIFICATION } from '../../src/circuit/handshake-params.js';
import { decodeNtorExtensions, encodeNtorExtensions } from '../../src/cell/ntor-extensions.js';
import { ntorV3ClientFinish, ntorV3ClientStart, ntorV3ServerHandshake, type NtorV3RelaySecret } from '../../src/crypto/ntor-v3.js';
import { Rng, describeBytes, expectTyped, mutate, outcomes } from './fuzz-util.js';

test('fuzz ntor-v3: server on random / mutated onionskins, client on random / mutated replies; genuine exchanges agree', () => {
  const rng = new Rng(0x7e700001);
  const onionSecret = rng.bytes(32);
  const relay: NtorV3RelaySecret = { identity: crypto.ed25519PublicKey(rng.bytes(32)), onionKey: crypto.x25519PublicKey(onionSecret), onionSecret };
  // The relay decodes the client's extension list, as the real one does.
  const makeReply = (cm: Uint8Array) => {
    decodeNtorExtensions(cm);
    return encodeNtorExtensions([]);
  };
  const randomMessage = () => encodeNtorExtensions(Array.from({ length: rng.int(3) }, () => ({ type: rng.int(256), body: rng.bytes(rng.int(40)) })));
  const start = (message: Uint8Array) => ntorV3ClientStart(relay, message, CIRCUIT_VERIFICATION, { ephemeralSecret: rng.bytes(32) });
  const skins = Array.from({ length: 6 }, () => start(randomMessage()).onionskin);

  const server = outcomes();
  for (let i = 0; i < 700; i++) {
    const r = rng.int(10);
    let skin: Uint8Array;
    if (r === 0) skin = rng.bytes(rng.length(300));
    else if (r === 1) skin = new Uint8Array([...relay.identity, ...relay.onionKey, ...rng.bytes(rng.length(200))]); // gets past the key checks
    else skin = mutate(rng, rng.pick(skins));
    expectTyped(
      () => ntorV3ServerHandshake(relay, skin, CIRCUIT_VERIFICATION, makeReply, TOR1_KEY_MATERIAL_LENGTH, { ephemeralSecret: rng.bytes(32) }),
      () => `ntorV3ServerHandshake on ${describeBytes(skin)}`,
      server,
    );
  }
  // Every proper prefix of a genuine onionskin is refused (truncated, or its MAC no longer verifies).
  const prefixes = outcomes();
  for (let n = 0; n < skins[0]!.length; n++) {
    const skin = skins[0]!.subarray(0, n);
    expectTyped(() => ntorV3ServerHandshake(relay, skin, CIRCUIT_VERIFICATION, makeReply, TOR1_KEY_MATERIAL_LENGTH), () => `ntorV3ServerHandshake on prefix ${n}`, prefixes);
  }
  assert.equal(prefixes.ok, 0);
  assert.ok(server.rejected > 600, JSON.stringify(server));

  const client = outcomes();
  for (let i = 0; i < 500; i++) {
    const message = randomMessage();
    const { state, onionskin } = start(message);
    const genuine = ntorV3ServerHandshake(relay, onionskin, CIRCUIT_VERIFICATION, makeReply, TOR1_KEY_MATERIAL_LENGTH, { ephemeralSecret: rng.bytes(32) });
    assert.deepEqual(genuine.clientMessage, message);
    if (i % 5 === 0) {
      // Round trip: both ends derive the same keys and see each other's messages.
      const done = ntorV3ClientFinish(state, genuine.reply, TOR1_KEY_MATERIAL_LENGTH);
      assert.deepEqual(done.keyMaterial, genuine.keyMaterial);
      assert.deepEqual(done.serverMessage, encodeNtorExtensions([]));
      assert.throws(() => ntorV3ClientFinish(state, genuine.reply, TOR1_KEY_MATERIAL_LENGTH), { code: 'ERR_CONFIG' });
      continue;
    }
    const reply = rng.bool(0.2) ? rng.bytes(rng.length(150)) : mutate(rng, genuine.reply);
    expectTyped(() => ntorV3ClientFinish(state, reply, TOR1_KEY_MATERIAL_LENGTH), () => `ntorV3ClientFinish on ${describeBytes(reply)}`, client);
  }
  assert.ok(client.rejected > 300, JSON.stringify(client));
});
