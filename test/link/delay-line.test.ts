/**
 * The user-space WAN emulation (src/link/delay-line.ts,
 * src/link/shaped-transport.ts, src/link/forwarder.ts): with injected timers,
 * every byte comes out exactly one delay plus its transmission time later, in
 * order, jitter never reorders, the queue bound stops the writer and a reader
 * that refuses holds the line; over real sockets, a forwarder with a delay
 * carries bytes intact both ways and a round trip is never shorter than two
 * delays (the accuracy itself is measured by bench/wan.bench.ts).
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type AddressInfo } from 'node:net';
import { once } from 'node:events';
import { DelayLine, SEGMENT_BYTES, queueBound, type LineTimers } from '../../src/link/delay-line.js';
import { shapeDuplex, ShapedTransport } from '../../src/link/shaped-transport.js';
import { parseEndpoint, startForwarder } from '../../src/link/forwarder.js';
import { crypto } from '../../src/crypto/crypto.js';
import { duplexPair } from '../support/duplex-pair.js';
import { within } from '../support/edge-pair.js';

/** Timers driven by hand: advance(ms) fires what is due, in order. */
class ManualTimers implements LineTimers {
  t = 0;
  #timers: Array<{ at: number; fn: () => void; id: number }> = [];
  #next = 1;
  now(): number {
    return this.t;
  }
  setTimer(fn: () => void, ms: number): unknown {
    const id = this.#next++;
    // Like Node: whole milliseconds, never early.
    this.#timers.push({ at: this.t + Math.max(1, Math.ceil(ms)), fn, id });
    return id;
  }
  clearTimer(handle: unknown): void {
    this.#timers = this.#timers.filter((x) => x.id !== handle);
  }
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      this.#timers.sort((a, b) => a.at - b.at);
      const due = this.#timers[0];
      if (due === undefined || due.at > end) break;
      this.#timers.shift();
      this.t = due.at;
      due.fn();
    }
    this.t = end;
  }
}

test('a delay line: each chunk comes out one delay after it finished transmitting, in order', () => {
  const timers = new ManualTimers();
  const out: Array<[number, number]> = [];
  // 8 Mbit/s = 1000 bytes per ms.
  const line = new DelayLine({ delayMs: 20, rateBps: 8_000_000 }, (c) => (out.push([timers.t, c.length]), true), timers);
  assert.equal(line.push(new Uint8Array(1000)), true); // tx ends at 1, out at 21
  assert.equal(line.push(new Uint8Array(3000)), true); // tx ends at 4, out at 24
  timers.advance(10);
  assert.equal(line.push(new Uint8Array(500)), true); // sent at 10: tx ends 10.5, out at 30.5
  timers.advance(100);
  assert.deepEqual(out, [[21, 1000], [24, 3000], [30, 500]], 'the last one due at 30.5: out at 30, within the 0.5 ms slack');
  assert.equal(line.queuedBytes, 0);
});

test('a delay line with a rate sends a large chunk segment by segment: its first bytes do not wait for the whole chunk', () => {
  const timers = new ManualTimers();
  const out: Array<[number, number]> = [];
  // 8 Mbit/s = 1000 bytes per ms; 10 000 bytes = SEGMENT_BYTES + SEGMENT_BYTES + 1808.
  const line = new DelayLine({ delayMs: 20, rateBps: 8_000_000 }, (c) => (out.push([timers.t, c.length]), true), timers);
  const chunk = Uint8Array.from({ length: 10_000 }, (_, i) => i & 0xff);
  line.push(chunk);
  timers.advance(100);
  assert.equal(SEGMENT_BYTES, 4096);
  // Due at 24.096, 28.192 and 30 (not all at 30): out within the 0.5 ms slack of the whole-millisecond timers.
  assert.deepEqual(out, [[24, 4096], [28, 4096], [30, 1808]]);
  assert.equal(line.queuedBytes, 0);
});

test('a delay line without a rate adds only the delay; jitter never reorders', () => {
  const timers = new ManualTimers();
  const out: number[] = [];
  let r = 0;
  const randoms = [0.99, 0.0, 0.5, 0.01, 0.9];
  const line = new DelayLine({ delayMs: 10, jitterMs: 8 }, (c) => (out.push(c[0]!), true), timers, () => randoms[r++ % randoms.length]!);
  for (let i = 0; i < 5; i++) {
    line.push(Uint8Array.of(i));
    timers.advance(1);
  }
  timers.advance(100);
  assert.deepEqual(out, [0, 1, 2, 3, 4]);
});

test('a delay line is bounded: push says stop past the bound; a refusing reader holds it until resume', () => {
  const timers = new ManualTimers();
  const out: number[] = [];
  let accept = true;
  const line = new DelayLine({ delayMs: 5, queueBytes: 3000 }, (c) => (out.push(c.length), accept), timers);
  assert.equal(queueBound({ delayMs: 5, queueBytes: 3000 }), 3000);
  assert.equal(line.push(new Uint8Array(2000)), true);
  assert.equal(line.push(new Uint8Array(2000)), false, 'over 3000 bytes inside');
  let room = false;
  line.onRoom(() => (room = true));
  accept = false;
  timers.advance(10);
  assert.deepEqual(out, [2000], 'the reader refused: the line holds the rest');
  assert.equal(room, true, '2000 bytes left inside: under the bound again');
  accept = true;
  line.resume();
  assert.deepEqual(out, [2000, 2000]);
  assert.equal(queueBound({ delayMs: 20, rateBps: 100_000_000 }), 500_000, 'default: twice the bandwidth-delay product');
  assert.throws(() => new DelayLine({ delayMs: -1 }, () => true), RangeError);
  assert.throws(() => new DelayLine({ delayMs: 1, rateBps: 0 }, () => true), RangeError);
});

test('shapeDuplex over an in-memory pair: 1 MB each way intact, and the end arrives after the bytes', { timeout: 20_000 }, async () => {
  const [a, b] = duplexPair();
  const shaped = shapeDuplex(a, { delayMs: 5, rateBps: 400_000_000 });
  const payload = Buffer.from(crypto.randomBytes(1_000_000));
  b.on('data', (chunk: Buffer) => b.write(chunk)); // echo
  b.on('end', () => b.end());
  const back: Buffer[] = [];
  shaped.on('data', (c: Buffer) => back.push(c));
  shaped.end(payload);
  await within(once(shaped, 'end'), 'echo and end');
  assert.ok(Buffer.concat(back).equals(payload));
});

async function echoServer(t: TestContext): Promise<number> {
  const server = createServer((s) => {
    s.on('error', () => {});
    s.pipe(s);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => server.close());
  return (server.address() as AddressInfo).port;
}

test('a forwarder with 15 ms each way: bytes intact both ways; a round trip is never under 30 ms', { timeout: 20_000 }, async (t) => {
  const port = await echoServer(t);
  const fwd = await startForwarder({ listen: { host: '127.0.0.1', port: 0 }, target: { host: '127.0.0.1', port }, shape: { delayMs: 15 } });
  t.after(() => fwd.close());
  const address = fwd.address as { host: string; port: number };
  const socket = connect(address.port, address.host);
  t.after(() => socket.destroy());
  await once(socket, 'connect');
  for (let i = 0; i < 5; i++) {
    const started = performance.now();
    socket.write(Buffer.from(`ping ${i}`));
    const [reply] = (await within(once(socket, 'data'), 'echo')) as [Buffer];
    const rtt = performance.now() - started;
    assert.equal(reply.toString(), `ping ${i}`);
    assert.ok(rtt >= 30 - 1, `round trip ${rtt.toFixed(2)} ms through two 15 ms lines`);
  }
  const big = Buffer.from(crypto.randomBytes(300_000));
  const chunks: Buffer[] = [];
  let n = 0;
  const all = new Promise<void>((resolve) =>
    socket.on('data', (c: Buffer) => {
      chunks.push(c);
      n += c.length;
      if (n >= big.length) resolve();
    }),
  );
  socket.write(big);
  await within(all, '300 kB echoed');
  assert.ok(Buffer.concat(chunks).equals(big));
});

test('a ShapedTransport hands back a shaped connection; endpoints parse', async () => {
  const transport = new ShapedTransport({ connect: async () => duplexPair()[0] }, { delayMs: 1 });
  const d = await transport.connect({ address: '127.0.0.1', port: 1 });
  assert.equal(typeof d.write, 'function');
  d.destroy();
  assert.deepEqual(parseEndpoint('127.0.0.1:9050'), { host: '127.0.0.1', port: 9050 });
  assert.deepEqual(parseEndpoint('[::1]:80'), { host: '::1', port: 80 });
  assert.deepEqual(parseEndpoint('unix:/tmp/x.sock'), { path: '/tmp/x.sock' });
  for (const bad of ['', 'host', 'h:70000', 'unix:', ':80']) assert.equal(parseEndpoint(bad), null, bad);
  assert.throws(() => new ShapedTransport({ connect: async () => duplexPair()[0] }, { delayMs: Number.NaN }), RangeError);
});
