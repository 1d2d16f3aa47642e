/**
 * What the stream tests share: a real relay core in memory with the options
 * stream tests need (exit policy, directory, name lookup, idle limit), a real
 * client circuit against a fake relay that sends whatever a test wants, TCP
 * destinations on 127.0.0.1 (port 0) that behave as a test asks, and bounded
 * waits. No side effects at import.
 */
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import type { TestContext } from 'node:test';
import type { Duplex } from 'node:stream';
import { cellCircuitId } from '../../src/cell/channel-cell.js';
import { ChannelCommand } from '../../src/cell/channel-cell.js';
import { RelayCommand, decodeRelayCell, type DecodedRelayCell } from '../../src/cell/relay-cell.js';
import { BeginFlag, encodeBegin, encodeConnected } from '../../src/cell/stream-messages.js';
import { ChannelCircuits } from '../../src/circuit/circuit-ids.js';
import { Channel } from '../../src/link/channel.js';
import { parseExitPolicy } from '../../src/netdoc/exit-policy.js';
import { createRelayCore, type RelayCore } from '../../relay/relay.js';
import { loadRelayKeys } from '../../relay/keys.js';
import type { ExitLookup } from '../../relay/exit.js';
import type { DirectoryHandler } from '../../relay/relay-circuit.js';
import { OriginCircuit, type OriginCircuitOptions, type StreamOptions } from '../../client/origin-circuit.js';
import type { RelayStream } from '../../src/stream/relay-stream.js';
import { duplexPair } from '../support/duplex-pair.js';
import { FakeRelay, type FakeCircuit } from '../adversarial/fake-relay.js';
import { HostilePeer, WAIT_MS, tempDir, type PeerCircuit, type RelayTarget } from '../adversarial/hostile-peer.js';

export { WAIT_MS };

export interface StreamRelayOptions {
  /** Exit policy lines; default 'accept 127.0.0.1:*', 'reject *:*'; null: not an exit. */
  policy?: string[] | null;
  directory?: DirectoryHandler | null;
  lookup?: ExitLookup;
  halfClosedIdleMs?: number;
  /** The exit's linger after a stream closes on the wire (ms); default EXIT_LINGER_MS. */
  lingerMs?: number;
}

/** A relay core in memory (real Noise links over duplex pairs, real exit sockets), for a HostilePeer. */
export function streamRelay(t: TestContext, opts: StreamRelayOptions = {}): RelayTarget & { core: RelayCore } {
  const keys = loadRelayKeys(tempDir(t, 'allium-streams-'));
  const policy = opts.policy === undefined ? ['accept 127.0.0.1:*', 'reject *:*'] : opts.policy;
  const core = createRelayCore({
    keys,
    exit: {
      policy: policy === null ? null : parseExitPolicy(policy),
      localAddress: '127.0.0.1',
      ...(opts.lookup ? { lookup: opts.lookup } : {}),
      ...(opts.lingerMs !== undefined ? { lingerMs: opts.lingerMs } : {}),
    },
    transport: { connect: async () => Promise.reject(new Error('no next hop in this test')) },
    dialTimeoutMs: WAIT_MS,
    directory: opts.directory ?? null,
    ...(opts.halfClosedIdleMs !== undefined ? { halfClosedIdleMs: opts.halfClosedIdleMs } : {}),
  });
  t.after(() => core.links.destroy());
  return {
    keys,
    core,
    async open(): Promise<Duplex> {
      const [near, far] = duplexPair();
      core.accept(far).catch(() => far.destroy());
      return near;
    },
  };
}

/** What a relay said on a circuit: a relay message (opened in order), or DESTROY. */
export type Heard = { kind: 'relay'; cell: DecodedRelayCell } | { kind: 'destroy'; reason: number };

/** The next relay cell or DESTROY on `circ`; every RELAY cell must go through here (the layer is a running state). */
export async function hear(peer: HostilePeer, circ: PeerCircuit, what: string, timeoutMs = WAIT_MS): Promise<Heard> {
  const cell = await peer.next((c) => cellCircuitId(c) === circ.id && (c[4] === ChannelCommand.RELAY || c[4] === ChannelCommand.DESTROY), what, timeoutMs);
  if (cell[4] === ChannelCommand.DESTROY) return { kind: 'destroy', reason: cell[5]! };
  const payload = cell.subarray(5);
  circ.layers.backward.crypt(payload);
  if (!circ.layers.backward.open(payload)) throw new Error('relay cell not recognized');
  return { kind: 'relay', cell: decodeRelayCell(new Uint8Array(payload)) };
}

/** Listen until `done` says so; returns everything heard, in order (rejects after the bound). */
export async function hearUntil(peer: HostilePeer, circ: PeerCircuit, done: (h: Heard) => boolean, what: string, timeoutMs = WAIT_MS): Promise<Heard[]> {
  const all: Heard[] = [];
  for (;;) {
    const h = await hear(peer, circ, what, timeoutMs);
    all.push(h);
    if (done(h) || h.kind === 'destroy') return all;
  }
}

/** The relay's answer about `streamId`: END (its reason) or DESTROY; other cells on the way are skipped. */
export async function answerFor(peer: HostilePeer, circ: PeerCircuit, streamId: number, what = `answer on stream ${streamId}`): Promise<Heard> {
  const heard = await hearUntil(peer, circ, (h) => h.kind === 'relay' && h.cell.streamId === streamId && (h.cell.command === RelayCommand.END || h.cell.command === RelayCommand.CONNECTED), what);
  return heard[heard.length - 1]!;
}

/** BEGIN host:port on `streamId` and wait for CONNECTED; returns it (throws on anything else). */
export async function beginAt(peer: HostilePeer, circ: PeerCircuit, streamId: number, port: number, opts: { halfClose?: boolean; host?: string } = {}): Promise<DecodedRelayCell> {
  const flags = opts.halfClose === true ? BeginFlag.HALF_CLOSE : 0;
  peer.sendRelay(circ, RelayCommand.BEGIN, streamId, encodeBegin({ host: opts.host ?? '127.0.0.1', port, flags }));
  const h = await answerFor(peer, circ, streamId, `CONNECTED on ${streamId}`);
  if (h.kind !== 'relay' || h.cell.command !== RelayCommand.CONNECTED) throw new Error(`stream ${streamId} not connected: ${JSON.stringify(h)}`);
  return h.cell;
}

/** A TCP server on 127.0.0.1:0 with half-open sockets; `onConnection` does what the test wants. Closed after the test. */
export async function destination(
  t: TestContext,
  onConnection: (socket: Socket) => void = () => {},
): Promise<{ server: Server; port: number; sockets: Set<Socket>; accepted: Socket[]; next(): Promise<Socket> }> {
  const sockets = new Set<Socket>();
  const accepted: Socket[] = [];
  let waiters: Array<(s: Socket) => void> = [];
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    accepted.push(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    onConnection(socket);
    const w = waiters;
    waiters = [];
    for (const wake of w) wake(socket);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  let taken = 0;
  return {
    server,
    port: (server.address() as AddressInfo).port,
    sockets,
    accepted,
    next: () =>
      within(
        new Promise<Socket>((resolve) => {
          if (accepted.length > taken) resolve(accepted[taken++]!);
          else waiters.push(() => resolve(accepted[taken++]!));
        }),
        'a connection at the destination',
      ),
  };
}

/** `promise`, or a rejection naming `what` after `ms`. */
export async function within<T>(promise: Promise<T>, what: string, ms = WAIT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Wait (bounded) until `cond()` holds, polling every 10 ms. */
export async function until(cond: () => boolean, what: string, ms = WAIT_MS): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Everything `socket` (or a stream) sends until its end, or the error it fails with. */
export function drain(stream: NodeJS.ReadableStream & { on(e: 'error', f: (e: Error) => void): unknown }): Promise<{ data: Buffer; error: Error | null }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => resolve({ data: Buffer.concat(chunks), error: null }));
    stream.on('error', (error: Error) => resolve({ data: Buffer.concat(chunks), error }));
  });
}

// ---------------------------------------------------------------------------
// a real client against a fake relay

export interface ClientAgainstFake {
  fake: FakeRelay;
  channel: Channel;
  build(options?: OriginCircuitOptions): Promise<{ circuit: OriginCircuit; fc: FakeCircuit }>;
  /** BEGIN from the client; the fake answers CONNECTED (with `flags` after the address when given). */
  open(c: { circuit: OriginCircuit; fc: FakeCircuit }, opts?: { flags?: number; stream?: StreamOptions }): Promise<{ stream: RelayStream; streamId: number }>;
  /** The BEGIN the client sent last on `fc`, once it is there. */
  nextBegin(fc: FakeCircuit): Promise<DecodedRelayCell>;
  /** The END the client sent on `streamId` (its reason), or the DESTROY it sent for the circuit. */
  clientAnswer(fc: FakeCircuit, streamId: number): Promise<Heard>;
}

/** A one-hop OriginCircuit to a fake relay (real link, real ntor, real layers). */
export async function clientAgainstFake(t: TestContext): Promise<ClientAgainstFake> {
  const fake = new FakeRelay(t);
  const [near, far] = duplexPair();
  const accepted = fake.accept(far);
  const channel = await Channel.connect(near, { peerLinkKey: fake.info.linkKey, peerIdentity: fake.info.identity, timeoutMs: WAIT_MS });
  t.after(() => channel.destroy());
  await accepted;
  const table = new ChannelCircuits<OriginCircuit>();
  channel.on('cell', (cell: Uint8Array) => table.get(cellCircuitId(cell))?.circuit.receive(cell));
  const seenBegins = new WeakMap<FakeCircuit, number>();
  const nextBegin = async (fc: FakeCircuit): Promise<DecodedRelayCell> => {
    const from = seenBegins.get(fc) ?? 0;
    const find = () => fc.messages.findIndex((m, i) => i >= from && m.command === RelayCommand.BEGIN);
    await fake.until(() => find() >= 0, 'BEGIN at the fake');
    const index = find();
    seenBegins.set(fc, index + 1);
    return fc.messages[index]!;
  };
  return {
    fake,
    channel,
    async build(options = {}) {
      const circuit = await OriginCircuit.build(channel, table, [fake.info], WAIT_MS, options);
      return { circuit, fc: fake.circuits.find((c) => c.id === circuit.id)! };
    },
    async open({ circuit, fc }, opts = {}) {
      const opening = circuit.openStream('127.0.0.1', 80, WAIT_MS, opts.stream ?? {});
      const begin = await nextBegin(fc);
      fake.sendRelay(fc, RelayCommand.CONNECTED, begin.streamId, encodeConnected('127.0.0.1', 300, opts.flags ?? 0));
      return { stream: await opening, streamId: begin.streamId };
    },
    nextBegin,
    async clientAnswer(fc, streamId) {
      const end = () => fc.messages.find((m) => m.streamId === streamId && m.command === RelayCommand.END);
      const destroy = () => fake.received.find((r) => r.channel === fc.channel && cellCircuitId(r.cell) === fc.id && r.cell[4] === ChannelCommand.DESTROY);
      await fake.until(() => end() !== undefined || destroy() !== undefined, `the client's answer on stream ${streamId}`);
      const d = destroy();
      if (d !== undefined) return { kind: 'destroy', reason: d.cell[5]! };
      return { kind: 'relay', cell: end()! };
    },
  };
}
