import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nodeCrypto } from '../../src/crypto/crypto.js';
import { nobleCrypto } from '../../src/crypto/noble-backend.js';
import { concat, hex } from '../../src/bytes.js';
import { CELL_LENGTH } from '../../src/constants.js';
import { CipherState } from '../../src/link/noise.js';
import {
  Deframer,
  FrameOpener,
  FrameSealer,
  MAX_CELLS_PER_FRAME,
  MIN_FRAME_CIPHERTEXT,
  MAX_FRAME_CIPHERTEXT_USED,
  encodeFrame,
  splitCells,
} from '../../src/link/frame.js';

function cells(n: number, seed = 0): Uint8Array {
  const out = new Uint8Array(n * CELL_LENGTH);
  for (let i = 0; i < out.length; i++) out[i] = (i * 31 + seed * 7 + (i >>> 9)) & 0xff;
  return out;
}

function pair(backend = nodeCrypto, rekeyInterval?: number) {
  const key = backend.randomBytes(32);
  return {
    sealer: new FrameSealer(new CipherState(key, backend), rekeyInterval),
    opener: new FrameOpener(new CipherState(key, backend), rekeyInterval),
  };
}

test('frame limits', () => {
  assert.equal(MAX_CELLS_PER_FRAME, 127);
  assert.equal(MIN_FRAME_CIPHERTEXT, 530);
  assert.equal(MAX_FRAME_CIPHERTEXT_USED, 127 * 514 + 16);
  assert.ok(MAX_FRAME_CIPHERTEXT_USED <= 65535);
  assert.ok(128 * 514 + 16 > 65535);
});

for (const backend of [nodeCrypto, nobleCrypto]) {
  test(`seal / deframe / open round trip through ${backend.name}`, () => {
    const { sealer, opener } = pair(backend);
    const sent = [cells(1, 1), cells(2, 2), cells(127, 3), cells(50, 4)];
    const wire = concat(...sent.map((p) => sealer.seal(p)));
    assert.equal(wire.length, sent.reduce((n, p) => n + 2 + p.length + 16, 0));
    const frames = new Deframer().push(wire);
    assert.equal(frames.length, sent.length);
    frames.forEach((f, i) => assert.equal(hex(opener.open(f)), hex(sent[i]!)));
  });
}

test('sealCells cuts any number of cells into frames of at most 127', () => {
  const { sealer, opener } = pair();
  const all = cells(300, 9);
  const frames = sealer.sealCells(all);
  assert.equal(frames.length, 3);
  const d = new Deframer();
  const opened = frames.flatMap((f) => d.push(f)).map((c) => opener.open(c));
  assert.deepEqual(opened.map((p) => p.length / CELL_LENGTH), [127, 127, 46]);
  assert.equal(hex(concat(...opened)), hex(all));
  const split = splitCells(opened[2]!);
  assert.equal(split.length, 46);
  assert.equal(split[0]!.buffer === opened[2]!.buffer, false, 'cells are unshared copies');
});

test('deframer: split at every byte offset still yields the same frames', () => {
  const { sealer } = pair();
  const wire = concat(sealer.seal(cells(1, 1)), sealer.seal(cells(3, 2)), sealer.seal(cells(2, 3)));
  const whole = new Deframer().push(wire).map(hex);
  for (let cut = 0; cut <= wire.length; cut++) {
    const d = new Deframer();
    const got = [...d.push(wire.subarray(0, cut)), ...d.push(wire.subarray(cut))].map(hex);
    assert.deepEqual(got, whole, `cut at ${cut}`);
    assert.equal(d.buffered, 0);
  }
  // And one byte at a time.
  const d = new Deframer();
  const got: string[] = [];
  for (let i = 0; i < wire.length; i++) {
    got.push(...d.push(wire.subarray(i, i + 1)).map(hex));
    assert.ok(d.buffered <= 2 + MAX_FRAME_CIPHERTEXT_USED);
  }
  assert.deepEqual(got, whole);
});

test('deframer: a partial frame is not an error until the stream ends', () => {
  const { sealer } = pair();
  const frame = sealer.seal(cells(1));
  const d = new Deframer();
  assert.deepEqual(d.push(frame.subarray(0, 100)), []);
  assert.equal(d.buffered, 100);
  assert.throws(() => d.end(), { code: 'ERR_TRUNCATED' });
  assert.equal(d.push(frame.subarray(100)).length, 1);
  d.end();
});

test('deframer: lengths too short or too long close the link', () => {
  assert.throws(() => new Deframer().push(Uint8Array.of(0, 0)), { code: 'ERR_MALFORMED' });
  assert.throws(() => new Deframer().push(Uint8Array.of(0x02, 0x11)), { code: 'ERR_MALFORMED' }); // 529
  assert.throws(() => new Deframer().push(Uint8Array.of(0xff, 0xff)), { code: 'ERR_OVERSIZED' });
  const tooBig = MAX_FRAME_CIPHERTEXT_USED + 1;
  assert.throws(() => new Deframer().push(Uint8Array.of(tooBig >> 8, tooBig & 0xff)), { code: 'ERR_OVERSIZED' });
  // Header split across pushes is still checked.
  const d = new Deframer();
  assert.deepEqual(d.push(Uint8Array.of(0xff)), []);
  assert.throws(() => d.push(Uint8Array.of(0xff)), { code: 'ERR_OVERSIZED' });
  assert.throws(() => d.push(Uint8Array.of(0)), { code: 'ERR_MALFORMED' }, 'a failed deframer stays failed');
  assert.throws(() => encodeFrame(new Uint8Array(65536)), { code: 'ERR_OVERSIZED' });
});

test('opener: tampered, replayed or reordered frames fail authentication', () => {
  const { sealer, opener } = pair();
  const f1 = new Deframer().push(sealer.seal(cells(1, 1)))[0]!;
  const f2 = new Deframer().push(sealer.seal(cells(1, 2)))[0]!;
  const bad = new Uint8Array(f1);
  bad[100]! ^= 0x40;
  assert.throws(() => opener.open(bad), { code: 'ERR_PROTOCOL' });
  assert.throws(() => opener.open(f2), { code: 'ERR_PROTOCOL' }, 'out of order');
  opener.open(f1);
  assert.throws(() => opener.open(f1), { code: 'ERR_PROTOCOL' }, 'replay');
  opener.open(f2);
});

test('opener: authentic plaintext that is not whole cells is a ProtocolError', () => {
  const key = nodeCrypto.randomBytes(32);
  const raw = new CipherState(key);
  const opener = new FrameOpener(new CipherState(key));
  const odd = raw.encryptWithAd(new Uint8Array(0), new Uint8Array(600));
  const frames = new Deframer().push(encodeFrame(odd));
  assert.equal(frames.length, 1);
  assert.throws(() => opener.open(frames[0]!), { name: 'ProtocolError' });
  assert.throws(() => splitCells(new Uint8Array(0)), { name: 'ProtocolError' });
  assert.throws(() => splitCells(new Uint8Array(515)), { name: 'ProtocolError' });
});

test('sealer refuses plaintexts that are not 1..127 cells', () => {
  const { sealer } = pair();
  assert.throws(() => sealer.seal(new Uint8Array(0)), RangeError);
  assert.throws(() => sealer.seal(new Uint8Array(513)), RangeError);
  assert.throws(() => sealer.seal(cells(128)), RangeError);
});

test('both directions rekey after every N frames and stay in step; nonces never repeat', () => {
  const key = nodeCrypto.randomBytes(32);
  const sendCs = new CipherState(key);
  const sealer = new FrameSealer(sendCs, 4);
  const opener = new FrameOpener(new CipherState(key), 4);
  const plain = cells(1, 5);
  const d = new Deframer();
  const seen = new Set<string>();
  for (let i = 0; i < 13; i++) {
    const frame = sealer.seal(plain);
    const ct = d.push(frame)[0]!;
    seen.add(hex(ct));
    assert.equal(hex(opener.open(ct)), hex(plain));
  }
  assert.equal(seen.size, 13);
  assert.equal(sendCs.nonce, 13, 'rekey keeps the counter running');
  // A sealer that does not rekey diverges from the rekeying opener after frame 4.
  const plainSealer = new FrameSealer(new CipherState(key), 1 << 30);
  const strictOpener = new FrameOpener(new CipherState(key), 4);
  for (let i = 0; i < 4; i++) strictOpener.open(new Deframer().push(plainSealer.seal(plain))[0]!);
  assert.throws(() => strictOpener.open(new Deframer().push(plainSealer.seal(plain))[0]!), { code: 'ERR_PROTOCOL' });
});
