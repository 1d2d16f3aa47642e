/**
 * A socket reset by its peer while the edge is not reading it — the stream is
 * backed up, so the splice has paused the socket (src/stream/splice.ts) —
 * still ends the stream with END (docs/protocol.md §6.7, "reset or error on a
 * socket"). The system reports a reset only to a read or a write, and a
 * paused socket does neither; without the splice's probe the END never went
 * out for as long as the stream stayed stuck (the flaky "application resets
 * mid-upload" of stream-ends.e2e.test.ts).
 *
 * Both edges, through real sockets, real links and real crypto:
 * - the client: an application uploads into a stream whose circuit never
 *   gets a SENDME from the fake relay, then resets: END MISC arrives;
 * - the exit: a destination sends into a stream the hostile client grants no
 *   SENDME for, then resets: END CONNRESET arrives;
 * - the exit again, the stream let go right after the reset: reading the
 *   bytes that waited, libuv reports the reset as a clean EOF (the socket
 *   hung up), which must still become END CONNRESET, never END DONE — the
 *   flaky "destination resets mid-answer" (a clean EOF at the application).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net, { type Socket } from 'node:net';
import { once } from 'node:events';
import { RelayCommand } from '../../src/cell/relay-cell.js';
import { EndReason } from '../../src/cell/reasons.js';
import { SPLICE_PAUSED_PROBE_MS } from '../../src/stream/splice.js';
import { openAndSplice } from '../../client/local-listener.js';
import { HostilePeer } from '../adversarial/hostile-peer.js';
import { beginAt, clientAgainstFake, destination, hear, streamRelay, until, type Heard } from './harness.js';
import { drainSocket } from './e2e-support.js';

/** The probe's period plus room for a loaded machine; far below anything a stuck stream would reach. */
const NOTICE_MS = SPLICE_PAUSED_PROBE_MS + 9_000;
const MiB = 1024 * 1024;

/** Resolves once `socket` (the destination) has had bytes waiting to be sent, none of them taken, for 300 ms: its peer stopped reading. */
async function stoppedReading(socket: Socket): Promise<void> {
  let last = -1;
  let since = Date.now();
  await until(
    () => {
      const waiting = socket.writableLength;
      if (waiting !== last) {
        last = waiting;
        since = Date.now();
      }
      return waiting > 0 && Date.now() - since >= 300;
    },
    "the exit to stop reading the destination's bytes",
    NOTICE_MS,
  );
}

test('client: the application resets while its stream is stuck (no circuit SENDME): END MISC reaches the exit', { timeout: 60_000 }, async (t) => {
  const c = await clientAgainstFake(t);
  const built = await c.build();
  const { stream, streamId } = await c.open(built);

  // The SOCKS side, as client/local-listener.ts splices it: a real TCP connection from the application.
  let accepted!: (s: Socket) => void;
  const edgeSocket = new Promise<Socket>((resolve) => (accepted = resolve));
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    socket.on('error', () => {});
    openAndSplice(socket, () => Promise.resolve(stream), () => new Uint8Array(0), () => new Uint8Array(0));
    accepted(socket);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => new Promise((resolve) => server.close(resolve)));
  const app = net.connect({ host: '127.0.0.1', port: (server.address() as net.AddressInfo).port, allowHalfOpen: true });
  app.on('error', () => {});
  t.after(() => app.destroy());
  await once(app, 'connect');
  const socket = await edgeSocket;

  // More than the stream window (500 cells) and every buffer on the way can take.
  app.write(Buffer.alloc(16 * MiB, 0x61));
  const dataCells = () => built.fc.messages.filter((m) => m.streamId === streamId && m.command === RelayCommand.DATA).length;
  await until(() => dataCells() === 500, 'the stream window spent at the fake relay', NOTICE_MS);
  await until(() => socket.readableFlowing === false && socket.readableLength >= socket.readableHighWaterMark, 'the edge socket paused with a full buffer', NOTICE_MS);
  // Stuck: no SENDME comes, so no more DATA either.
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert.equal(dataCells(), 500);

  app.resetAndDestroy();
  const end = () => built.fc.messages.find((m) => m.streamId === streamId && m.command === RelayCommand.END);
  await until(() => end() !== undefined, 'END for the reset stream', NOTICE_MS);
  assert.equal(end()!.data[0], EndReason.MISC);
  await until(() => socket.destroyed, 'the edge socket closed', NOTICE_MS);
  assert.equal(stream.destroyed, true);
});

test('exit: the destination resets while its stream is stuck (no stream SENDME): END CONNRESET reaches the client', { timeout: 60_000 }, async (t) => {
  const dest = await destination(t);
  const target = streamRelay(t);
  const peer = await HostilePeer.connect(t, target);
  const circ = await peer.create();
  await beginAt(peer, circ, 3, dest.port);
  const socket: Socket = await dest.next();

  // The destination sends far more than the stream window and the exit's buffers; the client never grants more.
  socket.write(Buffer.alloc(32 * MiB, 0x62));
  let data = 0;
  const heard: Heard[] = [];
  while (data < 500) {
    const h = await hear(peer, circ, 'DATA from the exit', NOTICE_MS);
    heard.push(h);
    assert.equal(h.kind, 'relay', 'no DESTROY');
    if (h.kind === 'relay' && h.cell.streamId === 3 && h.cell.command === RelayCommand.DATA) data++;
  }
  // The exit stopped reading: the destination's bytes wait in its own buffer, and nothing more comes.
  await stoppedReading(socket);
  await assert.rejects(hear(peer, circ, 'anything more', 300), /timed out/);

  socket.resetAndDestroy();
  const h = await hear(peer, circ, 'END for the reset stream', NOTICE_MS);
  assert.equal(h.kind, 'relay');
  if (h.kind !== 'relay') return;
  assert.equal(h.cell.command, RelayCommand.END);
  assert.equal(h.cell.streamId, 3);
  assert.equal(h.cell.data[0], EndReason.CONNRESET);
  await until(() => target.core.stats().streams === 0, 'the exit to drop the stream', NOTICE_MS);
});

test('exit: a destination reset while the stream is stuck, then the stream let go at once: END CONNRESET, not END DONE', { timeout: 60_000 }, async (t) => {
  const dest = await destination(t);
  const target = streamRelay(t);
  const peer = await HostilePeer.connect(t, target);
  const circ = await peer.create();
  await beginAt(peer, circ, 3, dest.port);
  const socket: Socket = await dest.next();

  socket.write(Buffer.alloc(32 * MiB, 0x63));
  let data = 0;
  while (data < 500) {
    const h = await hear(peer, circ, 'DATA from the exit', NOTICE_MS);
    assert.equal(h.kind, 'relay', 'no DESTROY');
    if (h.kind === 'relay' && h.cell.streamId === 3 && h.cell.command === RelayCommand.DATA) data++;
  }
  await stoppedReading(socket);

  // The reset lands while the exit's socket holds unread bytes; then the client grants a window's worth at once,
  // so the exit reads on (well before its probe would run) and reaches the hang-up.
  socket.resetAndDestroy();
  await new Promise((resolve) => setTimeout(resolve, 20));
  for (let i = 0; i < 10; i++) peer.sendRelay(circ, RelayCommand.SENDME, 3, new Uint8Array(0));
  let last: Heard | undefined;
  for (;;) {
    const h = await hear(peer, circ, 'the end of stream 3', NOTICE_MS);
    assert.equal(h.kind, 'relay', 'no DESTROY');
    if (h.kind !== 'relay' || h.cell.streamId !== 3 || h.cell.command === RelayCommand.DATA) continue;
    last = h;
    break;
  }
  assert.equal(last.kind === 'relay' && last.cell.command, RelayCommand.END, `an END, not ${JSON.stringify(last)}`);
  assert.equal(last.kind === 'relay' && last.cell.data[0], EndReason.CONNRESET, 'END CONNRESET, not DONE: the destination reset');
});

test('an application (Node) reset while bytes wait unread: libuv says EOF, the end-to-end tests\' drainSocket says ECONNRESET', { timeout: 30_000 }, async (t) => {
  // What the client does to an application when a circuit dies mid-download (relay-killed.e2e.test.ts): a reset
  // that overtakes bytes the application has not read yet. Twice: what a plain reader sees, what drainSocket sees.
  const edges: Socket[] = [];
  const server = net.createServer((s) => edges.push(s));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => new Promise((resolve) => server.close(resolve)));
  const seen: string[] = [];
  for (const reader of ['plain', 'drainSocket'] as const) {
    const app = net.connect({ host: '127.0.0.1', port: (server.address() as net.AddressInfo).port, allowHalfOpen: true });
    app.on('error', () => {});
    app.pause();
    t.after(() => app.destroy());
    await once(app, 'connect');
    app.read(0); // read into the buffer (up to its bound) without consuming
    await until(() => edges.length === seen.length + 1, 'the connection accepted', NOTICE_MS);
    const edge = edges[seen.length]!;
    edge.on('error', () => {});
    edge.write(Buffer.alloc(4 * MiB, 0x64));
    await until(() => app.readableLength > 0, 'bytes waiting at the application', NOTICE_MS);
    await new Promise((resolve) => setTimeout(resolve, 100));
    edge.resetAndDestroy();
    await new Promise((resolve) => setTimeout(resolve, 100));
    if (reader === 'drainSocket') {
      const got = await drainSocket(app, NOTICE_MS);
      seen.push(got.error?.code ?? 'clean EOF');
    } else {
      seen.push(
        await new Promise<string>((resolve) => {
          app.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
          app.on('end', () => resolve('clean EOF'));
          app.resume();
        }),
      );
    }
  }
  t.diagnostic(`a plain Node reader saw: ${seen[0]}`);
  assert.equal(seen[1], 'ECONNRESET');
});
