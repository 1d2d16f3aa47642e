/**
 * startClient(): the client role, wiring only. Keeps a verified consensus
 * (consensus-refresh.ts, cached on disk when given a data directory), keeps its guards and learned build times in its
 * data directory (state-file.ts), builds and keeps circuits through the
 * circuit manager, reports bootstrap progress (bootstrap.ts), and serves
 * local applications: SOCKS5, SOCKS4 and SOCKS4a on 127.0.0.1 (socks/),
 * optionally an HTTP CONNECT tunnel port (http-tunnel/) and a control port
 * (control/), all through the same openStream() and lookup() that programs
 * can call directly.
 */
import { ClientMemoryCap, type ClientMemoryCapOptions, type ClientMemoryCapStats } from './mem-cap.js';
import { QuietCollector, type QuietCollectOptions } from './quiet-collect.js';
import type { Duplex } from 'node:stream';
import { debuglog } from 'node:util';
import { AlliumError, StreamEndedError, malformed } from '../src/errors.js';
import { parseDestination } from '../src/net/hostname.js';
import { EndReason } from '../src/cell/reasons.js';
import { subscribe, type CircuitStats, type LinkStats } from '../src/events.js';
import { TcpTransport, type Transport } from '../src/link/transport.js';
import type { VerifiedConsensus } from '../src/netdoc/consensus.js';
import { RelayStream } from '../src/stream/relay-stream.js';
import { BootstrapTracker } from './bootstrap.js';
import { BuildTimeoutEstimator } from './build-timeout.js';
import { CircuitStatsRecorder } from '../src/circuit/circuit-stats.js';
import { CircuitManager, type CircuitInfo, type OpenStreamOptions, type PreemptiveOptions, type StreamInfo } from './circuit-manager.js';
import { ConsensusRefresh, type DirectoryStatus } from './consensus-refresh.js';
import { RelayConsensusFetcher } from './dir-via-relay.js';
import type { AuthorityRef } from './directory-client.js';
import { GuardSet, type GuardStatus } from './guard-set.js';
import { socksIsolation, tunnelIsolation } from './isolation.js';
import type { RandomSource } from './path-selection.js';
import { RelayStatus } from './relay-status.js';
import { planLookup, pickAnswer, type LookupAnswer } from './resolve.js';
import { StreamTable, type ClientProtocol } from './stream-table.js';
import { startSocksServer, type SocksServer } from './socks/server.js';
import { startHttpTunnel, type HttpTunnelServer } from './http-tunnel/server.js';
import { startControlPort, type ControlPort } from './control/start.js';
import { EMPTY_STATE, StateFile } from './state-file.js';
import type { LinkShape } from '../src/link/delay-line.js';
import { ShapedTransport } from '../src/link/shaped-transport.js';

export type { AuthorityRef } from './directory-client.js';
export type { CircuitInfo, OpenStreamOptions, StreamInfo } from './circuit-manager.js';
export type { GuardStatus } from './guard-set.js';
export type { LookupAnswer } from './resolve.js';
export type { DirectoryStatus } from './consensus-refresh.js';

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
  /**
   * Reach guards over IPv6 and ask relays to extend over IPv6 when the relays
   * have IPv6 OR addresses (torrc ClientPreferIPv6ORPort; docs/protocol.md §6.3, §11.3). Default false.
   */
  preferIPv6?: boolean;
  /** Streams to different hosts never share a circuit. */
  isolateDestAddr?: boolean;
  /** Streams to different ports never share a circuit. */
  isolateDestPort?: boolean;
  /** A circuit takes no new streams this long after its first, ms. Default 10 min. */
  maxCircuitDirtinessMs?: number;
  /** Total time one stream request may take, retries included, ms. Default 30 s. */
  streamTimeoutMs?: number;
  preemptive?: Partial<PreemptiveOptions>;
  /** An HTTP CONNECT tunnel port on 127.0.0.1 (0 picks one); off when absent. */
  httpTunnelPort?: number;
  /** A control port on 127.0.0.1 (0 picks one); off when absent. Needs cookie or password authentication. */
  controlPort?: number;
  /** Control port COOKIE / SAFECOOKIE authentication: a fresh cookie is written here, mode 0600. */
  cookieAuthFile?: string;
  /** Control port HASHEDPASSWORD authentication (`16:...` as `tor --hash-password` prints). */
  hashedControlPasswords?: string[];
  /** Allium's version, for the control port. Default 'dev'. */
  version?: string;
  /** Where to report bootstrap progress (subscribe before starting to hear every phase); default a new tracker. */
  bootstrap?: BootstrapTracker;
  /** Where notable events go (guard changes, a state file that could not be read). Default: NODE_DEBUG=allium:client. */
  log?: (message: string) => void;
  /** For tests: links over another transport, injected randomness. */
  transport?: Transport;
  random?: RandomSource;
  /** Give every link to a guard a wide-area shape (delay, rate; src/link/shaped-transport.ts); ignored with `transport`. */
  linkShape?: LinkShape;
  /** Clock-skew tolerance for consensus times and certificates (§11); default 60 s. */
  clockSkewMs?: number;
  /** Longest wait between consensus fetches once ready; default 30 s. */
  maxConsensusRefreshMs?: number;
  /** Called when the client loses a usable consensus, with the reason (and with null when it has one again). */
  onDirectoryProblem?: (message: string | null) => void;
  /** Refresh the consensus through the directory guard's cache before asking the authorities (§11); default true. */
  directoryViaGuard?: boolean;
  /** The memory cap for SOCKS and tunnel streams' buffers (client/mem-cap.ts); default its defaults (64 MiB). */
  memoryCap?: ClientMemoryCapOptions;
  /** The collection asked for when the last stream closes (client/quiet-collect.ts); default its defaults. */
  quietCollect?: QuietCollectOptions;
}

export interface ClientHandle {
  /** SOCKS5 / SOCKS4 / SOCKS4a listener. */
  readonly socksAddress: { host: string; port: number };
  /** HTTP CONNECT tunnel listener, when configured. */
  readonly httpTunnelAddress: { host: string; port: number } | null;
  /** Control port listener, when configured. */
  readonly controlAddress: { host: string; port: number } | null;
  /** Bootstrap progress (Tor's phases); listen with `bootstrap.onChange`. */
  readonly bootstrap: BootstrapTracker;
  /** Resolves once a three-hop circuit is built; rejects after `timeoutMs`. */
  whenReady(timeoutMs: number): Promise<void>;
  /**
   * Open a stream to host:port through the network; hostnames are resolved by
   * the exit. `host` must be a hostname or IP literal (src/net/hostname.ts):
   * anything else rejects with DecodeError ERR_MALFORMED before any circuit
   * is used. The stream half-closes (end() sends FIN, reading goes on) when the
   * exit supports it (docs/protocol.md §6.4); it is then finished once both
   * sides have ended it (or on destroy()), as a TCP connection is.
   */
  openStream(host: string, port: number, opts?: OpenStreamOptions): Promise<Duplex>;
  /**
   * Look `host` up through an exit (RESOLVE): forward, a hostname → an
   * address (an IP address is its own answer); reverse, an IP address → a
   * name. Resolves with null when the exit found no answer.
   */
  lookup(host: string, opts?: { reverse?: boolean; isolation?: string }): Promise<LookupAnswer | null>;
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
  /** The memory cap for the SOCKS and tunnel streams: bytes held, events, streams ended. */
  memoryCapStats(): ClientMemoryCapStats;
  /** The consensus in use (null if none is valid now). */
  consensus(): VerifiedConsensus | null;
  /** The consensus in use and, if there is none, why (§11). */
  directoryStatus(): DirectoryStatus;
  close(): Promise<void>;
}

export async function startClient(config: ClientConfig): Promise<ClientHandle> {
  if (config.authorities.length === 0) throw new AlliumError('ERR_CONFIG', 'at least one authority is required');
  const log = config.log ?? ((message: string) => debug('%s', message));
  const random = config.random ?? Math.random;
  const bootstrap = config.bootstrap ?? new BootstrapTracker();
  const streams = new StreamTable();
  const memoryCap = new ClientMemoryCap({ log, ...config.memoryCap });
  const quietCollector = new QuietCollector(config.quietCollect);

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

  // One set of circuit counters for every circuit the client builds, directory fetches included.
  const circuitStats = new CircuitStatsRecorder();
  const consensus = new ConsensusRefresh({
    authorities: config.authorities,
    ...(config.dataDir !== undefined ? { cacheDir: config.dataDir } : {}),
    ...(config.clockSkewMs !== undefined ? { clockSkewMs: config.clockSkewMs } : {}),
    ...(config.maxConsensusRefreshMs !== undefined ? { maxRefreshMs: config.maxConsensusRefreshMs } : {}),
    ...(config.onDirectoryProblem !== undefined ? { onProblem: config.onDirectoryProblem } : {}),
    ...(config.directoryViaGuard === false ? {} : {
          relayFetcher: new RelayConsensusFetcher({
            stats: circuitStats,
            ...(config.clockSkewMs === undefined ? {} : { clockSkewMs: config.clockSkewMs }),
            ...(config.preferIPv6 === true ? { preferIPv6: true } : {}),
          }),
        }),
    onFetch: (error) => onConsensusFetch(error),
  });
  const onConsensusFetch = (error: Error | null): void => {
    // A failed fetch matters to bootstrap only while there is no usable consensus (a cached one may do).
    if (error !== null && consensus.current === null) {
      if (bootstrap.status.progress < 75) bootstrap.problem(`cannot fetch a consensus from ${authorityList(config.authorities)}: ${describeError(error)}`);
      return;
    }
    const c = consensus.current;
    if (c === null || bootstrap.status.progress >= 75) return;
    const exits = c.relays.filter((r) => r.flags.includes('Exit')).length;
    if (c.relays.length >= 3 && exits >= 1) {
      bootstrap.reach('enough_dirinfo');
      bootstrap.reach('ap_conn');
    } else {
      bootstrap.problem(`the consensus lists ${c.relays.length} relays (${exits} exits); a circuit needs three, one of them an exit`);
    }
  };
  const manager = new CircuitManager({
    consensus: () => consensus.current,
    stats: circuitStats,
    guards,
    status: new RelayStatus({ random }),
    timeouts,
    random,
    ...(config.circuitBuildTimeoutMs !== undefined ? { fixedBuildTimeoutMs: config.circuitBuildTimeoutMs } : {}),
    ...(config.preferIPv6 === true ? { preferIPv6: true } : {}),
    ...(config.transport !== undefined
      ? { transport: config.transport }
      : config.linkShape !== undefined
        ? { transport: new ShapedTransport(new TcpTransport(), config.linkShape) }
        : {}),
    isolation: { isolateDestAddr: config.isolateDestAddr === true, isolateDestPort: config.isolateDestPort === true },
    ...(config.maxCircuitDirtinessMs !== undefined ? { maxDirtinessMs: config.maxCircuitDirtinessMs } : {}),
    ...(config.streamTimeoutMs !== undefined ? { streamTimeoutMs: config.streamTimeoutMs } : {}),
    ...(config.preemptive !== undefined ? { preemptive: config.preemptive } : {}),
    onBuildTime: scheduleSave,
    onBuildFailed: (error) => {
      if (bootstrap.status.progress >= 75) bootstrap.problem(`cannot build a circuit: ${describeError(error)}`);
    },
  });
  // The first link the client opens finishes the ap_* phases (one process is one client).
  const stopLinkWatch = subscribe('allium:link:open', (e) => {
    if (!e.initiator || bootstrap.status.progress < 80) return;
    bootstrap.reach('ap_handshake_done');
    bootstrap.reach('circuit_create');
  });
  bootstrap.reach('requesting_status');
  await consensus.start();
  manager.start();
  void manager.ready.then(() => {
    consensus.markReady();
    bootstrap.reach('done');
    stopLinkWatch();
  });

  /** Without a usable consensus a stream or lookup fails at once, saying why (§11). */
  const noUsableConsensus = (): void => {
    const problem = consensus.problem;
    if (problem !== null) throw new AlliumError('ERR_NO_PATH', `cannot build circuits: ${problem}`);
  };

  const openStream = async (host: string, port: number, opts: OpenStreamOptions = {}, protocol: ClientProtocol = 'UNKNOWN'): Promise<Duplex> => {
    const destination = parseDestination(host);
    if (destination.type === 'invalid') throw malformed(`not a valid destination: ${destination.why}`);
    const entry = streams.add(destination.host, port, protocol, 'connect');
    try {
      noUsableConsensus();
      const stream = await manager.openStream(destination.host, port, opts);
      // An application socket is spliced to it (SOCKS, tunnel): its buffers and the socket's count toward the cap.
      if (protocol !== 'UNKNOWN' && stream instanceof RelayStream) memoryCap.track(stream);
      if (stream instanceof RelayStream) quietCollector.track(stream);
      streams.succeeded(entry, stream instanceof RelayStream ? stream.circuitId : 0);
      const onClose = () => streams.closed(entry, stream instanceof RelayStream ? (stream.endReason ?? EndReason.DONE) : EndReason.DONE);
      if (stream.destroyed) onClose();
      else stream.once('close', onClose);
      return stream;
    } catch (error) {
      streams.failed(entry, error instanceof StreamEndedError ? error.reason : EndReason.MISC);
      throw error;
    }
  };

  const lookup = async (host: string, opts: { reverse?: boolean; isolation?: string } = {}, protocol: ClientProtocol = 'UNKNOWN'): Promise<LookupAnswer | null> => {
    const reverse = opts.reverse === true;
    const entry = streams.add(host, 0, protocol, 'resolve');
    try {
      const plan = planLookup(host, reverse);
      if (!('answer' in plan)) noUsableConsensus();
      const answer = 'answer' in plan ? plan.answer : pickAnswer(await manager.resolve(plan.ask, opts.isolation ?? ''), reverse);
      if (answer === null) {
        streams.failed(entry, EndReason.RESOLVEFAILED);
      } else {
        streams.succeeded(entry, 0);
        streams.closed(entry, EndReason.DONE);
      }
      return answer;
    } catch (error) {
      streams.failed(entry, error instanceof StreamEndedError ? error.reason : EndReason.MISC);
      throw error;
    }
  };

  let socks: SocksServer | null = null;
  let tunnel: HttpTunnelServer | null = null;
  let control: ControlPort | null = null;
  const stopAll = async () => {
    consensus.close();
    memoryCap.close();
    stopLinkWatch();
    await control?.close();
    await tunnel?.close();
    await socks?.close();
    await manager.close();
  };
  try {
    socks = await startSocksServer({
      host: config.socksHost,
      port: config.socksPort,
      connect: (request, _signal, earlyData) =>
        openStream(
          request.host,
          request.port,
          { isolation: socksIsolation(request.username, request.password), ...(earlyData !== undefined ? { earlyData } : {}) },
          request.version === 4 ? 'SOCKS4' : 'SOCKS5',
        ),
      resolve: (request) =>
        lookup(
          request.host,
          { reverse: request.command === 'resolve_ptr', isolation: socksIsolation(request.username, request.password) },
          request.version === 4 ? 'SOCKS4' : 'SOCKS5',
        ),
    });
    if (config.httpTunnelPort !== undefined) {
      tunnel = await startHttpTunnel({
        port: config.httpTunnelPort,
        connect: (request, _signal, earlyData) =>
          openStream(request.host, request.port, { isolation: tunnelIsolation(request.proxyAuthorization), ...(earlyData !== undefined ? { earlyData } : {}) }, 'HTTPCONNECT'),
      });
    }
    if (config.controlPort !== undefined) {
      const listen = (a: { host: string; port: number } | null | undefined) => (a ? [`${a.host}:${a.port}`] : []);
      control = await startControlPort(
        {
          port: config.controlPort,
          ...(config.cookieAuthFile !== undefined ? { cookieAuthFile: config.cookieAuthFile } : {}),
          ...(config.hashedControlPasswords !== undefined ? { hashedPasswords: config.hashedControlPasswords } : {}),
        },
        {
          bootstrap,
          streams,
          circuits: () => manager.circuitStatus(),
          consensus: () => consensus.current,
          linkStats: () => manager.linkStats(),
          listeners: () => ({ socks: listen(socks?.address), control: listen(control?.address), httptunnel: listen(tunnel?.address) }),
          conf: () =>
            new Map<string, string | null>([
              ['SocksPort', socks !== null ? `${socks.address.host}:${socks.address.port}` : null],
              ['HTTPTunnelPort', tunnel !== null ? `${tunnel.address.host}:${tunnel.address.port}` : '0'],
              ['ControlPort', control !== null ? `${control.address.host}:${control.address.port}` : null],
              ['CookieAuthentication', config.cookieAuthFile !== undefined ? '1' : '0'],
              ['CookieAuthFile', config.cookieAuthFile ?? null],
              ['Nickname', 'Unnamed'],
              ['ORPort', '0'],
              ['DirPort', '0'],
            ]),
          newnym: () => manager.newnym(),
          buildCircuit: () => manager.buildCircuit(),
        },
        config.version ?? 'dev',
      );
    }
  } catch (error) {
    await stopAll();
    throw error;
  }

  return {
    socksAddress: socks.address,
    httpTunnelAddress: tunnel?.address ?? null,
    controlAddress: control?.address ?? null,
    bootstrap,
    whenReady(timeoutMs) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          const s = bootstrap.status;
          const problem = consensus.problem;
          let why = s.warning !== null ? `; stuck at ${s.progress}% (${s.tag}): ${s.warning}` : ` (at ${s.progress}%, ${s.tag})`;
          // Before 75 % the warning already says why no consensus was accepted; later, a lost consensus is news.
          if (problem !== null && s.progress >= 75) why += `; ${problem}`;
          reject(new AlliumError('ERR_TIMEOUT', `no circuit could be built in ${timeoutMs} ms${why}`));
        }, timeoutMs);
      });
      return Promise.race([manager.ready, timeout]).finally(() => clearTimeout(timer));
    },
    openStream: (host, port, opts) => openStream(host, port, opts),
    lookup: (host, opts) => lookup(host, opts),
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
    memoryCapStats: () => memoryCap.stats(),
    consensus: () => consensus.current,
    directoryStatus: () => consensus.status(),
    async close() {
      await stopAll();
      clearTimeout(saveTimer);
      saveTimer = undefined;
      save();
    },
  };
}

/** One line for a person: the message and the stable code. */
function describeError(error: unknown): string {
  if (error instanceof AlliumError) return `${error.message} (${error.code})`;
  return error instanceof Error ? error.message : String(error);
}

function authorityList(authorities: AuthorityRef[]): string {
  return authorities.map((a) => a.url).join(', ');
}
