/**
 * A three-hop circuit in memory: a client holding three HopLayers and three
 * relays holding the matching ones, wired exactly as the client and relay
 * code use OnionLayer. Checks delivery in both directions, long interleaved
 * runs, that any single flipped bit makes the recipient refuse the cell (the
 * caller then tears the circuit down), and that node:crypto and @noble layers
 * talk to each other.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nodeCrypto } from '../../src/crypto/crypto.js';
import { nobleCrypto } from '../../src/crypto/noble-backend.js';
import type { CryptoBackend } from '../../src/crypto/crypto.js';
import { tor1Layers } from '../../src/crypto/onion-layer.js';
import type { HopLayers } from '../../src/crypto/onion-layer.js';

const HOPS = 3;
/** No hop recognized the cell: the caller destroys the circuit. */
const TEARDOWN = -1;

interface Circuit {
  client: HopLayers[];
  relays: HopLayers[];
}

function circuit(clientBackend: CryptoBackend, relayBackend: CryptoBackend): Circuit {
  const keys = Array.from({ length: HOPS }, () => nodeCrypto.randomBytes(72));
  return {
    client: keys.map((k) => tor1Layers(k, clientBackend)),
    relays: keys.map((k) => tor1Layers(k, relayBackend)),
  };
}

/** A relay payload: command | recognized | stream id | digest | length | data | zero padding. */
function relayPayload(command: number, streamId: number, data: Uint8Array): Uint8Array {
  const p = new Uint8Array(509);
  p[0] = command;
  p[3] = streamId >> 8;
  p[4] = streamId & 0xff;
  p[9] = data.length >> 8;
  p[10] = data.length & 0xff;
  p.set(data, 11);
  return p;
}

function dataOf(p: Uint8Array): Uint8Array {
  return p.slice(11, 11 + ((p[9]! << 8) | p[10]!));
}

/** Where a cell is between hops; `tamper` may change it there. */
type Tamper = (cell: Uint8Array, link: number) => void;

/** Client → hop `to`: returns the hop that recognized it, or TEARDOWN. */
function sendForward(c: Circuit, to: number, payload: Uint8Array, tamper?: Tamper): number {
  c.client[to]!.forward.seal(payload);
  for (let i = to - 1; i >= 0; i--) c.client[i]!.forward.crypt(payload);
  for (let i = 0; i < HOPS; i++) {
    tamper?.(payload, i); // on the link into relay i
    const layer = c.relays[i]!.forward;
    layer.crypt(payload);
    if (layer.open(payload)) return i;
  }
  return TEARDOWN; // the last hop did not recognize it
}

/** Hop `from` → client: returns the hop the client attributes it to, or TEARDOWN. */
function sendBackward(c: Circuit, from: number, payload: Uint8Array, tamper?: Tamper): number {
  c.relays[from]!.backward.seal(payload);
  for (let i = from - 1; i >= 0; i--) {
    tamper?.(payload, i + 1); // on the link into relay i
    c.relays[i]!.backward.crypt(payload);
  }
  tamper?.(payload, 0); // on the link into the client
  for (let i = 0; i < HOPS; i++) {
    const layer = c.client[i]!.backward;
    layer.crypt(payload);
    if (layer.open(payload)) return i;
  }
  return TEARDOWN;
}

const pairs: Array<[CryptoBackend, CryptoBackend]> = [
  [nodeCrypto, nodeCrypto],
  [nodeCrypto, nobleCrypto],
  [nobleCrypto, nodeCrypto],
];

for (const [cb, rb] of pairs) {
  const label = `client ${cb.name}, relays ${rb.name}`;

  test(`cells reach each hop in both directions (${label})`, () => {
    const c = circuit(cb, rb);
    for (let hop = 0; hop < HOPS; hop++) {
      const data = nodeCrypto.randomBytes(100 + hop);
      const f = relayPayload(2, 7 + hop, data);
      assert.equal(sendForward(c, hop, f), hop);
      assert.deepEqual(dataOf(f), data);
      assert.equal(f[0], 2);
      assert.deepEqual(c.relays[hop]!.forward.lastDigest, c.client[hop]!.forward.lastDigest);

      const b = relayPayload(2, 7 + hop, data.subarray(0, 50));
      assert.equal(sendBackward(c, hop, b), hop);
      assert.deepEqual(dataOf(b), data.subarray(0, 50));
      assert.deepEqual(c.client[hop]!.backward.lastDigest, c.relays[hop]!.backward.lastDigest);
    }
  });

  test(`many cells in a row, interleaving hops and directions (${label})`, () => {
    const c = circuit(cb, rb);
    const rnd = nodeCrypto.randomBytes(600);
    for (let n = 0; n < 600; n++) {
      const r = rnd[n]!;
      const hop = r % HOPS;
      const forward = (r & 0x80) === 0;
      const data = nodeCrypto.randomBytes(r % 2 === 0 ? 498 : r);
      const streamId = 1 + (n % 5);
      const p = relayPayload(1 + (n % 15), streamId, data);
      const got = forward ? sendForward(c, hop, p) : sendBackward(c, hop, p);
      assert.equal(got, hop, `cell ${n} ${forward ? 'forward' : 'backward'} hop ${hop}`);
      assert.deepEqual(dataOf(p), data);
      assert.equal(p[0], 1 + (n % 15));
      assert.equal((p[3]! << 8) | p[4]!, streamId);
      // Both ends agree on the running digest (what v1 SENDMEs carry).
      const [a, b] = forward
        ? [c.client[hop]!.forward, c.relays[hop]!.forward]
        : [c.relays[hop]!.backward, c.client[hop]!.backward];
      assert.deepEqual(a.lastDigest, b.lastDigest);
    }
  });
}

/** Positions in the 509-byte payload: header fields, digest, data, padding. */
const FLIP_POSITIONS: Array<[string, number]> = [
  ['command', 0],
  ['recognized', 1],
  ['recognized', 2],
  ['stream id', 4],
  ['digest', 5],
  ['digest', 8],
  ['length', 10],
  ['data', 11],
  ['data', 60],
  ['padding', 300],
  ['padding', 508],
];

test('a single flipped bit in flight makes the recipient refuse the cell', () => {
  for (const [cb, rb] of pairs) {
    for (const [field, at] of FLIP_POSITIONS) {
      for (let hop = 0; hop < HOPS; hop++) {
        for (let link = 0; link <= hop; link++) {
          const bit = 1 << ((at + hop + link) % 8);
          const tamper: Tamper = (cell, l) => {
            if (l === link) cell[at]! ^= bit;
          };
          const where = `${field} byte ${at} bit ${bit}, hop ${hop}, link ${link}, ${cb.name}/${rb.name}`;

          // A good cell first, so the running digests are not fresh.
          const c = circuit(cb, rb);
          assert.equal(sendForward(c, hop, relayPayload(2, 1, new Uint8Array(40).fill(1))), hop);
          assert.equal(sendBackward(c, hop, relayPayload(2, 1, new Uint8Array(40).fill(2))), hop);

          const data = new Uint8Array(100).fill(0x5a);
          assert.equal(sendForward(c, hop, relayPayload(2, 1, data), tamper), TEARDOWN, `forward: ${where}`);
          assert.equal(sendBackward(c, hop, relayPayload(2, 1, data), tamper), TEARDOWN, `backward: ${where}`);
        }
      }
    }
  }
});

test('the recipient refuses a flipped cell and its running digest does not move', () => {
  const c = circuit(nodeCrypto, nodeCrypto);
  const p = relayPayload(2, 1, new Uint8Array(10));
  c.client[2]!.forward.seal(p);
  c.client[1]!.forward.crypt(p);
  c.client[0]!.forward.crypt(p);
  const bad = new Uint8Array(p);
  bad[400]! ^= 1;
  // Exit side, open() on the flipped copy: no; the relays' ciphers have
  // advanced, so the circuit is unusable and the caller destroys it.
  c.relays[0]!.forward.crypt(bad);
  c.relays[1]!.forward.crypt(bad);
  c.relays[2]!.forward.crypt(bad);
  const before = c.relays[2]!.forward.lastDigest;
  assert.equal(c.relays[2]!.forward.open(bad), false);
  assert.deepEqual(c.relays[2]!.forward.lastDigest, before);
  // Undo the flip (in CTR mode a ciphertext bit flips the same plaintext bit):
  // now it opens, so the refusal was due to the flip alone and the refused
  // attempt left the running digest where it was.
  bad[400]! ^= 1;
  assert.equal(c.relays[2]!.forward.open(bad), true);
});

test('cells for a hop are not recognized by the other hops', () => {
  const c = circuit(nodeCrypto, nobleCrypto);
  for (let n = 0; n < 200; n++) {
    const p = relayPayload(2, 1, new Uint8Array([n & 0xff]));
    c.client[2]!.forward.seal(p);
    c.client[1]!.forward.crypt(p);
    c.client[0]!.forward.crypt(p);
    for (let i = 0; i < HOPS; i++) {
      c.relays[i]!.forward.crypt(p);
      assert.equal(c.relays[i]!.forward.open(p), i === 2);
    }
  }
});
