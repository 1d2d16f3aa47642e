/**
 * Fuzz the SOCKS5 server's parsers (client/socks/): the message decoders and
 * the SocksServerHandshake state machine, with random and mutated input in
 * random chunkings. Decoders return a value, null ("need more bytes") or
 * throw an AlliumError; the handshake returns a step (an error step for bad
 * input) and never throws anything but an AlliumError. Valid messages round-trip,
 * and the handshake's outcome does not depend on how the bytes are chunked.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AuthMethod,
  decodeAuthReply,
  decodeAuthRequest,
  decodeGreeting,
  decodeMethodSelection,
  decodeReply,
  decodeRequest,
  decodeSocks4Reply,
  decodeSocks4Request,
  encodeAuthReply,
  encodeAuthRequest,
  encodeGreeting,
  encodeMethodSelection,
  encodeReply,
  encodeRequest,
  encodeSocks4Reply,
  encodeSocks4Request,
  type AddressType,
  type Decoded,
} from '../../client/socks/messages.js';
import { SocksServerHandshake, type HandshakeStep } from '../../client/socks/handshake.js';
import { formatIPv6, parseIPv6 } from '../../src/net/address.js';
import { Rng, chunkings, concatAll, describeBytes, expectTyped, fuzzBytes, mutate, outcomes } from './fuzz-util.js';

type Decoder = (b: Uint8Array) => Decoded<unknown> | null;

function randomAddress(rng: Rng): { addressType: AddressType; host: string } {
  switch (rng.int(3)) {
    case 0:
      return { addressType: 'ipv4', host: Array.from(rng.bytes(4)).join('.') };
    case 1: {
      // Bias towards zero runs and IPv4-mapped addresses, the interesting formatting cases.
      const b = rng.bytes(16);
      for (let i = 0; i < 16; i++) if (rng.bool(0.4)) b[i] = 0;
      if (rng.bool(0.2)) b.set([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]);
      return { addressType: 'ipv6', host: formatIPv6(b) };
    }
    default:
      return { addressType: 'domain', host: Array.from({ length: rng.range(1, rng.bool(0.1) ? 255 : 40) }, () => String.fromCharCode(rng.range(0x21, 0x7e))).join('') };
  }
}

/** What a genuine client sends: IP addresses, or a valid lower-case hostname (src/net/hostname.ts), which the handshake passes on as it is. */
function randomGenuineAddress(rng: Rng): { addressType: AddressType; host: string } {
  const addr = randomAddress(rng);
  if (addr.addressType !== 'domain') return addr;
  const letters = 'abcdefghijklmnopqrstuvwxyz';
  const label = (chars: string) => Array.from({ length: rng.range(1, 20) }, () => chars[rng.int(chars.length)]!).join('');
  const labels = Array.from({ length: rng.range(0, 3) }, () => label(`${letters}0123456789`));
  return { addressType: 'domain', host: [...labels, label(letters)].join('.') };
}

function randomBinary(rng: Rng, max: number): string {
  return Buffer.from(rng.bytes(rng.length(max))).toString('latin1');
}

/**
 * Streaming-decoder laws on top of "returns or throws an AlliumError":
 * a decoded message ignores what follows it, and a rejection stays a rejection
 * when more bytes arrive.
 */
function checkStreaming(name: string, rng: Rng, decode: Decoder, input: Uint8Array): void {
  const what = () => `${name} on ${describeBytes(input)}`;
  let threw = false;
  const first = expectTyped(() => decode(input), what);
  if (first === undefined) threw = true;
  const more = concatAll([input, rng.bytes(rng.range(1, 20))]);
  const second = expectTyped(() => decode(more), () => `${name} on ${describeBytes(more)}`);
  if (threw) assert.equal(second, undefined, `${what()}: rejected, but accepted once more bytes came`);
  else if (first !== null) assert.deepEqual(second, first, `${what()}: trailing bytes changed the decoded message`);
}

const DECODERS: [string, Decoder, (rng: Rng) => Uint8Array][] = [
  ['decodeGreeting', decodeGreeting, (rng) => encodeGreeting({ methods: Array.from({ length: rng.range(1, rng.bool(0.1) ? 255 : 5) }, () => rng.pick([0, 1, 2, 0xff, rng.int(256)])) })],
  ['decodeMethodSelection', decodeMethodSelection, (rng) => encodeMethodSelection({ method: rng.int(256) })],
  ['decodeAuthRequest', decodeAuthRequest, (rng) => encodeAuthRequest({ username: randomBinary(rng, 255), password: randomBinary(rng, 255) })],
  ['decodeAuthReply', decodeAuthReply, (rng) => encodeAuthReply({ status: rng.int(256) })],
  ['decodeRequest', decodeRequest, (rng) => encodeRequest({ command: rng.pick([1, 2, 3, rng.int(256)]), ...randomAddress(rng), port: rng.int(0x10000) })],
  ['decodeReply', decodeReply, (rng) => encodeReply({ reply: rng.int(256), ...randomAddress(rng), port: rng.int(0x10000) })],
  ['decodeSocks4Request', decodeSocks4Request, (rng) => encodeSocks4Request(randomSocks4Request(rng))],
  ['decodeSocks4Reply', decodeSocks4Reply, (rng) => encodeSocks4Reply({ code: rng.int(256), port: rng.int(0x10000), address: Array.from(rng.bytes(4)).join('.') })],
];

/** A random SOCKS4 (IPv4 DSTIP, never 0.0.0.x) or SOCKS4a (domain) request. */
function randomSocks4Request(rng: Rng): { command: number; addressType: 'ipv4' | 'domain'; host: string; port: number; userId: string } {
  const userId = Buffer.from(rng.bytes(rng.length(rng.bool(0.1) ? 255 : 20)).map((b) => (b === 0 ? 1 : b))).toString('latin1');
  const command = rng.pick([1, 0xf0, rng.int(256)]);
  const port = rng.int(0x10000);
  if (rng.bool()) {
    const ip = rng.bytes(4);
    ip[0] = rng.range(1, 255);
    return { command, addressType: 'ipv4', host: Array.from(ip).join('.'), port, userId };
  }
  const host = Array.from({ length: rng.range(1, rng.bool(0.1) ? 255 : 40) }, () => String.fromCharCode(rng.range(0x21, 0x7e))).join('');
  return { command, addressType: 'domain', host, port, userId };
}

test('fuzz SOCKS5 message decoders: random, mutated, truncated; streaming laws', () => {
  const rng = new Rng(0x50c50001);
  for (const [name, decode, make] of DECODERS) {
    const samples = Array.from({ length: 10 }, () => make(rng));
    const t = fuzzBytes(name, rng, decode, samples, { random: 800, maxRandomLength: 600, mutated: 1000, truncateSamples: 3 });
    // Random bytes rarely get past the version byte: these start with it (and mostly a zero reserved byte).
    const first = samples[0]![0]!;
    for (let i = 0; i < 800; i++) {
      const b = rng.bytes(rng.length(300));
      if (b.length > 0) b[0] = first;
      if (b.length > 2 && rng.bool(0.7)) b[2] = name === 'decodeAuthRequest' ? b[2]! : 0;
      expectTyped(() => decode(b), () => `${name} on ${describeBytes(b)}`, t);
      checkStreaming(name, rng, decode, b);
    }
    for (let i = 0; i < 400; i++) checkStreaming(name, rng, decode, mutate(rng, rng.pick(samples)));
    assert.ok(t.ok > 0 && t.rejected > 0, `${name}: ${JSON.stringify(t)}`);
    // Every proper prefix of a valid message is "need more bytes", never an error.
    for (const s of samples.slice(0, 4)) {
      for (let n = 0; n < s.length; n++) assert.equal(decode(s.subarray(0, n)), null, `${name} on prefix ${n} of ${describeBytes(s)}`);
    }
  }
});

test('fuzz SOCKS5 messages: decode(encode(x)) equals x', () => {
  const rng = new Rng(0x50c50002);
  for (let i = 0; i < 600; i++) {
    const methods = Array.from({ length: rng.range(1, 255) }, () => rng.int(256));
    assert.deepEqual(decodeGreeting(encodeGreeting({ methods })), { value: { methods }, length: 2 + methods.length });
    const method = rng.int(256);
    assert.deepEqual(decodeMethodSelection(encodeMethodSelection({ method })), { value: { method }, length: 2 });
    const auth = { username: randomBinary(rng, 255), password: randomBinary(rng, 255) };
    assert.deepEqual(decodeAuthRequest(encodeAuthRequest(auth)), { value: auth, length: 3 + auth.username.length + auth.password.length });
    const status = rng.int(256);
    assert.deepEqual(decodeAuthReply(encodeAuthReply({ status })), { value: { status }, length: 2 });
    const req = { command: rng.int(256), ...randomAddress(rng), port: rng.int(0x10000) };
    const reqBytes = encodeRequest(req);
    assert.deepEqual(decodeRequest(reqBytes), { value: req, length: reqBytes.length });
    const rep = { reply: rng.int(256), ...randomAddress(rng), port: rng.int(0x10000) };
    const repBytes = encodeReply(rep);
    assert.deepEqual(decodeReply(repBytes), { value: rep, length: repBytes.length });
    const req4 = randomSocks4Request(rng);
    const req4Bytes = encodeSocks4Request(req4);
    assert.deepEqual(decodeSocks4Request(req4Bytes), { value: req4, length: req4Bytes.length });
    const rep4 = { code: rng.int(256), port: rng.int(0x10000), address: Array.from(rng.bytes(4)).join('.') };
    assert.deepEqual(decodeSocks4Reply(encodeSocks4Reply(rep4)), { value: rep4, length: 8 });
    // IPv6 text: canonical text parses back to the same bytes.
    const v6 = rng.bytes(16);
    for (let j = 0; j < 16; j++) if (rng.bool(0.5)) v6[j] = 0;
    assert.deepEqual(parseIPv6(formatIPv6(v6)), v6);
  }
  // parseIPv6 on junk text: null or 16 bytes that format and parse back, never a throw.
  const alphabet = [...'0123456789abcdefABCDEF:.::g ', '::', '1.2.3.4', 'ffff', '%'];
  for (let i = 0; i < 3000; i++) {
    const text = Array.from({ length: rng.length(50) }, () => rng.pick(alphabet)).join('');
    const bytes = parseIPv6(text);
    if (bytes !== null) assert.deepEqual(parseIPv6(formatIPv6(bytes)), bytes, text);
  }
  for (let i = 0; i < 300; i++) {
    const b = rng.bytes(rng.int(20));
    expectTyped(() => formatIPv6(b), () => `formatIPv6 on ${describeBytes(b)}`);
  }
});

interface Outcome {
  send: Uint8Array;
  request?: unknown;
  earlyData: Uint8Array;
  error?: string;
  needMore: boolean;
}

/** Feed chunks until the handshake finishes or fails; each feed returns a step or throws an AlliumError. */
function runHandshake(chunks: Uint8Array[], what: () => string): Outcome | 'threw' {
  const hs = new SocksServerHandshake();
  const sent: Uint8Array[] = [];
  let last: HandshakeStep = { needMore: true };
  for (const c of chunks) {
    const step = expectTyped(() => hs.feed(c), what);
    if (step === undefined) return 'threw';
    last = step;
    if (step.send) sent.push(step.send);
    if (step.error !== undefined) assert.equal(step.needMore, false, `${what()}: an error step still wants input`);
    if (!step.needMore) break;
  }
  const out: Outcome = { send: concatAll(sent), earlyData: last.earlyData ?? new Uint8Array(0), needMore: last.needMore };
  if (last.request !== undefined) out.request = last.request;
  if (last.error !== undefined) out.error = last.error.code;
  if (!last.needMore) {
    // Once finished or failed, more input is refused with an AlliumError step, not a crash.
    const after = expectTyped(() => hs.feed(Uint8Array.of(1)), what);
    assert.ok(after === undefined || after.error !== undefined, `${what()}: input after the end was accepted`);
  }
  return out;
}

function randomClientBytes(rng: Rng): Uint8Array {
  const parts: Uint8Array[] = [];
  if (rng.bool(0.25)) {
    parts.push(encodeSocks4Request(randomSocks4Request(rng)));
    if (rng.bool(0.3)) parts.push(rng.bytes(rng.range(1, 50)));
    return concatAll(parts);
  }
  const auth = rng.bool();
  const methods: number[] = auth ? [AuthMethod.USERNAME_PASSWORD, ...(rng.bool() ? [AuthMethod.NO_AUTH] : [])] : [AuthMethod.NO_AUTH];
  if (rng.bool(0.2)) methods.push(rng.int(256));
  parts.push(encodeGreeting({ methods }));
  if (auth) parts.push(encodeAuthRequest({ username: randomBinary(rng, 40), password: randomBinary(rng, 40) }));
  parts.push(encodeRequest({ command: rng.bool(0.9) ? 1 : rng.int(256), ...randomAddress(rng), port: rng.int(0x10000) }));
  if (rng.bool(0.3)) parts.push(rng.bytes(rng.range(1, 50)));
  return concatAll(parts);
}

test('fuzz SocksServerHandshake: random and mutated client bytes in random chunkings', () => {
  const rng = new Rng(0x50c50003);
  const tally = outcomes();
  const compare = (input: Uint8Array, kind: string) => {
    const what = () => `SocksServerHandshake on ${kind} input ${describeBytes(input)}`;
    const whole = runHandshake([input], what);
    const chunked = runHandshake(chunkings(rng, input), what);
    const bytewise = rng.bool(0.2) ? runHandshake(Array.from(input, (b) => Uint8Array.of(b)), what) : chunked;
    if (whole !== 'threw' && (whole.error !== undefined || whole.request !== undefined)) {
      if (whole.request !== undefined) tally.ok++;
      else tally.rejected++;
      // The outcome does not depend on how the bytes were cut up (early data aside,
      // which is whatever followed the request in the chunk that completed it).
      for (const other of [chunked, bytewise]) {
        assert.notEqual(other, 'threw', what());
        if (other === 'threw') continue;
        assert.deepEqual(
          { send: other.send, request: other.request, error: other.error },
          { send: whole.send, request: whole.request, error: whole.error },
          `${what()}: chunking changed the outcome`,
        );
      }
    }
  };
  for (let i = 0; i < 1500; i++) compare(rng.bytes(rng.length(400)), 'random');
  for (let i = 0; i < 300; i++) {
    // Random bytes after a valid greeting reach the auth and request states.
    const g = encodeGreeting({ methods: [rng.pick([AuthMethod.NO_AUTH, AuthMethod.USERNAME_PASSWORD])] });
    compare(concatAll([g, rng.bytes(rng.length(300))]), 'greeting+random');
  }
  for (let i = 0; i < 300; i++) compare(concatAll([Uint8Array.of(4), rng.bytes(rng.length(300))]), 'socks4+random');
  for (let i = 0; i < 2000; i++) compare(mutate(rng, randomClientBytes(rng)), 'mutated');
  assert.ok(tally.ok > 0 && tally.rejected > 0, JSON.stringify(tally));

  // Genuine clients: the request comes out intact whatever the chunking, with early data in order.
  for (let i = 0; i < 300; i++) {
    const early = rng.bool() ? rng.bytes(rng.range(1, 100)) : new Uint8Array(0);
    const auth = rng.bool() ? { username: randomBinary(rng, 255), password: randomBinary(rng, 255) } : undefined;
    const addr = randomGenuineAddress(rng);
    const port = rng.int(0x10000);
    const input = concatAll([
      encodeGreeting({ methods: auth ? [AuthMethod.NO_AUTH, AuthMethod.USERNAME_PASSWORD] : [AuthMethod.NO_AUTH] }),
      ...(auth ? [encodeAuthRequest(auth)] : []),
      encodeRequest({ command: 1, ...addr, port }),
      early,
    ]);
    // Chunk so that the request completes with everything after it in the same chunk,
    // or feed it whole: early data then arrives with the request.
    const out = runHandshake(rng.bool() ? [input] : [...chunkings(rng, input.subarray(0, input.length - early.length - 1)), input.subarray(input.length - early.length - 1)], () => `genuine ${describeBytes(input)}`);
    assert.notEqual(out, 'threw');
    if (out === 'threw') continue;
    assert.equal(out.error, undefined);
    assert.deepEqual(out.request, { version: 5, command: 'connect', ...addr, port, ...(auth ? auth : {}) });
    assert.deepEqual(out.earlyData, early);
  }
  // Every truncation of a few genuine transcripts just asks for more.
  for (let i = 0; i < 5; i++) {
    const input = randomClientBytes(rng);
    for (let n = 0; n < input.length; n++) runHandshake([input.subarray(0, n)], () => `prefix ${n} of ${describeBytes(input)}`);
  }
});
