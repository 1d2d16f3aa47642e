/**
 * startClient(): the client role, wiring only. Keeps a verified consensus
 * (consensus-refresh.ts), keeps its guards and learned build times in its
 * data directory (state-file.ts), builds and keeps circuits through the
 * circuit manager, and serves SOCKS5 on 127.0.0.1 with the same openStream()
 * that programs can call directly.
 */
import type { Duplex } from 'node:stream';
import { debuglog } from 'node:util';
import { AlliumError } from '../src/errors.js';
import type { CircuitStats, LinkStats } from '../src/events.js';
import type { Transport } from '../src/link/transport.js';
import { BuildTimeoutEstimator } from './build-timeout.js';
import { CircuitManager, type CircuitInfo, type OpenStreamOptions, type PreemptiveOptions, type StreamInfo } from './circuit-manager.js';
import { ConsensusRefresh } from './consensus-refresh.js';
import type { AuthorityRef } from './directory-client.js';
import { GuardSet, type GuardStatus } from './guard-set.js';
import { socksIsolation } from './isolation.js';
import type { RandomSource } from './path-selection.js';
import { RelayStatus } from './relay-status.js';
import { startSocksServer, type SocksServer } from './socks/server.js';
import { EMPTY_STATE, StateFile } from './state-file.js';

export type { AuthorityRef } from './directory-client.js';
export type { CircuitInfo, OpenStreamOptions, StreamInfo } from './circuit-manager.js';
export type { GuardStatus } from './guard-set.js';

const debug = debuglog('allium:client');
/** State changes are written at most this often, ms. */
const SAVE_DELAY_MS = 1000;

export interface ClientConfig {
  authorities: AuthorityRef[];
  socksHost: string;
  /** 0 picks a free port. */
  socksPort: number;
  /** Where the state file (guards, build times) lives; without it the client keeps them in memory only. */
  dataDir?: string;
  /** A fixed circuit build timeout, ms; without it the timeout is learned (capped at 10 s until then). */
  circuitBuildTimeoutMs?: number;
  /** Streams to different hosts never share a circuit. */
  isolateDestAddr?: boolean;
  /** Streams to different ports never share a circuit. */
  isolateDestPort?: boolean;
  /** A circuit takes no new streams this long after its first, ms. Default 10 min. */
  maxCircuitDirtinessMs?: number;
  /** Total time one stream request may take, retries included, ms. Default 30 s. */
  streamTimeoutMs?: number;
  preemptive?: Partial<PreemptiveOptions>;
  /** Where notable events go (guard changes, a state file that could not be read). Default: NODE_DEBUG=allium:client. */
  log?: (message: string) => void;
  /** For tests: links over another transport, injected randomness. */
  transport?: Transport;
  random?: RandomSource;
}

export interface ClientHandle {
  readonly socksAddress: { host: string; port: number };
  /** Resolves once a three-hop circuit is built; rejects after `timeoutMs`. */
  whenReady(timeoutMs: number): Promise<void>;
  /** Open a stream to host:port through the network; hostnames are resolved by the exit. */
  openStream(host: string, port: number, opts?: OpenStreamOptions): Promise<Duplex>;
  /** From now on every new stream uses a circuit no earlier stream used (Tor's NEWNYM). */
  newnym(): void;
  /** Build a clean circuit now (exit allowing `port`, default 80) and report it. */
  buildCircuit(port?: number): Promise<CircuitInfo>;
  /** The built circuits. */
  circuitStatus(): CircuitInfo[];
  /** The open streams (with their targets: for the operator only, never logged). */
  streamStatus(): StreamInfo[];
  /** The circuit and target of a stream openStream() returned, while it is open. */
  streamInfo(stream: Duplex): StreamInfo | undefined;
  /** The sampled guards. */
  guardStatus(): GuardStatus[];
  /** Recent circuit build times, ms, oldest first. */
  buildTimes(): number[];
  /** The build timeout in force, ms. */
  buildTimeoutMs(): number;
  /** The client's links (to its guards): a read-only snapshot. */
  linkStats(): LinkStats;
  /** The client's circuits and streams: a read-only snapshot. */
  circuitStats(): CircuitStats;
  close(): Promise<void>;
}

export async function startClient(config: ClientConfig): Promise<ClientHandle> {
  if (config.authorities.length === 0) throw new AlliumError('ERR_CONFIG', 'at least one authority is required');
  const log = config.log ?? ((message: string) => debug('%s', message));
  const random = config.random ?? Math.random;

  const stateFile = config.dataDir !== undefined ? new StateFile(config.dataDir) : null;
  const loaded = stateFile?.load() ?? { state: EMPTY_STATE };
  if (loaded.problem !== undefined) log(loaded.problem);
  const timeouts = new BuildTimeoutEstimator();
  timeouts.load(loaded.state.buildTimesMs);

  let saveTimer: NodeJS.Timeout | undefined;
  const save = () => {
    if (stateFile === null) return;
    try {
      stateFile.save({ ...guards.state(), buildTimesMs: timeouts.samples() });
    } catch (error) {
      log(`could not write ${stateFile.path}: ${(error as Error).message}`);
    }
  };
  const scheduleSave = () => {
    if (stateFile === null || saveTimer !== undefined) return;
    saveTimer = setTimeout(() => {
      saveTimer = undefined;
      save();
    }, SAVE_DELAY_MS);
    saveTimer.unref();
  };
  const guards = new GuardSet(loaded.state, { log, onChange: scheduleSave, random });
  if (loaded.state.guards.length > 0) log(`loaded ${loaded.state.guards.length} guards (${loaded.state.confirmed.length} confirmed) from ${stateFile!.path}`);

  const consensus = new ConsensusRefresh(config.authorities);
  const manager = new CircuitManager({
    consensus: () => consensus.current,
    guards,
    status: new RelayStatus({ random }),
    timeouts,
    random,
    ...(config.circuitBuildTimeoutMs !== undefined ? { fixedBuildTimeoutMs: config.circuitBuildTimeoutMs } : {}),
    ...(config.transport !== undefined ? { transport: config.transport } : {}),
    isolation: { isolateDestAddr: config.isolateDestAddr === true, isolateDestPort: config.isolateDestPort === true },
    ...(config.maxCircuitDirtinessMs !== undefined ? { maxDirtinessMs: config.maxCircuitDirtinessMs } : {}),
    ...(config.streamTimeoutMs !== undefined ? { streamTimeoutMs: config.streamTimeoutMs } : {}),
    ...(config.preemptive !== undefined ? { preemptive: config.preemptive } : {}),
    onBuildTime: scheduleSave,
  });
  await consensus.start();
  manager.start();
  void manager.ready.then(() => consensus.markReady());

  const openStream = (host: string, port: number, opts?: OpenStreamOptions) => manager.openStream(host, port, opts);

  let socks: SocksServer;
  try {
    socks = await startSocksServer({
      host: config.socksHost,
      port: config.socksPort,
      connect: (request) => openStream(request.host, request.port, { isolation: socksIsolation(request.username, request.password) }),
    });
  } catch (error) {
    consensus.close();
    await manager.close();
    throw error;
  }

  return {
    socksAddress: socks.address,
    whenReady(timeoutMs) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new AlliumError('ERR_TIMEOUT', 'no circuit could be built in time')), timeoutMs);
      });
      return Promise.race([manager.ready, timeout]).finally(() => clearTimeout(timer));
    },
    openStream,
    newnym: () => manager.newnym(),
    buildCircuit: (port) => manager.buildCircuit(port),
    circuitStatus: () => manager.circuitStatus(),
    streamStatus: () => manager.streamStatus(),
    streamInfo: (stream) => manager.streamInfo(stream),
    guardStatus: () => manager.guardStatus(),
    buildTimes: () => manager.buildTimes(),
    buildTimeoutMs: () => manager.buildTimeoutMs,
    linkStats: () => manager.linkStats(),
    circuitStats: () => manager.stats(),
    async close() {
      consensus.close();
      await socks.close();
      await manager.close();
      clearTimeout(saveTimer);
      saveTimer = undefined;
      save();
    },
  };
}
