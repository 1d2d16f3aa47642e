/**
 * Fuzz the cell codecs (src/cell/): random bytes, mutated valid encodings and
 * every truncation of a few samples must decode or throw an AlliumError, and
 * decode(encode(x)) must give x back for random valid x. Seeded: every run
 * sees the same inputs.
 */
import { test } from 'node:test';
import { SocketAddress } from 'node:net';
import assert from 'node:assert/strict';
import { CELL_LENGTH, CELL_PAYLOAD_LENGTH, RELAY_DATA_LENGTH } from '../../src/constants.js';
import { decodeChannelCell, encodeChannelCell, encodeDestroy } from '../../src/cell/channel-cell.js';
import { decodeRelayCell, encodeRelayCell } from '../../src/cell/relay-cell.js';
import { decodeCreate2, decodeCreated2, encodeCreate2, encodeCreated2 } from '../../src/cell/create2.js';
import {
  decodeExtend2,
  decodeExtended2,
  encodeExtend2,
  encodeExtended2,
  specifiersToTarget,
  targetToSpecifiers,
  LinkSpecifierType,
  type ExtendTarget,
  type LinkSpecifier,
} from '../../src/cell/extend2.js';
import { decodeBegin, decodeConnected, decodeEnd, encodeBegin, encodeConnected, encodeEnd } from '../../src/cell/stream-messages.js';
import { decodeSendme, encodeSendmeV1 } from '../../src/cell/sendme.js';
import { decodeNtorExtensions, encodeNtorExtensions, type NtorExtension } from '../../src/cell/ntor-extensions.js';
import { decodeRelayMsg, encodeRelayMsg, type RelayMsg, type ResolvedAnswer } from '../../src/cell/relay-msg.js';
import { Rng, describeBytes, expectTyped, fuzzBytes, mutate } from './fuzz-util.js';

const OPTS = { random: 1500, maxRandomLength: 600, mutated: 1500, truncateSamples: 3 };

function randomChannelCell(rng: Rng): Uint8Array {
  return encodeChannelCell(rng.u32(), rng.int(256), rng.bytes(rng.length(CELL_PAYLOAD_LENGTH)));
}

function randomRelayMessage(rng: Rng) {
  return { command: rng.int(256), streamId: rng.int(0x10000), data: rng.bytes(rng.length(RELAY_DATA_LENGTH)) };
}

function randomTarget(rng: Rng): ExtendTarget {
  return {
    address: `${rng.int(256)}.${rng.int(256)}.${rng.int(256)}.${rng.int(256)}`,
    port: rng.range(1, 65535),
    identity: rng.bytes(32),
    linkKey: rng.bytes(32),
  };
}

function randomExtend2(rng: Rng) {
  const specifiers: LinkSpecifier[] = rng.bool(0.6)
    ? targetToSpecifiers(randomTarget(rng))
    : Array.from({ length: rng.int(5) }, () => ({ type: rng.pick([0, 1, 2, 3, 128, rng.int(256)]), body: rng.bytes(rng.pick([0, 6, 18, 20, 32, rng.int(40)])) }));
  if (rng.bool(0.3)) specifiers.splice(rng.int(specifiers.length + 1), 0, { type: LinkSpecifierType.IPV6, body: rng.bytes(18) });
  const used = specifiers.reduce((n, s) => n + 2 + s.body.length, 1);
  return { specifiers, handshakeType: rng.int(0x10000), handshakeData: rng.bytes(rng.int(RELAY_DATA_LENGTH - used - 4 + 1)) };
}

const HOST_CHARS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_';

function randomBegin(rng: Rng) {
  let host: string;
  const kind = rng.int(3);
  if (kind === 0) host = Array.from({ length: rng.range(1, 60) }, () => rng.pick([...HOST_CHARS])).join('');
  else if (kind === 1) host = `${rng.int(256)}.${rng.int(256)}.${rng.int(256)}.${rng.int(256)}`;
  else host = Array.from({ length: 8 }, () => rng.int(0x10000).toString(16)).join(':');
  return { host, port: rng.range(1, 65535), flags: rng.u32() };
}

function randomExtensions(rng: Rng): NtorExtension[] {
  return Array.from({ length: rng.int(6) }, () => ({ type: rng.int(256), body: rng.bytes(rng.length(60)) }));
}

test('fuzz channel cells: decodeChannelCell never throws a non-Allium error; round trip', () => {
  const rng = new Rng(0xc0ffee01);
  const samples = Array.from({ length: 8 }, () => randomChannelCell(rng));
  samples.push(encodeDestroy(rng.u32(), 3));
  // Random lengths mostly miss 514; add random bytes of exactly 514 too.
  const t = fuzzBytes('decodeChannelCell', rng, decodeChannelCell, samples, OPTS);
  for (let i = 0; i < 300; i++) expectTyped(() => decodeChannelCell(rng.bytes(CELL_LENGTH)), () => 'decodeChannelCell on 514 random bytes', t);
  assert.ok(t.ok > 300 && t.rejected > 0, JSON.stringify(t));
  for (let i = 0; i < 500; i++) {
    const circuitId = rng.u32();
    const command = rng.int(256);
    const payload = rng.bytes(rng.length(CELL_PAYLOAD_LENGTH));
    const cell = decodeChannelCell(encodeChannelCell(circuitId, command, payload));
    const padded = new Uint8Array(CELL_PAYLOAD_LENGTH);
    padded.set(payload);
    assert.deepEqual({ ...cell, payload: new Uint8Array(cell.payload) }, { circuitId, command, payload: padded });
  }
});

test('fuzz relay cells: decodeRelayCell; round trip', () => {
  const rng = new Rng(0xc0ffee02);
  const samples = Array.from({ length: 8 }, () => encodeRelayCell(randomRelayMessage(rng), (n) => rng.bytes(n)));
  const t = fuzzBytes('decodeRelayCell', rng, decodeRelayCell, samples, OPTS);
  for (let i = 0; i < 500; i++) expectTyped(() => decodeRelayCell(rng.bytes(CELL_PAYLOAD_LENGTH)), () => 'decodeRelayCell on 509 random bytes', t);
  assert.ok(t.ok > 200 && t.rejected > 0, JSON.stringify(t));
  for (let i = 0; i < 500; i++) {
    const m = randomRelayMessage(rng);
    const d = decodeRelayCell(encodeRelayCell(m, rng.bool() ? (n) => rng.bytes(n) : undefined));
    assert.deepEqual(
      { command: d.command, streamId: d.streamId, data: new Uint8Array(d.data), recognized: d.recognized, digest: new Uint8Array(d.digest) },
      { ...m, recognized: 0, digest: new Uint8Array(4) },
    );
  }
});

test('fuzz CREATE2 / CREATED2: decoders; round trip (bare and padded to a cell payload)', () => {
  const rng = new Rng(0xc0ffee03);
  const c2 = Array.from({ length: 8 }, () => encodeCreate2({ handshakeType: rng.int(0x10000), handshakeData: rng.bytes(rng.length(CELL_PAYLOAD_LENGTH - 4)) }));
  const d2 = Array.from({ length: 8 }, () => encodeCreated2(rng.bytes(rng.length(CELL_PAYLOAD_LENGTH - 2))));
  const t1 = fuzzBytes('decodeCreate2', rng, decodeCreate2, c2, OPTS);
  const t2 = fuzzBytes('decodeCreated2', rng, decodeCreated2, d2, OPTS);
  assert.ok(t1.ok > 0 && t1.rejected > 0 && t2.ok > 0 && t2.rejected > 0, JSON.stringify([t1, t2]));
  for (let i = 0; i < 500; i++) {
    const body = { handshakeType: rng.int(0x10000), handshakeData: rng.bytes(rng.length(CELL_PAYLOAD_LENGTH - 4)) };
    const enc = encodeCreate2(body);
    const padded = new Uint8Array(CELL_PAYLOAD_LENGTH);
    padded.set(enc);
    for (const bytes of [enc, padded]) {
      const d = decodeCreate2(bytes);
      assert.deepEqual({ handshakeType: d.handshakeType, handshakeData: new Uint8Array(d.handshakeData) }, body);
    }
    const hs = rng.bytes(rng.length(CELL_PAYLOAD_LENGTH - 2));
    assert.deepEqual(new Uint8Array(decodeCreated2(encodeCreated2(hs))), hs);
  }
});

test('fuzz EXTEND2 / EXTENDED2 and specifiersToTarget; round trip', () => {
  const rng = new Rng(0xc0ffee04);
  const e2 = Array.from({ length: 10 }, () => encodeExtend2(randomExtend2(rng)));
  // Decode, and when that works, also turn the specifiers into a target.
  const decodeAndTarget = (bytes: Uint8Array) => specifiersToTarget(decodeExtend2(bytes).specifiers);
  const t1 = fuzzBytes('decodeExtend2', rng, decodeExtend2, e2, OPTS);
  const t2 = fuzzBytes('specifiersToTarget(decodeExtend2)', rng, decodeAndTarget, e2, { ...OPTS, random: 300 });
  const ed = Array.from({ length: 6 }, () => encodeExtended2(rng.bytes(rng.length(RELAY_DATA_LENGTH - 2))));
  const t3 = fuzzBytes('decodeExtended2', rng, decodeExtended2, ed, OPTS);
  assert.ok(t1.ok > 0 && t1.rejected > 0 && t2.ok > 0 && t2.rejected > 0 && t3.ok > 0 && t3.rejected > 0, JSON.stringify([t1, t2, t3]));

  // specifiersToTarget on random specifier lists (not only decodable ones).
  for (let i = 0; i < 2000; i++) {
    const specs: LinkSpecifier[] = Array.from({ length: rng.int(6) }, () => ({
      type: rng.pick([0, 1, 2, 3, 128, rng.int(256)]),
      body: rng.bytes(rng.pick([0, 5, 6, 7, 31, 32, 33, rng.int(256)])),
    }));
    if (rng.bool(0.5)) specs.push(...targetToSpecifiers(randomTarget(rng)).filter(() => rng.bool(0.8)));
    expectTyped(() => specifiersToTarget(specs), () => `specifiersToTarget on ${JSON.stringify(specs.map((s) => [s.type, Buffer.from(s.body).toString('hex')]))}`);
  }

  for (let i = 0; i < 500; i++) {
    const body = randomExtend2(rng);
    const d = decodeExtend2(encodeExtend2(body));
    assert.deepEqual(
      { specifiers: d.specifiers.map((s) => ({ type: s.type, body: new Uint8Array(s.body) })), handshakeType: d.handshakeType, handshakeData: new Uint8Array(d.handshakeData) },
      body,
    );
    const target = randomTarget(rng);
    const hs = rng.bytes(rng.int(400));
    const back = decodeExtend2(encodeExtend2({ specifiers: targetToSpecifiers(target), handshakeType: 3, handshakeData: hs }));
    assert.deepEqual(specifiersToTarget(back.specifiers), target);
    assert.deepEqual(new Uint8Array(decodeExtended2(encodeExtended2(hs))), hs);
  }
});

test('fuzz stream messages: decodeBegin / decodeConnected / decodeEnd; round trip', () => {
  const rng = new Rng(0xc0ffee05);
  const begins = Array.from({ length: 10 }, () => encodeBegin(randomBegin(rng)));
  const connected = [encodeConnected('1.2.3.4'), encodeConnected('255.0.0.1', 0xffffffff), encodeConnected(null)];
  // The IPv6 form Tor sends: 0x00000000 | 6 | IPv6 (16) | TTL (4).
  connected.push(Uint8Array.from([0, 0, 0, 0, 6, ...rng.bytes(16), 0, 0, 1, 44]));
  const tb = fuzzBytes('decodeBegin', rng, decodeBegin, begins, OPTS);
  // Text-shaped inputs reach further into the host:port grammar than random bytes.
  for (let i = 0; i < 1500; i++) {
    const text = Array.from({ length: rng.length(80) }, () => rng.pick([...HOST_CHARS, ':', '[', ']', ':', '0', '9', ' ', '\u00e9', '\ufffd'])).join('');
    const bytes = new Uint8Array([...Buffer.from(text, 'utf8'), 0, ...rng.bytes(rng.pick([0, 0, 4, 4, 2, 5]))]);
    expectTyped(() => decodeBegin(bytes), () => `decodeBegin on ${describeBytes(bytes)}`, tb);
  }
  const tc = fuzzBytes('decodeConnected', rng, decodeConnected, connected, { ...OPTS, truncateSamples: 4 });
  const te = fuzzBytes('decodeEnd', rng, decodeEnd, [encodeEnd(4), encodeEnd(6)], OPTS);
  assert.ok(tb.ok > 0 && tb.rejected > 0 && tc.ok > 0 && tc.rejected > 0 && te.ok > 0, JSON.stringify([tb, tc, te]));

  for (let i = 0; i < 500; i++) {
    const b = randomBegin(rng);
    assert.deepEqual(decodeBegin(encodeBegin(b)), b);
    // 0.0.0.0 encodes to all zeros, which reads as the IPv6 form: not a round trip, so skip it.
    const octets = [rng.int(256), rng.int(256), rng.int(256), rng.int(256)];
    if (octets.some((o) => o !== 0)) {
      const address = octets.join('.');
      const ttl = rng.u32();
      assert.deepEqual(decodeConnected(encodeConnected(address, ttl)), { address, ttl });
    }
    const reason = rng.int(256);
    assert.equal(decodeEnd(encodeEnd(reason)), reason);
  }
});

test('fuzz SENDME: decodeSendme; v1 round trip', () => {
  const rng = new Rng(0xc0ffee06);
  const samples = [encodeSendmeV1(rng.bytes(20)), encodeSendmeV1(rng.bytes(20)), Uint8Array.of(0, 0, 0), Uint8Array.of(0, 0, 2, 9, 9)];
  const t = fuzzBytes('decodeSendme', rng, decodeSendme, samples, { ...OPTS, maxRandomLength: 64 });
  assert.ok(t.ok > 0 && t.rejected > 0, JSON.stringify(t));
  for (let i = 0; i < 500; i++) {
    const digest = rng.bytes(20);
    assert.deepEqual(new Uint8Array(decodeSendme(encodeSendmeV1(digest))!), digest);
  }
});

test('fuzz ntor-v3 extensions: decodeNtorExtensions; round trip', () => {
  const rng = new Rng(0xc0ffee07);
  const samples = Array.from({ length: 10 }, () => encodeNtorExtensions(randomExtensions(rng)));
  const t = fuzzBytes('decodeNtorExtensions', rng, decodeNtorExtensions, samples, { ...OPTS, maxRandomLength: 300 });
  assert.ok(t.ok > 0 && t.rejected > 0, JSON.stringify(t));
  for (let i = 0; i < 500; i++) {
    const list = randomExtensions(rng);
    assert.deepEqual(decodeNtorExtensions(encodeNtorExtensions(list)), list);
  }
  // Mutations that keep the count byte sane but shuffle the bodies.
  for (let i = 0; i < 500; i++) {
    const bytes = mutate(rng, encodeNtorExtensions(randomExtensions(rng)));
    expectTyped(() => decodeNtorExtensions(bytes), () => `decodeNtorExtensions on ${describeBytes(bytes)}`);
  }
});

function randomIPv6(rng: Rng): string {
  if (rng.bool(0.2)) return `::ffff:${rng.range(1, 255)}.${rng.int(256)}.${rng.int(256)}.${rng.int(256)}`;
  // Canonical text, as the decoders return it: node:net picks the compression. (It writes an address whose
  // first 96 bits are zero in the deprecated IPv4-compatible form, ::a.b.c.d, which RFC 5952 does not: redraw.)
  for (;;) {
    const groups = Array.from({ length: 8 }, () => (rng.bool(0.4) ? 0 : rng.int(0x10000)).toString(16));
    const text = new SocketAddress({ address: groups.join(':'), family: 'ipv6' }).address;
    if (!/^::[0-9.]+$/.test(text)) return text;
  }
}

function randomIPv4(rng: Rng): string {
  return `${rng.range(1, 255)}.${rng.int(256)}.${rng.int(256)}.${rng.int(256)}`;
}

function randomHostname(rng: Rng): string {
  return Array.from({ length: rng.range(1, 60) }, () => rng.pick([...HOST_CHARS])).join('');
}

function randomAnswer(rng: Rng): ResolvedAnswer {
  const ttl = rng.u32();
  switch (rng.int(4)) {
    case 0:
      return { type: 'hostname', hostname: randomHostname(rng), ttl };
    case 1:
      return { type: 'ipv4', address: randomIPv4(rng), ttl };
    case 2:
      return { type: 'ipv6', address: randomIPv6(rng), ttl };
    default:
      return { type: 'unrecognized', code: rng.pick([1, 2, 5, 0x63, 0xf2, 0xff]), value: rng.bytes(rng.int(30)), ttl };
  }
}

/** A random valid message of any kind. */
function randomRelayMsg(rng: Rng): RelayMsg {
  switch (rng.int(17)) {
    case 0:
      return { kind: 'begin', ...randomBegin(rng) };
    case 1:
      return { kind: 'data', data: rng.bytes(rng.length(RELAY_DATA_LENGTH)) };
    case 2: {
      if (rng.bool(0.5)) return { kind: 'end', reason: rng.int(256) };
      const address = rng.bool() ? randomIPv4(rng) : randomIPv6(rng);
      return rng.bool() ? { kind: 'end', reason: 4, address } : { kind: 'end', reason: 4, address, ttl: rng.u32() };
    }
    case 3:
      if (rng.bool(0.2)) return { kind: 'connected', address: null, ttl: 0 };
      return { kind: 'connected', address: rng.bool() ? randomIPv4(rng) : randomIPv6(rng), ttl: rng.u32() };
    case 4:
      return rng.bool() ? { kind: 'sendme', version: 0, digest: null } : { kind: 'sendme', version: 1, digest: rng.bytes(20) };
    case 5:
      return { kind: 'extend2', ...randomExtend2(rng) };
    case 6:
      return { kind: 'extended2', handshakeData: rng.bytes(rng.length(RELAY_DATA_LENGTH - 2)) };
    case 7:
      return { kind: 'truncate' };
    case 8:
      return { kind: 'truncated', reason: rng.int(256) };
    case 9:
      return { kind: 'drop' };
    case 10:
      return { kind: 'resolve', hostname: randomHostname(rng) };
    case 11:
      if (rng.bool(0.2)) return { kind: 'resolved', answers: [{ type: 'error', transient: rng.bool(), ttl: rng.u32() }] };
      return { kind: 'resolved', answers: Array.from({ length: rng.int(6) }, () => randomAnswer(rng)) };
    case 12:
      return { kind: 'begin_dir' };
    case 13:
      return { kind: 'xoff' };
    case 14:
      return { kind: 'xon', kbpsEwma: rng.u32() };
    case 15:
      return { kind: 'fin' };
    default: {
      let command = rng.int(256);
      while ((command >= 1 && command <= 15 && command !== 6 && command !== 7) || command === 43 || command === 44 || command === 240) command = rng.int(256);
      return { kind: 'unrecognized', command, body: rng.bytes(rng.length(RELAY_DATA_LENGTH)) };
    }
  }
}

/** Byte arrays in a message compare by content (decoded ones are views). */
function plain(msg: RelayMsg): unknown {
  return JSON.parse(JSON.stringify(msg, (_k, v: unknown) => (v instanceof Uint8Array ? `hex:${Buffer.from(v).toString('hex')}` : v)));
}

test('fuzz relay messages: decodeRelayMsg on every command; whatever decodes re-encodes to the same message', () => {
  const rng = new Rng(0xc0ffee08);
  const tally = { ok: 0, rejected: 0 };
  /** Decode; on success encode again and decode that: the same message must come back. */
  const check = (command: number, body: Uint8Array, kind: string) => {
    const msg = expectTyped(() => decodeRelayMsg(command, body), () => `decodeRelayMsg(${command}) on ${kind} input ${describeBytes(body)}`, tally);
    if (msg === undefined) return;
    let again: RelayMsg;
    try {
      const enc = encodeRelayMsg(msg);
      assert.equal(enc.command, command);
      again = decodeRelayMsg(enc.command, enc.body);
    } catch (err) {
      assert.fail(`decodeRelayMsg(${command}) on ${describeBytes(body)} gave ${JSON.stringify(plain(msg))}, which does not re-encode: ${String(err)}`);
    }
    assert.deepEqual(plain(again), plain(msg), `re-encoding ${kind} input ${describeBytes(body)} (command ${command})`);
  };
  const commands = () => (rng.bool(0.8) ? rng.range(1, 15) : rng.int(256));
  const samples = Array.from({ length: 40 }, () => encodeRelayMsg(randomRelayMsg(rng)));
  for (let i = 0; i < 4000; i++) check(commands(), rng.bytes(rng.length(RELAY_DATA_LENGTH + 4)), 'random');
  for (let i = 0; i < 6000; i++) {
    const s = rng.pick(samples);
    // Mutated bodies, sometimes under another command than their own.
    check(rng.bool(0.85) ? s.command : commands(), mutate(rng, s.body), 'mutated');
  }
  for (const s of samples.slice(0, 20)) for (let n = 0; n < s.body.length; n++) check(s.command, s.body.subarray(0, n), 'truncated');
  assert.ok(tally.ok > 2000 && tally.rejected > 2000, JSON.stringify(tally));

  for (let i = 0; i < 3000; i++) {
    const msg = randomRelayMsg(rng);
    const { command, body } = encodeRelayMsg(msg);
    assert.deepEqual(plain(decodeRelayMsg(command, body)), plain(msg), JSON.stringify(plain(msg)));
  }
});
