/**
 * A relay on several cores: the main process only accepts connections on the
 * OR port and hands each accepted socket, unread, to one of N worker
 * processes (relay-worker.ts) in turn; each worker runs a whole relay core and
 * owns the links it was given, the circuits made on them and the links it
 * dials for their EXTEND2s. No cell ever crosses from one worker to another.
 *
 * Why processes and not worker_threads: Node cannot move a socket into a
 * worker thread (there is no handle transfer between threads), while a child
 * process receives one over IPC (SCM_RIGHTS), as node:cluster does. A relay
 * with workers holds up to N links to a peer relay instead of one.
 *
 * The directory cache (fetching and verifying the consensus) runs once, in
 * the main process; each newer consensus is sent to every worker, which
 * serves it to the BEGIN_DIR streams on its links (setConsensus).
 *
 * The per-address DoS limits (dos.ts) are relay-wide because every link
 * from one remote address goes to the same worker (link-affinity.ts): that
 * worker sees all of the address's links and takes all of its CREATE2 from
 * one token bucket, exactly as a relay with one worker would, with no
 * message between processes per circuit. A new address goes to the worker
 * carrying the fewest links, so a relay's cores are shared by address (one
 * address, like one C tor instance, is served by one core). The main process
 * also counts each address's connections until the worker carrying it
 * reports it closed ('linkClosed'), and closes a connection past
 * `dos.maxLinksPerAddress` before handing it over. An address whose last link
 * closed keeps its worker for circuitBurst / circuitRate seconds (the time
 * its bucket takes to fill again), so reconnecting cannot reach a fresh bucket.
 *
 * Counters (linkStats, circuitStats) are the sums of what the workers last
 * reported (once a second). A worker that dies is taken out of the rotation;
 * its links and circuits are gone with it. What changes while the relay runs
 * (exit policy, rate limit, hibernation, onion keys, the descriptor served
 * over BEGIN_DIR) reaches every worker as an `update` (WorkerUpdate).
 */
import { fork, type ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { debuglog } from 'node:util';
import { AlliumError } from '../src/errors.js';
import type { CircuitStats, LinkStats } from '../src/events.js';
import type { LinkShape } from '../src/link/delay-line.js';
import type { NetworkParams } from '../src/netdoc/params.js';
import { DOS_DEFAULTS, addressKey, type DosOptions, type DosStats } from './dos.js';
import { LinkAffinity } from './link-affinity.js';
import type { MemoryCapOptions, MemoryCapStats } from './mem-cap.js';
import { REBALANCE_MS, shareRate } from './bandwidth/share.js';

const log = debuglog('allium:relay');

/** How long a worker may take to load its keys and say it is ready, ms. */
const WORKER_START_TIMEOUT_MS = 15_000;
/** How long close() waits for a worker to exit before killing it, ms. */
const WORKER_CLOSE_TIMEOUT_MS = 5_000;

/** What a worker needs to run the relay's core (sent once, as JSON). */
export interface WorkerSetup {
  dataDir: string;
  /** Address links are dialled from and exit connections leave from (the relay's listening address). */
  listenAddress: string;
  /** The relay's IPv6 OR address: links to IPv6 peers are dialled from it, and EXTEND2 may use IPv6 (§6.3). */
  listenAddress6?: string;
  exit: boolean;
  /** Exit policy rule lines, as the relay was configured. */
  exitPolicy: string[];
  /** This worker's token bucket, bytes/s and bytes (its share of the relay's rate); absent: no limit. */
  rateLimit?: { rate: number; burst: number };
  /** Each worker applies these limits to the links it carries. */
  dos?: DosOptions;
  /** Each worker's own cap (the relay's cap divided among the workers). */
  memoryCap?: MemoryCapOptions;
  /** Each worker gives every link it dials this wide-area shape (src/link/shaped-transport.ts). */
  linkShape?: LinkShape;
  /** The relay's own network parameters (congestion control, docs/protocol.md §7.2). */
  params?: NetworkParams;
}

/** A change for every worker of a running relay (each field optional). */
export interface WorkerUpdate {
  /** New exit policy rule lines. */
  exitPolicy?: string[];
  /** The worker's new share of the rate limit (a relay started with one). */
  rateLimit?: { rate: number; burst: number };
  /** Accounting (§8.2.1): refuse new circuits while true. */
  hibernating?: boolean;
  /** The onion key files changed: read them again. */
  reloadOnionKeys?: boolean;
  /** The signing key file changed: read it again. */
  reloadSigningKey?: boolean;
  /** The encoded descriptor to serve over BEGIN_DIR. */
  descriptor?: string;
}

/**
 * Main process → worker. 'link' comes with the accepted socket as the IPC
 * handle. 'consensus' hands over the consensus the main process's directory
 * cache fetched and verified (dir-cache.ts), for the worker to serve on
 * BEGIN_DIR; valid-until in ms. 'update' carries a WorkerUpdate.
 */
export type WorkerRequest =
  | { type: 'setup'; setup: WorkerSetup }
  /** `address`: the connection's remote address key (dos.ts addressKey), '' if unknown; reported back in 'linkClosed'. */
  | { type: 'link'; address: string }
  | { type: 'consensus'; text: string; validUntil: number }
  | { type: 'update'; update: WorkerUpdate }
  | { type: 'close' };

/** Worker → main process. */
export type WorkerReport =
  | { type: 'ready' }
  | { type: 'failed'; message: string }
  /** Its bucket's counters (TokenBucket.taken, .emptied), every USAGE_INTERVAL_MS while it has one. */
  | { type: 'usage'; taken: number; emptied: number }
  | { type: 'stats'; links: LinkStats; circuits: CircuitStats; dos: DosStats; memory: MemoryCapStats; limited: number }
  /** A connection handed over with 'link' has closed. */
  | { type: 'linkClosed'; address: string };

export interface RelayWorkers {
  /** Workers alive. */
  readonly size: number;
  /** Hand an accepted, paused socket to the next worker (the socket is closed here once sent). */
  dispatch(socket: Socket): void;
  /** Every worker serves this consensus on BEGIN_DIR from now on (valid-until in ms). */
  setConsensus(text: string, validUntil: number): void;
  linkStats(): LinkStats;
  circuitStats(): CircuitStats;
  dosStats(): DosStats;
  memoryStats(): MemoryCapStats;
  /** Times the workers' rate-limit buckets ran empty. */
  limited(): number;
  /** Send `update` to every worker alive (workers are started once, with the relay). */
  update(update: WorkerUpdate): void;
  /**
   * The relay's rate and burst (bytes/s, bytes), shared among the workers
   * that run with a bucket (setup.rateLimit) and re-shared every REBALANCE_MS
   * by what each used (bandwidth/share.ts).
   */
  limitRate(rate: number, burst: number): void;
  /** Ask every worker to close its links and exit; kill those that do not within 5 s. */
  close(): Promise<void>;
}

interface Worker {
  child: ChildProcess;
  links: LinkStats;
  circuits: CircuitStats;
  dos: DosStats;
  memory: MemoryCapStats;
  limited: number;
  alive: boolean;
  /** Its bucket's counters as last reported, and as of the last rebalance. */
  usage: { taken: number; emptied: number };
  shared: { taken: number; emptied: number };
  /** Connections handed to this worker (with a known address) and not yet reported closed. */
  carried: number;
}

const ZERO_LINKS: LinkStats = { open: 0, opened: 0, closed: 0, cellsIn: 0, cellsOut: 0, queuedBytes: 0 };
const ZERO_CIRCUITS: CircuitStats = { open: 0, built: 0, destroyed: 0, streams: 0, streamsOpened: 0, streamBytesIn: 0, streamBytesOut: 0, dirBytesIn: 0, dirBytesOut: 0 };
const ZERO_DOS: DosStats = { linksRefused: 0, circuitsRefused: 0, beginsRefused: 0, streamsRefused: 0, addressesWithLinks: 0 };
const ZERO_MEMORY: MemoryCapStats = { capBytes: 0, queuedBytes: 0, garbageBytes: 0, oomEvents: 0, circuitsFreed: 0, linksClosed: 0, bytesFreed: 0, collections: 0 };

function sum<T extends object>(items: T[], zero: T): T {
  const out = { ...zero } as Record<string, number>;
  for (const item of items) for (const [k, v] of Object.entries(item)) out[k] = (out[k] ?? 0) + (v as number);
  return out as T;
}

function startWorker(setup: WorkerSetup): Promise<Worker> {
  const script = fileURLToPath(new URL('./relay-worker.js', import.meta.url));
  const child = fork(script, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'json' });
  const worker: Worker = {
    child, links: ZERO_LINKS, circuits: ZERO_CIRCUITS, dos: ZERO_DOS, memory: ZERO_MEMORY, limited: 0, alive: true,
    usage: { taken: 0, emptied: 0 }, shared: { taken: 0, emptied: 0 }, carried: 0,
  };
  return new Promise<Worker>((resolve, reject) => {
    const fail = (error: Error) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(error);
    };
    const timer = setTimeout(() => fail(new AlliumError('ERR_TIMEOUT', `relay worker did not start within ${WORKER_START_TIMEOUT_MS} ms`)), WORKER_START_TIMEOUT_MS);
    child.on('message', (message: WorkerReport) => {
      switch (message.type) {
        case 'ready':
          clearTimeout(timer);
          resolve(worker);
          return;
        case 'failed':
          fail(new AlliumError('ERR_CONFIG', `relay worker failed to start: ${message.message}`));
          return;
        case 'stats':
          worker.links = message.links;
          worker.circuits = message.circuits;
          worker.dos = message.dos;
          worker.memory = message.memory;
          worker.limited = message.limited;
          return;
        case 'usage':
          worker.usage = { taken: message.taken, emptied: message.emptied };
          return;
        case 'linkClosed':
          return; // counted by startRelayWorkers
      }
    });
    child.once('exit', (code, signal) => {
      worker.alive = false;
      fail(new AlliumError('ERR_CONFIG', `relay worker exited during start (${signal ?? code})`));
    });
    child.on('error', (error) => log('relay worker: %s', error.message));
    child.send({ type: 'setup', setup } satisfies WorkerRequest);
  });
}

/** Fork `count` workers (at least 1) for the relay described by `setup`; resolves once all are ready. */
/**
 * Starts `count` worker processes with `setup`. `onLost(message)` is called
 * once if a worker exits while the pool is not closing: the relay has lost a
 * share of its links and cannot carry on as advertised.
 */
export async function startRelayWorkers(count: number, setup: WorkerSetup, onLost: (message: string) => void = () => {}): Promise<RelayWorkers> {
  if (!Number.isInteger(count) || count < 1) throw new AlliumError('ERR_CONFIG', `workers: expected a positive integer, got ${count}`);
  const started = await Promise.allSettled(Array.from({ length: count }, () => startWorker(setup)));
  const workers = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failure = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failure !== undefined) {
    for (const w of workers) w.child.kill('SIGKILL');
    throw failure.reason;
  }
  let next = 0;
  let closing = false;
  let lost = false;
  let rebalance: NodeJS.Timeout | undefined;
  let lastShare = 0;
  // Relay-wide: which worker carries each address's links, and how many it has.
  const dos = { ...DOS_DEFAULTS, ...Object.fromEntries(Object.entries(setup.dos ?? {}).filter(([, v]) => v !== undefined)) };
  const affinity = new LinkAffinity<Worker>({ retainMs: Math.ceil((dos.circuitBurst / dos.circuitRate) * 1000) });
  let linksRefused = 0;
  const released = (w: Worker, address: string) => {
    if (affinity.links(address) === 0) return;
    affinity.remove(address);
    w.carried--;
  };
  for (const w of workers) {
    w.child.on('message', (message: WorkerReport) => {
      if (message.type === 'linkClosed') released(w, message.address);
    });
    w.child.once('exit', (code, signal) => {
      w.alive = false;
      // Its connections are gone with it.
      affinity.dropWorker(w);
      w.carried = 0;
      if (closing) return;
      const message = `relay worker ${w.child.pid} exited (${signal ?? code}); ${workers.filter((x) => x.alive).length} of ${workers.length} left`;
      log('%s', message);
      if (!lost) {
        lost = true;
        onLost(message);
      }
    });
  }
  const alive = () => workers.filter((w) => w.alive && w.child.connected);

  return {
    get size() {
      return alive().length;
    },
    dispatch(socket) {
      const live = alive();
      if (closing || live.length === 0) {
        socket.destroy();
        return;
      }
      const address = addressKey(socket.remoteAddress);
      if (address !== '' && dos.maxLinksPerAddress > 0 && affinity.links(address) >= dos.maxLinksPerAddress) {
        linksRefused++;
        socket.destroy();
        return;
      }
      let worker: Worker;
      if (address === '') worker = live[next++ % live.length]!;
      else {
        const pinned = affinity.workerOf(address);
        // A new address (or one whose worker died) goes to the worker carrying the fewest links.
        worker = pinned !== undefined && pinned.alive && pinned.child.connected ? pinned : live.reduce((a, b) => (b.carried < a.carried ? b : a));
        affinity.add(address, worker);
        worker.carried++;
      }
      worker.child.send({ type: 'link', address } satisfies WorkerRequest, socket, (error) => {
        if (error !== null && error !== undefined) {
          log('could not hand a link to a worker: %s', error.message);
          socket.destroy();
          if (address !== '') released(worker, address);
        }
      });
    },
    setConsensus(text, validUntil) {
      for (const w of alive()) w.child.send({ type: 'consensus', text, validUntil } satisfies WorkerRequest);
    },
    linkStats: () => sum(workers.map((w) => w.links), ZERO_LINKS),
    circuitStats: () => sum(workers.map((w) => w.circuits), ZERO_CIRCUITS),
    dosStats: () => {
      const total = sum(workers.map((w) => w.dos), ZERO_DOS);
      // Links are refused here (a worker's own limit is never the one met) and addresses counted here, once.
      return { ...total, linksRefused: total.linksRefused + linksRefused, addressesWithLinks: affinity.size };
    },
    memoryStats: () => sum(workers.map((w) => w.memory), ZERO_MEMORY),
    limited: () => workers.reduce((n, w) => n + w.limited, 0),
    limitRate(rate, burst) {
      clearInterval(rebalance);
      lastShare = Date.now();
      const reshare = () => {
        const now = Date.now();
        const uses = workers.map((w) => ({ bytes: w.usage.taken - w.shared.taken, limited: w.usage.emptied > w.shared.emptied }));
        const shares = shareRate(rate, burst, uses, now - lastShare);
        lastShare = now;
        workers.forEach((w, i) => {
          w.shared = w.usage;
          if (w.alive && w.child.connected) w.child.send({ type: 'update', update: { rateLimit: shares[i]! } } satisfies WorkerRequest, () => {});
        });
      };
      // At once: an equal split (nothing measured yet), then by use.
      workers.forEach((w) => (w.shared = w.usage));
      const equal = shareRate(rate, burst, workers.map(() => ({ bytes: 0, limited: true })), REBALANCE_MS);
      workers.forEach((w, i) => {
        if (w.alive && w.child.connected) w.child.send({ type: 'update', update: { rateLimit: equal[i]! } } satisfies WorkerRequest, () => {});
      });
      rebalance = setInterval(reshare, REBALANCE_MS);
      rebalance.unref();
    },
    update(update) {
      for (const w of alive()) w.child.send({ type: 'update', update } satisfies WorkerRequest, (error) => {
        if (error !== null && error !== undefined) log('could not update a worker: %s', error.message);
      });
    },
    async close() {
      closing = true;
      clearInterval(rebalance);
      await Promise.all(
        workers.map(
          (w) =>
            new Promise<void>((resolve) => {
              if (w.child.exitCode !== null || w.child.signalCode !== null) {
                resolve();
                return;
              }
              const timer = setTimeout(() => w.child.kill('SIGKILL'), WORKER_CLOSE_TIMEOUT_MS);
              w.child.once('exit', () => {
                clearTimeout(timer);
                resolve();
              });
              if (w.child.connected) w.child.send({ type: 'close' } satisfies WorkerRequest);
              else w.child.kill('SIGTERM');
            }),
        ),
      );
    },
  };
}
