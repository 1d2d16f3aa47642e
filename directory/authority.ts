/**
 * startAuthority(): a directory authority (docs/protocol.md).
 * It keeps an Ed25519 identity in its data directory, accepts relay
 * descriptors over HTTP, probes each relay, and every voting interval signs
 * and publishes a consensus of the relays that are Running.
 */
import type { AddressInfo } from 'node:net';
import { debuglog } from 'node:util';
import { deflateSync, gzipSync } from 'node:zlib';
import { equalBytes, hex } from '../src/bytes.js';
import { crypto } from '../src/crypto/crypto.js';
import { AlliumError } from '../src/errors.js';
import { encodeConsensus, parseConsensus, type ConsensusAuthority } from '../src/netdoc/consensus.js';
import type { RelayDescriptor } from '../src/netdoc/descriptor.js';
import { b64, isIPv4, NICKNAME } from '../src/netdoc/text.js';
import { buildConsensusBody, checkParamsConfig } from './consensus-builder.js';
import { DataDir } from './data-dir.js';
import { createDirectoryServer, type Reply } from './http-server.js';
import { Registry } from './registry.js';

const log = debuglog('allium:directory');

export interface AuthorityConfig {
  nickname: string;
  dataDir: string;
  /** IPv4 address to listen on; it is also the address published for this authority. */
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** All configured authorities including this one; default just this one. This one's entry is matched by identity and given the real address and port. */
  authorities?: ConsensusAuthority[];
  /** How often a consensus is published. */
  votingIntervalMs: number;
  /** How long each consensus stays valid. */
  consensusLifetimeMs: number;
  /** Reachability check of a relay. */
  probe: (d: RelayDescriptor) => Promise<boolean>;
  now?: () => number;
  /** Testnet: relays whose exit policy allows loopback destinations still get the Exit flag, and loopback accepts count in summaries. */
  exitsAllowLoopback?: boolean;
  /** Extensions (not in the original API): */
  /** Re-probe every relay this often; default clamp(5 × votingInterval, 10 s, 10 min). */
  probeIntervalMs?: number;
  /** One probe's time limit; default 10 s. */
  probeTimeoutMs?: number;
  /** Whole-request time limit for HTTP; default 10 s. */
  requestTimeoutMs?: number;
  /** Registry capacity; default 1000. */
  maxRelays?: number;
  /** Network parameters for the consensus `params` line (docs/protocol.md §8.5); default none. */
  params?: ReadonlyMap<string, number>;
}

export interface AuthorityHandle {
  readonly url: string;
  readonly identity: Uint8Array;
  readonly nickname: string;
  /** Waits for pending probes, then builds, signs, stores and serves a consensus. */
  publishNow(): Promise<void>;
  close(): Promise<void>;
}

export const DEFAULT_MAX_RELAYS = 1000;
export const PROBE_CONCURRENCY = 8;
export const DEFAULT_PROBE_TIMEOUT_MS = 10_000;

interface Published {
  text: string;
  gzip: Buffer;
  deflate: Buffer;
}

function compress(text: string): Published {
  const raw = Buffer.from(text, 'utf8');
  return { text, gzip: gzipSync(raw), deflate: deflateSync(raw) };
}

export async function startAuthority(config: AuthorityConfig): Promise<AuthorityHandle> {
  if (!NICKNAME.test(config.nickname)) throw new AlliumError('ERR_CONFIG', 'authority nickname must be 1-19 letters or digits');
  if (!isIPv4(config.host)) throw new AlliumError('ERR_CONFIG', 'authority host must be a dotted-quad IPv4 address');
  if (!Number.isInteger(config.port) || config.port < 0 || config.port > 65535) throw new AlliumError('ERR_CONFIG', 'bad authority port');
  if (!(config.votingIntervalMs > 0) || !(config.consensusLifetimeMs >= config.votingIntervalMs)) {
    throw new AlliumError('ERR_CONFIG', 'need votingIntervalMs > 0 and consensusLifetimeMs ≥ votingIntervalMs');
  }
  checkParamsConfig(config.params);
  const now = config.now ?? Date.now;
  const dir = new DataDir(config.dataDir);
  const seed = dir.loadOrCreateIdentitySeed(() => crypto.randomBytes(32));
  const identity = crypto.ed25519PublicKey(seed);
  const identityHex = hex(identity);
  const probeIntervalMs = config.probeIntervalMs ?? Math.min(600_000, Math.max(10_000, 5 * config.votingIntervalMs));
  const probeTimeoutMs = config.probeTimeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS;

  const registry = new Registry({
    now,
    probe: config.probe,
    probeTimeoutMs,
    probeConcurrency: PROBE_CONCURRENCY,
    runningWindowMs: 2 * probeIntervalMs + probeTimeoutMs,
    maxRelays: config.maxRelays ?? DEFAULT_MAX_RELAYS,
    onAccepted: (entry) => {
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

  let published: Published | undefined;
  const stored = dir.loadConsensus();
  if (stored !== undefined) {
    try {
      parseConsensus(stored);
      published = compress(stored);
    } catch (error) {
      log('ignoring stored consensus: %s', (error as Error).message);
    }
  }

  let authorities: ConsensusAuthority[] = [];
  let url = '';
  const self = (): { nickname: string; identity: string; identityHex: string; address: string; dirPort: number; url: string } => {
    const me = authorities.find((a) => equalBytes(a.identity, identity))!;
    return { nickname: me.nickname, identity: b64(identity), identityHex, address: me.address, dirPort: me.dirPort, url };
  };

  const textReply = (status: number, body: string): Reply => ({ status, body: `${body}\n` });
  const server = createDirectoryServer(
    {
      uploadDescriptor(text) {
        const outcome = registry.submit(text);
        if (outcome.ok) return textReply(200, outcome.duplicate ? 'duplicate' : 'accepted');
        log('refused descriptor (%d): %s', outcome.status, outcome.reason);
        return textReply(outcome.status, outcome.reason);
      },
      getConsensus(encoding) {
        if (published === undefined) return textReply(404, 'no consensus yet');
        if (encoding === 'gzip') return { status: 200, body: published.gzip, headers: { 'content-encoding': 'gzip', vary: 'accept-encoding' } };
        if (encoding === 'deflate') return { status: 200, body: published.deflate, headers: { 'content-encoding': 'deflate', vary: 'accept-encoding' } };
        return { status: 200, body: published.text, headers: { vary: 'accept-encoding' } };
      },
      getDescriptor(id) {
        const entry = registry.get(id);
        return entry === undefined ? textReply(404, 'unknown relay') : { status: 200, body: entry.text };
      },
      getAuthority() {
        return { status: 200, body: `${JSON.stringify(self())}\n`, contentType: 'application/json' };
      },
    },
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
  const me: ConsensusAuthority = { nickname: config.nickname, identity, address: config.host, dirPort: port };
  authorities = [...(config.authorities ?? []).filter((a) => !equalBytes(a.identity, identity)), me];

  let closed = false;
  let publishing: Promise<void> = Promise.resolve();
  const publishOnce = async (waitForProbes: boolean): Promise<void> => {
    if (waitForProbes) {
      // Let probes under way finish, but never wait longer than one probe may take.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([registry.settled(), new Promise<void>((r) => (timer = setTimeout(r, probeTimeoutMs + 1000)))]);
      clearTimeout(timer);
    }
    if (closed) return;
    registry.expire();
    const t = now();
    const running = registry
      .entries()
      .filter((e) => registry.isRunning(e, t))
      .map((e) => ({ descriptor: e.descriptor, digest: e.digest }));
    const body = buildConsensusBody({
      now: t,
      freshMs: config.votingIntervalMs,
      lifetimeMs: config.consensusLifetimeMs,
      authorities,
      running,
      exitsAllowLoopback: config.exitsAllowLoopback === true,
      params: config.params,
    });
    const text = encodeConsensus(body, [seed]);
    published = compress(text);
    try {
      dir.saveConsensus(text);
    } catch (error) {
      log('could not store the consensus: %s', (error as Error).message);
    }
    log('published consensus with %d of %d relays', running.length, registry.size);
  };
  const publish = (waitForProbes: boolean): Promise<void> => {
    // Serialize publications; a failure of one does not poison the next.
    const run = () => publishOnce(waitForProbes);
    const next = publishing.then(run, run);
    publishing = next.catch(() => {});
    return next;
  };
  const publishNow = (): Promise<void> => publish(true);

  registry.probeAll();
  let timerPublishing = false;
  const voteTimer = setInterval(() => {
    if (timerPublishing) return; // the previous round is still waiting for probes
    timerPublishing = true;
    publish(true)
      .catch((error: unknown) => log('publication failed: %s', (error as Error).message))
      .finally(() => (timerPublishing = false));
  }, config.votingIntervalMs);
  const probeTimer = setInterval(() => registry.probeAll(), probeIntervalMs);
  log('authority %s (%s) serving %s; %d stored descriptors', config.nickname, identityHex.slice(0, 16), url, restored);

  return {
    url,
    identity,
    nickname: config.nickname,
    publishNow,
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(voteTimer);
      clearInterval(probeTimer);
      registry.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await publishing;
    },
  };
}
