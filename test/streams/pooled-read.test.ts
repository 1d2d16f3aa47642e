/**
 * PooledReader (src/stream/pooled-read.ts) over real TCP: every byte the
 * source sends reaches the sink once and in order, through the shared read
 * buffer; what the sink cannot take now is copied and written, and the
 * socket reads nothing more until that copy is sent (so a stuck sink holds
 * at most one read, the rest waits in the kernel); the source's EOF still
 * ends the socket's readable side.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { connect, createServer, type Socket } from 'node:net';
import { MIN_READ_BYTES, PooledReader, READ_BUFFER_BYTES, type PooledReadSink } from '../../src/stream/pooled-read.js';

const TOTAL = 8 * 1024 * 1024;

/** A source of TOTAL pseudo-random bytes on 127.0.0.1 (port 0); resolves its port and the SHA-256 of what it sends. */
async function source(t: test.TestContext): Promise<{ port: number; digest: string }> {
  const data = Buffer.alloc(TOTAL);
  for (let i = 0; i < TOTAL; i++) data[i] = (i * 2654435761) >>> 24;
  const server = createServer((socket) => {
    socket.on('error', () => {});
    socket.end(data);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => server.close());
  return { port: (server.address() as { port: number }).port, digest: createHash('sha256').update(data).digest('hex') };
}

/** A sink that takes at most `allow()` bytes per sendNow and sends a held write on `release()`. */
class StallingSink implements PooledReadSink {
  destroyed = false;
  readonly hash = createHash('sha256');
  bytes = 0;
  /** Bytes held in writes not yet sent: the most it ever held. */
  held = 0;
  mostHeld = 0;
  readonly #held: Array<{ chunk: Uint8Array; callback: () => void }> = [];
  constructor(readonly allow: () => number) {}
  /** Room unknown (a sink that cannot tell): every read takes the whole buffer. */
  sendRoom(): number {
    return Infinity;
  }
  sendNow(data: Uint8Array): number {
    if (this.#held.length > 0) return 0;
    const n = Math.min(data.length, this.allow());
    this.take(data.subarray(0, n));
    return n;
  }
  write(chunk: Uint8Array, callback: () => void): boolean {
    this.#held.push({ chunk, callback });
    this.held += chunk.length;
    this.mostHeld = Math.max(this.mostHeld, this.held);
    return false;
  }
  /** Send everything held (in order) and call back. */
  release(): void {
    for (const { chunk, callback } of this.#held.splice(0)) {
      this.held -= chunk.length;
      this.take(chunk);
      callback();
    }
  }
  take(data: Uint8Array): void {
    this.hash.update(data);
    this.bytes += data.length;
  }
}

async function readAll(port: number, sink: StallingSink | WindowSink, attachAfterMs = 0): Promise<{ socket: Socket; ended: boolean }> {
  const reader = new PooledReader();
  const socket = connect({ host: '127.0.0.1', port, onread: reader.onread });
  socket.on('error', () => {});
  await once(socket, 'connect');
  if (attachAfterMs > 0) await new Promise((resolve) => setTimeout(resolve, attachAfterMs));
  let ended = false;
  socket.once('end', () => (ended = true));
  reader.attach(socket, sink);
  // Let the sink go every 5 ms; the whole transfer is bounded by the test's timeout.
  const timer = setInterval(() => sink.release(), 5);
  try {
    const deadline = Date.now() + 20_000;
    while (!(ended && sink.bytes === TOTAL) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  } finally {
    clearInterval(timer);
  }
  return { socket, ended };
}

/**
 * A sink with a send window, as a stream's flow control: sendNow takes at
 * most `window` bytes, sendRoom tells the window (0 while a write is held),
 * and release() (every 5 ms: a SENDME) grants GRANT bytes up to CAP, then
 * sends what the window lets of a held write. The window starts full, above
 * READ_BUFFER_BYTES: the first read is sized before the sink is attached.
 */
class WindowSink implements PooledReadSink {
  static readonly GRANT = 64 * 498;
  static readonly CAP = 200 * 498;
  destroyed = false;
  readonly hash = createHash('sha256');
  bytes = 0;
  window = WindowSink.CAP;
  held = 0;
  mostHeld = 0;
  /** Reads longer than the room they were sized for (max(MIN_READ_BYTES, window)): must stay 0. */
  oversized = 0;
  readonly #held: Array<{ chunk: Uint8Array; callback: () => void }> = [];
  sendRoom(): number {
    return this.#held.length > 0 ? 0 : this.window;
  }
  sendNow(data: Uint8Array): number {
    // The window only grows between the read's sizing and its arrival (release() grants; a held write waits for its own room).
    if (data.length > Math.max(MIN_READ_BYTES, this.window)) this.oversized++;
    if (this.#held.length > 0) return 0;
    const n = Math.min(data.length, this.window);
    this.window -= n;
    this.take(data.subarray(0, n));
    return n;
  }
  write(chunk: Uint8Array, callback: () => void): boolean {
    this.#held.push({ chunk, callback });
    this.held += chunk.length;
    this.mostHeld = Math.max(this.mostHeld, this.held);
    return false;
  }
  release(): void {
    this.window = Math.min(WindowSink.CAP, this.window + WindowSink.GRANT);
    // A held write goes out as the window lets it, piece by piece (as RelayStream's pump does), and is called back once all of it went.
    while (this.#held.length > 0 && this.window > 0) {
      const first = this.#held[0]!;
      const n = Math.min(first.chunk.length, this.window);
      this.window -= n;
      this.held -= n;
      this.take(first.chunk.subarray(0, n));
      first.chunk = first.chunk.subarray(n);
      if (first.chunk.length > 0) break;
      this.#held.shift();
      first.callback();
    }
  }
  take(data: Uint8Array): void {
    this.hash.update(data);
    this.bytes += data.length;
  }
}

test('pooled read: a sink that takes everything gets every byte in order, then the EOF', { timeout: 30_000 }, async (t) => {
  const src = await source(t);
  const sink = new StallingSink(() => Infinity);
  const { socket, ended } = await readAll(src.port, sink);
  socket.destroy();
  assert.equal(sink.bytes, TOTAL);
  assert.equal(sink.hash.digest('hex'), src.digest);
  assert.equal(ended, true);
  assert.equal(sink.mostHeld, 0, 'nothing was copied: every read went straight to the sink');
});

test('pooled read: a sink with little room holds at most one read at a time, and still gets every byte in order', { timeout: 30_000 }, async (t) => {
  const src = await source(t);
  // Room for 3 DATA cells' worth per read, then nothing until the held copy is sent.
  const sink = new StallingSink(() => 3 * 498);
  const { socket, ended } = await readAll(src.port, sink, 50);
  socket.destroy();
  assert.equal(sink.bytes, TOTAL);
  assert.equal(sink.hash.digest('hex'), src.digest);
  assert.equal(ended, true);
  assert.ok(sink.mostHeld > 0, 'the rest of a read was held');
  assert.ok(sink.mostHeld <= READ_BUFFER_BYTES, `held ${sink.mostHeld} bytes at once: more than one read`);
});

test('pooled read: reads are sized by the sink\'s room, so a sink whose window closes holds at most MIN_READ_BYTES, and gets every byte in order', { timeout: 30_000 }, async (t) => {
  const src = await source(t);
  const sink = new WindowSink();
  const { socket, ended } = await readAll(src.port, sink);
  socket.destroy();
  assert.equal(sink.bytes, TOTAL);
  assert.equal(sink.hash.digest('hex'), src.digest);
  assert.equal(ended, true);
  assert.equal(sink.oversized, 0, 'no read took more than the room it was sized for');
  assert.ok(sink.mostHeld > 0, 'a closed window met a read: its bytes were held');
  assert.ok(sink.mostHeld <= MIN_READ_BYTES, `held ${sink.mostHeld} bytes at once: more than one minimal read`);
});
