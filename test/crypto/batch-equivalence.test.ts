/**
 * Batched relay-cell crypto (OnionLayer.cryptCells, sealDigest, openDigest
 * with `final`, peelBackward) against the one-cell-at-a-time operations of
 * docs/protocol.md §4: over random circuits (1-4 hops), random cell counts,
 * random hops of origin, random read boundaries and corrupted cells, the
 * bytes, the recognizing hops and the running digests must be identical.
 * A seeded generator makes every case reproducible.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nodeCrypto, type CryptoBackend } from '../../src/crypto/crypto.js';
import { nobleCrypto } from '../../src/crypto/noble-backend.js';
import { peelBackward, tor1Layers, type HopLayers } from '../../src/crypto/onion-layer.js';
import { ChannelCommand, encodeChannelCell, cellPayload } from '../../src/cell/channel-cell.js';
import { RelayCommand, writeRelayFields } from '../../src/cell/relay-cell.js';
import { hex } from '../../src/bytes.js';
import { xorshift32 } from '../support/seeded-random.js';

const rng = xorshift32;

/** The same key material twice: one copy for each side (or each way of processing). */
function circuitPair(r: ReturnType<typeof rng>, hops: number, backend: CryptoBackend): [HopLayers[], HopLayers[]] {
  const material = Array.from({ length: hops }, () => r.bytes(72));
  return [material.map((m) => tor1Layers(m, backend)), material.map((m) => tor1Layers(m, backend))];
}

/** A RELAY cell carrying DATA with `length` random bytes on `streamId`, ready for sealing. */
function dataCell(r: ReturnType<typeof rng>, streamId: number, length: number): Uint8Array {
  const cell = encodeChannelCell(0x80000001, ChannelCommand.RELAY);
  writeRelayFields(cellPayload(cell), RelayCommand.DATA, streamId, r.bytes(length));
  return cell;
}

/** Split `count` items into random consecutive groups (the reads of a link). */
function readBoundaries(r: ReturnType<typeof rng>, count: number): number[][] {
  const groups: number[][] = [];
  let at = 0;
  while (at < count) {
    const n = 1 + r.int(Math.min(count - at, r.int(3) === 0 ? 200 : 20));
    groups.push(Array.from({ length: n }, (_, i) => at + i));
    at += n;
  }
  return groups;
}

for (const backend of [nodeCrypto, nobleCrypto]) {
  test(`cryptCells equals crypt() cell by cell (${backend.name})`, () => {
    for (let seed = 1; seed <= 20; seed++) {
      const r = rng(seed * 7919);
      const [a, b] = circuitPair(r, 1, backend);
      const count = r.int(300);
      const cells = Array.from({ length: count }, () => r.bytes(514));
      const one = cells.map((c) => c.slice());
      const many = cells.map((c) => c.slice());
      for (const c of one) a[0]!.forward.crypt(c.subarray(5));
      for (const group of readBoundaries(r, count)) b[0]!.forward.cryptCells(group.map((i) => many[i]!));
      assert.deepEqual(many.map(hex), one.map(hex), `seed ${seed}`);
      // Headers are untouched and the keystream positions agree afterwards.
      const probe = r.bytes(509);
      const p1 = probe.slice();
      const p2 = probe.slice();
      a[0]!.forward.crypt(p1);
      b[0]!.forward.cryptCells([p2], 1, 0);
      assert.equal(hex(p1), hex(p2));
    }
  });

  test(`cryptCells over adjacent views of one buffer and longer cells equals crypt() cell by cell (${backend.name})`, () => {
    // A link delivers cells as adjacent 514-byte views into one opened frame
    // (copied whole into the gather buffer, last to first); other callers may
    // pass longer arrays whose payload is at byte 5 (copied as a view).
    for (let seed = 1; seed <= 20; seed++) {
      const r = rng(seed * 6007);
      const [a, b] = circuitPair(r, 1, backend);
      const count = 1 + r.int(300);
      const frame = r.bytes(count * 514 + 7);
      const long = Array.from({ length: count }, () => r.bytes(514 + 1 + r.int(40)));
      const isLong = Array.from({ length: count }, () => r.int(4) === 0);
      const frameOne = frame.slice();
      const longOne = long.map((c) => c.slice());
      for (let i = 0; i < count; i++) {
        const payload = isLong[i] ? longOne[i]!.subarray(5, 514) : frameOne.subarray(3 + i * 514 + 5, 3 + (i + 1) * 514);
        a[0]!.forward.crypt(payload);
      }
      const views = Array.from({ length: count }, (_, i) => (isLong[i] ? long[i]! : frame.subarray(3 + i * 514, 3 + (i + 1) * 514)));
      for (const group of readBoundaries(r, count)) b[0]!.forward.cryptCells(group.map((i) => views[i]!));
      assert.equal(hex(frame), hex(frameOne), `seed ${seed}: the frame, headers and the bytes around the cells included`);
      assert.deepEqual(long.map(hex), longOne.map(hex), `seed ${seed}: the longer cells, past byte 514 included`);
    }
  });

  test(`sealDigest + cryptCells equals seal() cell by cell, digests included (${backend.name})`, () => {
    for (let seed = 1; seed <= 10; seed++) {
      const r = rng(seed * 104729);
      const [a, b] = circuitPair(r, 1, backend);
      const count = 1 + r.int(250);
      const plain = Array.from({ length: count }, () => dataCell(r, 1 + r.int(5), r.int(499)));
      const one = plain.map((c) => c.slice());
      const many = plain.map((c) => c.slice());
      const digestsOne = one.map((c) => {
        a[0]!.backward.seal(cellPayload(c));
        return hex(a[0]!.backward.lastDigest);
      });
      const digestsMany: string[] = [];
      for (const group of readBoundaries(r, count)) {
        for (const i of group) {
          b[0]!.backward.sealDigest(cellPayload(many[i]!));
          digestsMany.push(hex(b[0]!.backward.lastDigest));
        }
        b[0]!.backward.cryptCells(group.map((i) => many[i]!));
      }
      assert.deepEqual(digestsMany, digestsOne, `seed ${seed}`);
      assert.deepEqual(many.map(hex), one.map(hex), `seed ${seed}`);
    }
  });
}

/**
 * The client side: cells sealed by random hops of a random circuit (one bit
 * flipped now and then), received cell by cell (crypt and open hop after hop,
 * §4.4) and in random batches (peelBackward); equal up to and including the
 * first cell no hop recognizes, after which the circuit is dead.
 */
test('peelBackward equals receiving cell by cell, over random circuits, counts, read boundaries and corruption', () => {
  for (let seed = 1; seed <= 60; seed++) {
    const r = rng(seed * 2654435761);
    const hops = 1 + r.int(4);
    const material = Array.from({ length: hops }, () => r.bytes(72));
    const [relays, clientOne, clientMany, clientViews] = [0, 1, 2, 3].map(() => material.map((m) => tor1Layers(m))) as [HopLayers[], HopLayers[], HopLayers[], HopLayers[]];
    const count = 1 + r.int(400);
    const corruptAt = r.int(3) === 0 ? r.int(count) : -1;
    const wire: Uint8Array[] = [];
    const origin: number[] = [];
    for (let i = 0; i < count; i++) {
      const hop = r.int(hops);
      const cell = dataCell(r, 1 + r.int(3), r.int(499));
      relays[hop]!.backward.seal(cellPayload(cell));
      for (let h = hop - 1; h >= 0; h--) relays[h]!.backward.crypt(cellPayload(cell));
      if (i === corruptAt) cell[5 + r.int(509)]! ^= 1 << r.int(8);
      wire.push(cell);
      origin.push(hop);
    }

    // Cell by cell, as §4.4 says.
    const oneCells = wire.map((c) => c.slice());
    const oneHops: number[] = [];
    const oneDigests: string[] = [];
    for (const cell of oneCells) {
      let found = -1;
      for (let h = 0; h < hops; h++) {
        const layer = clientOne[h]!.backward;
        layer.crypt(cellPayload(cell));
        if (layer.open(cellPayload(cell))) {
          found = h;
          break;
        }
      }
      oneHops.push(found);
      oneDigests.push(found < 0 ? '' : hex(clientOne[found]!.backward.lastDigest));
      if (found < 0) break;
    }

    // In random batches; the last layer final on odd seeds (a built circuit).
    const final = seed % 2 === 1;
    const manyCells = wire.map((c) => c.slice());
    const manyHops: number[] = [];
    const manyDigests: string[] = [];
    const layers = clientMany.map((h) => h.backward);
    for (const group of readBoundaries(r, count)) {
      const hopOf: number[] = [];
      // Filled with a marker: a digest left over from an earlier cell would show.
      const digestOf = new Uint8Array(20 * group.length).fill(0xee);
      peelBackward(layers, group.map((i) => manyCells[i]!), hopOf, digestOf, final);
      let dead = false;
      for (let j = 0; j < group.length; j++) {
        manyHops.push(hopOf[j]!);
        manyDigests.push(hopOf[j]! < 0 ? '' : hex(digestOf.subarray(20 * j, 20 * j + 20)));
        if (hopOf[j]! < 0) {
          dead = true;
          break;
        }
      }
      if (dead) break;
    }

    // The same batches once more, the peeled payloads handed out (payloads): compared after every
    // batch was peeled, so a later batch overwriting an earlier one's payloads would show.
    const viewCells = wire.map((c) => c.slice());
    const viewHops: number[] = [];
    const viewPayloads: Uint8Array[] = [];
    const viewLayers = clientViews.map((h) => h.backward);
    for (const group of readBoundaries(rng(seed * 7919), count)) {
      const hopOf: number[] = [];
      const payloads: Uint8Array[] = [];
      peelBackward(viewLayers, group.map((i) => viewCells[i]!), hopOf, new Uint8Array(20 * group.length), final, payloads);
      let dead = false;
      for (let j = 0; j < group.length; j++) {
        viewHops.push(hopOf[j]!);
        viewPayloads.push(payloads[j]!);
        if (hopOf[j]! < 0) {
          dead = true;
          break;
        }
      }
      if (dead) break;
    }

    assert.deepEqual(manyHops, oneHops, `seed ${seed}: recognizing hops`);
    assert.deepEqual(manyDigests, oneDigests, `seed ${seed}: running digests`);
    const upTo = oneHops.length;
    assert.deepEqual(manyCells.slice(0, upTo).map(hex), oneCells.slice(0, upTo).map(hex), `seed ${seed}: bytes`);
    assert.deepEqual(viewHops, oneHops, `seed ${seed}: recognizing hops, payloads handed out`);
    assert.deepEqual(viewPayloads.map(hex), oneCells.slice(0, upTo).map((c) => hex(cellPayload(c))), `seed ${seed}: payload bytes, handed out`);
    if (corruptAt < 0) {
      assert.deepEqual(oneHops, origin, `seed ${seed}: every cell recognized by the hop that sealed it`);
    } else {
      assert.equal(oneHops.length, corruptAt + 1, `seed ${seed}: the flipped cell is recognized by no hop`);
      assert.equal(oneHops[corruptAt], -1);
    }
  }
});

test('a final open that fails spoils the layer: later opens give null, other uses throw', () => {
  const r = rng(99);
  const [a] = circuitPair(r, 1, nodeCrypto);
  const layer = a[0]!.backward;
  const cell = dataCell(r, 1, 10);
  cellPayload(cell)[7]! ^= 1; // the digest field: recognized stays zero, the digest cannot match
  assert.equal(layer.openDigest(cellPayload(cell), true), null);
  assert.equal(layer.openDigest(cellPayload(dataCell(r, 1, 10))), null);
  assert.throws(() => layer.crypt(new Uint8Array(509)), { code: 'ERR_CONFIG' });
  assert.throws(() => layer.lastDigest, { code: 'ERR_CONFIG' });
});
