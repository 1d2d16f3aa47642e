/**
 * Two CircuitEdge instances back to back in memory. Each side's transport
 * encodes the relay message, feeds it to a running SHA-1 kept per direction
 * (as tor1's Df/Db digests are), and delivers it to the other edge on a later
 * turn of the event loop, like a link would. The receiver feeds the same
 * payload to its own copy of that direction's digest, so the digest the sender
 * remembers after a DATA cell equals the one the receiver echoes in its
 * version-1 circuit SENDME.
 *
 * Also a lone edge with a recording transport (lone()), for driving handle()
 * directly, and the waits and counters the circuit-edge tests share.
 * No side effects at import.
 */
import assert from 'node:assert/strict';
import { CircuitEdge, type EdgeTransport } from '../../src/circuit/circuit-edge.js';
import { RelayCommand, decodeRelayCell, encodeRelayCell } from '../../src/cell/relay-cell.js';
import { decodeRelayMsg, encodeRelayMsg } from '../../src/cell/relay-msg.js';
import { crypto, type RunningDigest } from '../../src/crypto/crypto.js';
import { ProtocolError } from '../../src/errors.js';
import { equalBytes } from '../../src/bytes.js';
import type { RelayStream } from '../../src/stream/relay-stream.js';

export const TEST_TIMEOUT = 30_000;
export const protocolError = (e: unknown) => e instanceof ProtocolError && e.code === 'ERR_PROTOCOL';

export interface SentCell {
  command: number;
  streamId: number;
  length: number;
}

export interface Side {
  readonly name: string;
  edge: CircuitEdge;
  readonly sendDigest: RunningDigest;
  readonly recvDigest: RunningDigest;
  /** Every cell this side sent, in order. */
  readonly sent: SentCell[];
  /** Errors thrown by this side's handle(): the owner would destroy the circuit. */
  readonly errors: unknown[];
  /** Cells this side sent that the other side has not handled yet. */
  inFlight: number;
  /** Simulated link congestion toward the other side. */
  congested: () => boolean;
  readonly roomWaiters: Array<() => void>;
  onRoomCalls: number;
  /** Cells whose digests did not agree at both ends (must stay 0). */
  digestMismatches: number;
}

export function makeSide(name: string, sendSeed: Uint8Array, recvSeed: Uint8Array): Side {
  return {
    name,
    edge: undefined as unknown as CircuitEdge,
    sendDigest: crypto.runningSha1(sendSeed),
    recvDigest: crypto.runningSha1(recvSeed),
    sent: [],
    errors: [],
    inFlight: 0,
    congested: () => false,
    roomWaiters: [],
    onRoomCalls: 0,
    digestMismatches: 0,
  };
}

/**
 * Decode a relay message and hand it to `edge` the way a circuit's dispatcher
 * does for DATA, SENDME, END and FIN. Returns false (and does nothing) for any
 * other kind, which the circuit would handle itself.
 */
export function handleRaw(edge: CircuitEdge, command: number, streamId: number, data: Uint8Array, digest: () => Uint8Array): boolean {
  const msg = decodeRelayMsg(command, data);
  if (msg.kind !== 'data' && msg.kind !== 'sendme' && msg.kind !== 'end' && msg.kind !== 'fin') return false;
  edge.handle(streamId, msg, digest);
  return true;
}

export function transport(from: Side, to: Side): EdgeTransport {
  return {
    send(streamId, msg) {
      const { command, body: data } = encodeRelayMsg(msg);
      const payload = encodeRelayCell({ command, streamId, data });
      from.sendDigest.update(payload);
      const digest = from.sendDigest.peek();
      from.sent.push({ command, streamId, length: data.length });
      from.inFlight++;
      setImmediate(() => {
        from.inFlight--;
        to.recvDigest.update(payload);
        if (!equalBytes(to.recvDigest.peek(), digest)) from.digestMismatches++;
        const m = decodeRelayCell(payload);
        try {
          const handled = handleRaw(to.edge, m.command, m.streamId, m.data, () => to.recvDigest.peek());
          if (!handled) to.errors.push(new Error(`unhandled command ${m.command}`));
        } catch (error) {
          to.errors.push(error);
        }
      });
      return digest;
    },
    congested: () => from.congested(),
    roomCells: () => (from.congested() ? 0 : Infinity),
    onRoom(wake) {
      from.onRoomCalls++;
      from.roomWaiters.push(wake);
    },
  };
}

export function makePair(): { a: Side; b: Side } {
  const df = crypto.randomBytes(20);
  const db = crypto.randomBytes(20);
  const a = makeSide('a', df, db);
  const b = makeSide('b', db, df);
  a.edge = new CircuitEdge(transport(a, b));
  b.edge = new CircuitEdge(transport(b, a));
  return { a, b };
}

export function wakeAll(side: Side): void {
  const waiters = side.roomWaiters.splice(0);
  for (const w of waiters) w();
}

export function count(side: Side, command: number, pred: (c: SentCell) => boolean = () => true): number {
  return side.sent.filter((c) => c.command === command && pred(c)).length;
}
export const dataCells = (side: Side, streamId?: number) =>
  count(side, RelayCommand.DATA, (c) => streamId === undefined || c.streamId === streamId);
export const circuitSendmes = (side: Side) => count(side, RelayCommand.SENDME, (c) => c.streamId === 0);
export const streamSendmes = (side: Side) => count(side, RelayCommand.SENDME, (c) => c.streamId !== 0);

/** Resolves once `cond()` holds, polling each macrotask; rejects after `ms`. */
export async function until(cond: () => boolean, ms = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 1));
  }
}

/** Bounded wait: rejects with `what` if `promise` has not settled after `ms`. */
export async function within<T>(promise: Promise<T>, what: string, ms = 10_000): Promise<T> {
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

/** Resolves once no cell is in flight either way and nothing moved for a few event-loop turns. */
export async function settle(a: Side, b: Side): Promise<void> {
  let last = -1;
  let stable = 0;
  const deadline = Date.now() + 10_000;
  while (stable < 5) {
    if (Date.now() > deadline) throw new Error('never settled');
    await new Promise((r) => setTimeout(r, 2));
    const now = a.sent.length + b.sent.length;
    stable = now === last && a.inFlight === 0 && b.inFlight === 0 ? stable + 1 : 0;
    last = now;
  }
}

/** Collects everything the stream yields into one buffer; `expected` bytes resolves it. */
export function collect(stream: RelayStream, expected: number): { done: Promise<Buffer>; received: () => number } {
  const chunks: Buffer[] = [];
  let total = 0;
  const done = new Promise<Buffer>((resolve, reject) => {
    stream.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      total += chunk.length;
      if (total >= expected) resolve(Buffer.concat(chunks));
    });
    stream.on('error', reject);
  });
  return { done, received: () => total };
}

export function assertClean(...sides: Side[]): void {
  for (const s of sides) {
    assert.deepEqual(s.errors, [], `side ${s.name} handle() errors`);
    assert.equal(s.digestMismatches, 0, `side ${s.name} digest mismatches`);
  }
}

export const TWO_MB = 2 * 1024 * 1024;

export interface Recorder {
  edge: CircuitEdge;
  sent: Array<{ command: number; streamId: number; data: Uint8Array; digest: Uint8Array }>;
}

/** A lone edge whose transport records cells and returns a real running digest. */
export function lone(): Recorder {
  const digest = crypto.runningSha1(crypto.randomBytes(20));
  const sent: Recorder['sent'] = [];
  const edge = new CircuitEdge({
    send(streamId, msg) {
      const { command, body: data } = encodeRelayMsg(msg);
      digest.update(encodeRelayCell({ command, streamId, data }));
      const d = digest.peek();
      sent.push({ command, streamId, data: Uint8Array.from(data), digest: d });
      return d;
    },
    congested: () => false,
    roomCells: () => Infinity,
    onRoom: () => {},
  });
  return { edge, sent };
}

export const noDigest = () => new Uint8Array(20);
