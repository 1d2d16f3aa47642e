/**
 * Streams on any hop (docs/protocol.md §6.4, §6.5): a client and three relays
 * in one process, joined by real Noise links over in-memory pipes. A
 * directory stream (BEGIN_DIR) to the middle hop carries data both ways next
 * to an exit stream; a relay with no directory refuses with END NOTDIRECTORY
 * and the circuit lives; the relay's default directory serves its
 * descriptor; DESTROY reasons reach the streams on both sides.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { Duplex } from 'node:stream';
import { DestroyReason, EndReason } from '../../src/cell/reasons.js';
import { crypto } from '../../src/crypto/crypto.js';
import { AlliumError, CircuitDestroyedError, StreamEndedError } from '../../src/errors.js';
import { relayDirectory, DIR_SELF_DESCRIPTOR_PATH } from '../../relay/dir/dir-server.js';
import type { DirectoryHandler } from '../../relay/relay-circuit.js';
import type { RelayStream } from '../../src/stream/relay-stream.js';
import { memoryCircuit, memoryNetwork, type MemoryRelay } from '../support/memory-network.js';
import { echoServer } from '../support/echo-server.js';
import { within } from '../support/edge-pair.js';

function network(t: TestContext, directory?: (index: number) => DirectoryHandler | null): MemoryRelay[] {
  const net = memoryNetwork(3, directory === undefined ? {} : { directory });
  t.after(() => net.cleanup());
  return net.relays;
}

/** Write `size` random bytes and expect the same bytes back (an echo at the far end). */
async function echoRoundTrip(stream: Duplex, size: number): Promise<void> {
  const sent = Buffer.from(crypto.randomBytes(size));
  const chunks: Buffer[] = [];
  let received = 0;
  const done = new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      received += chunk.length;
      if (received >= size) {
        stream.off('data', onData);
        resolve();
      }
    };
    stream.on('data', onData);
    stream.once('error', reject);
  });
  stream.write(sent);
  await within(done, `${size} bytes echoed`, 20_000);
  assert.ok(Buffer.concat(chunks).equals(sent), 'bytes intact and in order');
}

/** Everything a stream yields until it ends. */
async function readAll(stream: Duplex): Promise<string> {
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  await within(once(stream, 'end'), 'end of stream');
  return Buffer.concat(chunks).toString('utf8');
}

const echoDirectory: DirectoryHandler = (stream) => {
  stream.on('error', () => {});
  stream.pipe(stream);
};

test('a BEGIN_DIR stream on the middle hop carries data both ways, beside an exit stream on the same circuit', { timeout: 60_000 }, async (t) => {
  const port = await echoServer(t);
  const relays = network(t, (i) => (i === 1 ? echoDirectory : null));
  const { circuit, channel } = await memoryCircuit(relays);
  t.after(() => channel.destroy());

  const dir = await circuit.openDirStream(1);
  const exit = await circuit.openStream('127.0.0.1', port, 5000);
  assert.equal(circuit.streamCount, 2);
  // 1 MB each: over 2000 cells per direction, so the middle hop's circuit and stream SENDMEs flow.
  await Promise.all([echoRoundTrip(dir, 1_000_000), echoRoundTrip(exit, 1_000_000)]);
  // The middle hop's edge and the exit's edge keep separate flow control.
  assert.ok(circuit.edge(1)!.flow.snapshot().minRttMs !== null, 'circuit SENDMEs came back from the middle hop');
  assert.ok(circuit.edge(2)!.flow.snapshot().minRttMs !== null, 'circuit SENDMEs came back from the exit');
  assert.equal(circuit.edge(0)!.streamCount, 0);

  dir.end();
  await within(once(dir, 'close'), 'dir stream closed');
  await echoRoundTrip(exit, 10_000);
  exit.end();
  await within(once(exit, 'close'), 'exit stream closed');
  assert.equal(circuit.closed, false);
});

test('BEGIN_DIR at a relay without a directory gets END NOTDIRECTORY; the circuit lives', { timeout: 30_000 }, async (t) => {
  const port = await echoServer(t);
  const relays = network(t);
  const { circuit, channel } = await memoryCircuit(relays);
  t.after(() => channel.destroy());
  for (const hop of [0, 1, 2]) {
    await assert.rejects(circuit.openDirStream(hop), (e: unknown) => e instanceof StreamEndedError && e.reason === EndReason.NOTDIRECTORY, `hop ${hop}`);
  }
  assert.equal(circuit.closed, false);
  await echoRoundTrip(await circuit.openStream('127.0.0.1', port, 5000), 20_000);
  // BEGIN (exit) stays a last-hop request: at a middle hop it is refused on its stream (END TORPROTOCOL); the circuit lives.
  await assert.rejects(circuit.openStream('127.0.0.1', port, 5000, { hop: 1 }), (e: unknown) => e instanceof StreamEndedError && e.reason === EndReason.TORPROTOCOL);
  assert.equal(circuit.closed, false);
  await echoRoundTrip(await circuit.openStream('127.0.0.1', port, 5000), 20_000);
});

test("the relay's default directory serves its descriptor over BEGIN_DIR, 404 for other paths", { timeout: 30_000 }, async (t) => {
  const descriptors = ['guard descriptor', 'middle descriptor', 'exit descriptor'];
  const relays = network(t, (i) => relayDirectory(() => descriptors[i]!));
  const { circuit, channel } = await memoryCircuit(relays);
  t.after(() => channel.destroy());
  for (const hop of [0, 1, 2]) {
    const stream = await circuit.openDirStream(hop);
    stream.write(`GET ${DIR_SELF_DESCRIPTOR_PATH} HTTP/1.0\r\n\r\n`);
    const answer = await readAll(stream);
    assert.match(answer, /^HTTP\/1\.0 200 OK\r\n/);
    assert.ok(answer.endsWith(`\r\n\r\n${descriptors[hop]}`), answer);
  }
  const missing = await circuit.openDirStream(1);
  missing.write('GET /allium/v1/consensus HTTP/1.0\r\n\r\n');
  assert.match(await readAll(missing), /^HTTP\/1\.0 404 /);
  assert.equal(circuit.closed, false);
});

/** The exit's side of a directory stream, captured by its handler. */
function capturingDirectory(): { handler: DirectoryHandler; streams: Promise<RelayStream> } {
  let resolve!: (s: RelayStream) => void;
  const streams = new Promise<RelayStream>((r) => (resolve = r));
  return {
    handler: (stream) => {
      stream.on('error', () => {});
      resolve(stream as RelayStream);
    },
    streams,
  };
}

test('a DESTROY reason reaches the streams: a link closing in the middle fails both ends with CHANNEL_CLOSED', { timeout: 30_000 }, async (t) => {
  const captured = capturingDirectory();
  const relays = network(t, (i) => (i === 2 ? captured.handler : null));
  const { circuit, channel } = await memoryCircuit(relays);
  t.after(() => channel.destroy());
  const clientStream = await circuit.openDirStream(2);
  const exitStream = await within(captured.streams, 'the exit side of the stream');
  const clientError = once(clientStream, 'error');
  const exitError = once(exitStream, 'error');
  // The middle relay's link from the guard closes: the guard sends DESTROY CHANNEL_CLOSED back to
  // the client, the middle sends it on to the exit.
  relays[1]!.inbound[0]!.destroy();
  const [atClient] = (await within(clientError, 'client stream error')) as [Error];
  const [atExit] = (await within(exitError, 'exit stream error')) as [Error];
  for (const [where, error] of [['client', atClient], ['exit', atExit]] as const) {
    assert.ok(error instanceof CircuitDestroyedError, where);
    assert.equal(error.reason, DestroyReason.CHANNEL_CLOSED, where);
  }
  assert.equal(channel.closed, false, "the client's own link is fine");
  assert.equal(clientStream.endReason, EndReason.DESTROY);
});

test("a DESTROY reason reaches the streams: the client's reason arrives at the exit's stream unchanged", { timeout: 30_000 }, async (t) => {
  const captured = capturingDirectory();
  const relays = network(t, (i) => (i === 2 ? captured.handler : null));
  const { circuit, channel } = await memoryCircuit(relays);
  t.after(() => channel.destroy());
  const clientStream = await circuit.openDirStream(2);
  clientStream.on('error', () => {});
  const exitStream = await within(captured.streams, 'the exit side of the stream');
  const exitError = once(exitStream, 'error');
  circuit.destroy(DestroyReason.HIBERNATING, 'test');
  const [error] = (await within(exitError, 'exit stream error')) as [Error];
  assert.ok(error instanceof CircuitDestroyedError);
  assert.equal(error.reason, DestroyReason.HIBERNATING);
  assert.equal(exitStream.endReason, EndReason.DESTROY);
});

test('a stream request that cannot be encoded (bad hostname) fails at once with ERR_CONFIG; the circuit and its streams carry on', { timeout: 30_000 }, async (t) => {
  const port = await echoServer(t);
  const relays = network(t);
  const { circuit, channel } = await memoryCircuit(relays);
  t.after(() => channel.destroy());
  const good = await circuit.openStream('127.0.0.1', port, 5000);
  for (const host of ['*', 'a*b.example', 'exa mple.com', '']) {
    await assert.rejects(circuit.openStream(host, port, 5000), (e: unknown) => e instanceof AlliumError && e.code === 'ERR_CONFIG', host);
  }
  assert.equal(circuit.closed, false);
  await echoRoundTrip(good, 50_000);
  await echoRoundTrip(await circuit.openStream('127.0.0.1', port, 5000), 10_000);
});
