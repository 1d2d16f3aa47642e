/**
 * startAuthority(): a directory authority (docs/protocol.md §9), wiring only.
 * It keeps its keys in its data directory (authority-keys.ts), accepts relay
 * descriptors over HTTP (directory-routes.ts) into the registry, tests each
 * relay's reachability (probe-scheduler.ts) and measures its bandwidth
 * (measurer.ts) with a link and a one-hop circuit (relay-tester.ts), and votes with the other configured
 * authorities every voting interval (voting.ts), publishing the consensus
 * more than half of them signed.
 */
import type { AddressInfo } from 'node:net';
import { debuglog } from 'node:util';
import { hex } from '../src/bytes.js';
import { AlliumError } from '../src/errors.js';
import { parseConsensus, type ConsensusAuthority } from '../src/netdoc/consensus.js';
import type { RelayDescriptor } from '../src/netdoc/descriptor.js';
import { b64, isIPv4, NICKNAME } from '../src/netdoc/text.js';
import { AuthorityKeys } from './authority-keys.js';
import { AuthorityList, type AuthorityRef } from './authority-list.js';
import { SUPPORTED_METHODS } from './consensus-algorithm.js';
import { DataDir } from './data-dir.js';
import { directoryRoutes } from './directory-routes.js';
import { createDirectoryServer } from './http-server.js';
import { startProbeScheduler } from './probe-scheduler.js';
import { compress, type Published } from './published.js';
import { TOR_FLAG_THRESHOLDS, type FlagThresholds } from './flags.js';
import { Measurer } from './measurer.js';
import { Registry } from './registry.js';
import { RelayHistory } from './relay-history.js';
import { buildVote, checkParamsConfig } from './vote-builder.js';
import { Voting, type RoundReport } from './voting.js';
import { renderStatusPage } from './status-page.js';
import { DEFAULT_CLOCK_SKEW_MS } from '../src/netdoc/consensus.js';
import { makeTimetable, type Timetable } from './voting-schedule.js';

export { RelayTester } from './relay-tester.js';
export type { AuthorityRef } from './authority-list.js';

const log = debuglog('allium:directory');

export interface AuthorityConfig {
  nickname: string;
  dataDir: string;
  /** IPv4 address to listen on; it is also the address published for this authority. */
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** Every authority that votes (URL and identity), this one included or not; default: this one alone. */
  authorities?: AuthorityRef[];
  /**
   * A file of `URL#IDENTITYHEX` lines listing every voting authority, re-read
   * when it changes; replaces `authorities`. Until it exists the authority does not vote.
   */
  authoritiesFile?: string;
  /** Time between rounds (§9.5), a whole number of seconds. */
  votingIntervalMs: number;
  /** How long each consensus stays valid, a whole number of seconds ≥ the interval. */
  consensusLifetimeMs: number;
  /** Vote and distribution delays of the timetable (§9.5); default a quarter interval each. */
  voteDelayMs?: number;
  distDelayMs?: number;
  /** Reachability check of a relay (§9.4); RelayTester.probe in a deployed authority. */
  probe: (d: RelayDescriptor) => Promise<boolean>;
  /** Bandwidth measurement of a relay in bytes/s (§9.4), RelayTester.measure in a deployed authority; none if undefined. */
  measure?: (d: RelayDescriptor) => Promise<number | undefined>;
  /** Each relay is measured again after this long; default 1 h. */
  measureIntervalMs?: number;
  /** Bytes the measurements may pull per minute; default 16 MiB. */
  measureBudgetBytesPerMinute?: number;
  /** Closed with the authority (the relay tester's links). */
  closeWith?: { close(): void };
  now?: () => number;
  /** Testnet: relays whose exit policy allows loopback destinations still get the Exit flag, and loopback accepts count in summaries. */
  exitsAllowLoopback?: boolean;
  /** Re-probe every relay this often; default clamp(5 × votingInterval, 10 s, 10 min). */
  probeIntervalMs?: number;
  /** One probe's time limit; default 10 s. */
  probeTimeoutMs?: number;
  /** Whole-request time limit for HTTP; default 10 s. */
  requestTimeoutMs?: number;
  /** Registry capacity; default 1000. */
  maxRelays?: number;
  /** Network parameters this authority votes for (docs/protocol.md §8.5); default none. */
  params?: ReadonlyMap<string, number>;
  /** Lifetime of the signing keys the authority makes itself while its identity key is online; default 30 days (§9.1). */
  signingKeyLifetimeMs?: number;
  /** Clock-skew tolerance for other authorities' certificates (§9.5); default 60 s. */
  clockSkewMs?: number;
  /** Flag thresholds (§9.4); default Tor's (TOR_FLAG_THRESHOLDS). */
  flagThresholds?: FlagThresholds;
  /** Relays (identities) the operator marks BadExit; when given (even empty) the authority votes on BadExit (§9.4). */
  badExits?: readonly Uint8Array[];
}

export interface AuthorityHandle {
  readonly url: string;
  readonly identity: Uint8Array;
  readonly nickname: string;
  /** A lone authority: waits for pending probes, then votes, signs, stores and serves a consensus now (ERR_CONFIG if others vote with it). */
  publishNow(): Promise<void>;
  /** The outcome of the last round (§9.5), if any. */
  lastRound(): RoundReport | undefined;
  /** The outcomes of the last 32 rounds, oldest first. */
  recentRounds(): readonly RoundReport[];
  close(): Promise<void>;
}

export const DEFAULT_MAX_RELAYS = 1000;
export const PROBE_CONCURRENCY = 8;
export const DEFAULT_PROBE_TIMEOUT_MS = 10_000;

/** Throws AlliumError ERR_CONFIG for a configuration startAuthority cannot run with; returns the timetable. */
function checkConfig(config: AuthorityConfig): Timetable {
  if (!NICKNAME.test(config.nickname)) throw new AlliumError('ERR_CONFIG', 'authority nickname must be 1-19 letters or digits');
  if (!isIPv4(config.host)) throw new AlliumError('ERR_CONFIG', 'authority host must be a dotted-quad IPv4 address');
  if (!Number.isInteger(config.port) || config.port < 0 || config.port > 65535) throw new AlliumError('ERR_CONFIG', 'bad authority port');
  checkParamsConfig(config.params);
  return makeTimetable(config.votingIntervalMs, config.consensusLifetimeMs, config.voteDelayMs, config.distDelayMs);
}

/** The stored consensus, if it still parses. */
function loadStoredConsensus(dir: DataDir): Published | undefined {
  const stored = dir.loadConsensus();
  if (stored === undefined) return undefined;
  try {
    parseConsensus(stored);
    return compress(stored);
  } catch (error) {
    log('ignoring stored consensus: %s', (error as Error).message);
    return undefined;
  }
}

export async function startAuthority(config: AuthorityConfig): Promise<AuthorityHandle> {
  const timetable = checkConfig(config);
  const now = config.now ?? Date.now;
  const dir = new DataDir(config.dataDir);
  const keys = new AuthorityKeys({
    dataDir: config.dataDir,
    now,
    ...(config.signingKeyLifetimeMs !== undefined ? { signingKeyLifetimeMs: config.signingKeyLifetimeMs } : {}),
  });
  const identity = keys.identity;
  const identityHex = hex(identity);
  const authorities = new AuthorityList(identity, {
    ...(config.authorities !== undefined ? { authorities: config.authorities } : {}),
    ...(config.authoritiesFile !== undefined ? { file: config.authoritiesFile } : {}),
  });
  const probeIntervalMs = config.probeIntervalMs ?? Math.min(600_000, Math.max(10_000, 5 * config.votingIntervalMs));
  const probeTimeoutMs = config.probeTimeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS;

  const history = new RelayHistory({ maxRelays: 10 * (config.maxRelays ?? DEFAULT_MAX_RELAYS) });
  const restoredHistory = history.load(dir.loadHistory());
  const saveHistory = () => {
    try {
      dir.saveHistory(history.toJSON());
    } catch (error) {
      log('could not store the relay history: %s', (error as Error).message);
    }
  };
  const badExits = config.badExits === undefined ? undefined : new Set(config.badExits.map((id) => hex(id)));
  const registry = new Registry({
    now,
    probe: config.probe,
    probeTimeoutMs,
    probeConcurrency: PROBE_CONCURRENCY,
    runningWindowMs: 2 * probeIntervalMs + probeTimeoutMs,
    maxRelays: config.maxRelays ?? DEFAULT_MAX_RELAYS,
    onProbed: (entry, ok, at) => history.record(entry.identityHex, ok, at),
    onAccepted: (entry) => {
      history.seen(entry.identityHex, now());
      try {
        dir.saveDescriptor(entry.identityHex, entry.text);
      } catch (error) {
        log('could not store descriptor %s: %s', entry.identityHex.slice(0, 16), (error as Error).message);
      }
    },
    onRemoved: (id) => dir.removeDescriptor(id),
  });
  let restored = 0;
  for (const [name, text] of dir.loadDescriptors()) {
    if (registry.restore(text) && registry.get(name) !== undefined) restored++;
    else dir.removeDescriptor(name);
  }

  let url = '';
  let self: ConsensusAuthority = { nickname: config.nickname, identity, address: config.host, dirPort: 1 };

  /** Lets probes under way finish, but never longer than `limitMs`. */
  const probesSettled = async (limitMs: number) => {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([registry.settled(), new Promise<void>((r) => (timer = setTimeout(r, limitMs)))]);
    clearTimeout(timer);
  };

  const initial = loadStoredConsensus(dir);
  const voting = new Voting({
    keys,
    timetable,
    authorities,
    dir,
    now,
    self: () => self,
    ...(config.clockSkewMs !== undefined ? { clockSkewMs: config.clockSkewMs } : {}),
    ...(initial !== undefined ? { initial } : {}),
    prepareVote: (deadline) => probesSettled(Math.max(0, deadline - now())),
    makeVote: (times) => {
      registry.expire();
      saveHistory();
      const t = now();
      return buildVote({
        authority: self,
        published: Math.min(Math.floor(t / 1000) * 1000, times.validAfter),
        validAfter: times.validAfter,
        freshUntil: times.freshUntil,
        validUntil: times.validUntil,
        relays: registry.entries().map((e) => {
          const stats = history.stats(e.identityHex, t);
          const measured = history.measured(e.identityHex, t);
          return {
            descriptor: e.descriptor,
            digest: e.digest,
            running: registry.isRunning(e, t),
            ...(stats !== undefined ? { stats } : {}),
            ...(measured !== undefined ? { measured } : {}),
          };
        }),
        exitsAllowLoopback: config.exitsAllowLoopback === true,
        methods: SUPPORTED_METHODS,
        thresholds: config.flagThresholds ?? TOR_FLAG_THRESHOLDS,
        ...(badExits !== undefined ? { badExits } : {}),
        ...(config.params !== undefined ? { params: config.params } : {}),
      });
    },
  });

  const server = createDirectoryServer(
    directoryRoutes({
      registry,
      voting,
      self: () => ({ nickname: self.nickname, identity: b64(identity), identityHex, address: self.address, dirPort: self.dirPort, url }),
      statusPage: () => {
        const t = now();
        return renderStatusPage({
          nickname: config.nickname,
          identityHex,
          url,
          now: t,
          consensus: voting.published?.text,
          authorities: authorities.current()?.identities ?? null,
          relays: registry.entries().map((e) => ({
            identityHex: e.identityHex,
            nickname: e.descriptor.nickname,
            address: e.descriptor.address,
            orPort: e.descriptor.orPort,
            advertised: e.descriptor.bandwidth,
            running: registry.isRunning(e, t),
            measured: history.measured(e.identityHex, t),
            stats: history.stats(e.identityHex, t),
          })),
          rounds: voting.reports,
          clockSkewMs: config.clockSkewMs ?? DEFAULT_CLOCK_SKEW_MS,
        });
      },
    }),
    config.requestTimeoutMs === undefined ? {} : { requestTimeoutMs: config.requestTimeoutMs },
  );

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  url = `http://${config.host}:${port}`;
  self = { nickname: config.nickname, identity, address: config.host, dirPort: port };

  const probes = startProbeScheduler(registry, probeIntervalMs);
  const measurer =
    config.measure === undefined
      ? undefined
      : new Measurer({
          registry,
          history,
          now,
          measure: config.measure,
          ...(config.measureIntervalMs !== undefined ? { intervalMs: config.measureIntervalMs } : {}),
          ...(config.measureBudgetBytesPerMinute !== undefined ? { budgetBytesPerMinute: config.measureBudgetBytesPerMinute } : {}),
        });
  measurer?.start();
  voting.start();
  log('authority %s (%s) serving %s; %d stored descriptors, history of %d relays', config.nickname, identityHex.slice(0, 16), url, restored, restoredHistory);

  let closed = false;
  return {
    url,
    identity,
    nickname: config.nickname,
    async publishNow() {
      await probesSettled(probeTimeoutMs + 1000);
      saveHistory();
      await voting.runLoneRound();
    },
    lastRound: () => voting.lastReport,
    recentRounds: () => voting.reports,
    async close() {
      if (closed) return;
      closed = true;
      const stopping = voting.close();
      const measuring = measurer?.stop();
      probes.stop();
      registry.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await stopping;
      await measuring;
      config.closeWith?.close();
      saveHistory();
    },
  };
}
