/**
 * Several directory authorities in this process, voting with each other over
 * real HTTP on 127.0.0.1 (docs/protocol.md §9.5), for tests. Each authority
 * reaches each other one through its own `LinkProxy`, a real TCP forwarder
 * that a test can cut to partition the authorities (split brain) and heal.
 * Relays are stood in for by TCP listeners whose descriptors are signed with
 * deterministic keys; a relay is reachable while its listener is open.
 * Everything is torn down in `t.after`. No side effects at import.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import { request } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { hex } from '../../src/bytes.js';
import { startAuthority, type AuthorityConfig, type AuthorityHandle } from '../../directory/authority.js';
import { parseConsensus, verifyConsensus, type VerifiedConsensus } from '../../src/netdoc/consensus.js';
import { encodeDescriptor, type RelayDescriptor } from '../../src/netdoc/descriptor.js';
import { makeDescriptor, relayKeys } from '../netdoc/helpers.js';

/** The cluster's voting interval and consensus lifetime (a quarter interval for each of the vote and distribution delays). */
export const CLUSTER_INTERVAL_MS = 2000;
export const CLUSTER_LIFETIME_MS = 12_000;

/** A TCP forwarder from 127.0.0.1:<port> to a target that can be set later; `cut()` drops every connection and refuses new ones. */
export class LinkProxy {
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  #target = 0;
  #cut = false;
  port = 0;

  constructor() {
    this.#server = createServer((socket) => {
      if (this.#cut || this.#target === 0) {
        socket.destroy();
        return;
      }
      const upstream = connect({ host: '127.0.0.1', port: this.#target });
      for (const s of [socket, upstream]) {
        this.#sockets.add(s);
        s.on('error', () => {});
        s.once('close', () => {
          this.#sockets.delete(s);
          socket.destroy();
          upstream.destroy();
        });
      }
      socket.pipe(upstream);
      upstream.pipe(socket);
    });
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    this.port = (this.#server.address() as { port: number }).port;
  }

  set target(port: number) {
    this.#target = port;
  }

  cut(): void {
    this.#cut = true;
    for (const s of this.#sockets) s.destroy();
  }

  heal(): void {
    this.#cut = false;
  }

  close(): Promise<void> {
    this.cut();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }
}

/** A stand-in relay: an open TCP port (so the authorities' probes succeed) and a signed descriptor naming it. */
export interface FakeRelay {
  readonly n: number;
  readonly port: number;
  readonly identityHex: string;
  /** The signed descriptor (published now, rounded down to the second). */
  descriptor(over?: Partial<RelayDescriptor>): string;
  /** Stops answering: the listener closes, so probes fail. */
  stop(): Promise<void>;
}

export async function fakeRelay(t: Pick<TestContext, 'after'>, n: number, over: Partial<RelayDescriptor> = {}): Promise<FakeRelay> {
  const server = createServer((s) => s.destroy());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  let stopped = false;
  const stop = () =>
    new Promise<void>((resolve) => {
      if (stopped) return resolve();
      stopped = true;
      server.close(() => resolve());
    });
  t.after(stop);
  const keys = relayKeys(n, Date.now());
  return {
    n,
    port,
    identityHex: hex(keys.identity),
    descriptor: (more = {}) =>
      encodeDescriptor(makeDescriptor(keys, { nickname: `relay${n}`, orPort: port, published: Math.floor(Date.now() / 1000) * 1000, ...over, ...more }), keys.signer),
    stop,
  };
}

/** Reachability by a real TCP connect, bounded. */
export function tcpProbe(d: RelayDescriptor): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: d.address, port: d.orPort });
    s.setTimeout(1000, () => {
      s.destroy();
      resolve(false);
    });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export interface HttpAnswer {
  status: number;
  body: string;
}

/** One HTTP request to 127.0.0.1, bounded at 5 s. */
export function http(url: string, opts: { method?: string; body?: string } = {}): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: opts.method ?? 'GET', timeout: 5000, agent: false });
    req.on('timeout', () => req.destroy(new Error('client timeout')));
    req.on('error', reject);
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.end(opts.body);
  });
}

export interface Cluster {
  readonly authorities: AuthorityHandle[];
  /** Identities of every authority (the clients' trusted set). */
  readonly identities: Uint8Array[];
  /** proxies[i][j]: how authority i reaches authority j (i ≠ j). */
  readonly proxies: (LinkProxy | undefined)[][];
  /** Cuts every link between the authorities in `a` and those in `b`, both ways. */
  partition(a: number[], b: number[]): void;
  /** Heals every link. */
  heal(): void;
  /** POSTs a descriptor to the given authorities (default all); resolves with their statuses. */
  upload(text: string, to?: number[]): Promise<number[]>;
  /** The consensus authority i serves now, verified for a client trusting every authority, or null. */
  consensus(i: number): Promise<{ text: string; consensus: VerifiedConsensus } | null>;
  /** Polls authority i (every 100 ms, at most `timeoutMs`) until its verified consensus satisfies `ok`. */
  waitFor(i: number, ok: (c: VerifiedConsensus, text: string) => boolean, timeoutMs: number, what: string): Promise<{ text: string; consensus: VerifiedConsensus }>;
  /** Stops authority i. */
  stop(i: number): Promise<void>;
  /** Starts stopped authority i again on its data directory (a new port; the others reach it through the same proxies). */
  restart(i: number): Promise<void>;
  /** Authority i's data directory. */
  dataDir(i: number): string;
}

export interface ClusterOptions {
  /** Extra configuration for every authority. */
  config?: Partial<AuthorityConfig>;
  /** Identities listed as voting authorities beyond the started ones (their keys are the test's). */
  extraIdentities?: { url: string; identity: Uint8Array }[];
}

/**
 * Starts `n` authorities (a 2 s voting interval, 12 s lifetime unless
 * configured) that vote with each other through proxies. Each has its own
 * authorities list naming the others by proxy URL.
 */
export async function startCluster(t: Pick<TestContext, 'after'>, n: number, opts: ClusterOptions = {}): Promise<Cluster> {
  const root = mkdtempSync(join(tmpdir(), 'allium-cluster-'));
  const proxies: (LinkProxy | undefined)[][] = Array.from({ length: n }, () => Array.from({ length: n }, () => undefined));
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      if (i === j) continue;
      const p = new LinkProxy();
      await p.listen();
      proxies[i]![j] = p;
    }
  }
  const files = Array.from({ length: n }, (_, i) => join(root, `authorities-${i}`));
  const authorities: AuthorityHandle[] = [];
  const stopped = new Set<number>();
  const dataDir = (i: number) => join(root, `auth${i + 1}`);
  const start = (i: number) =>
    startAuthority({
      nickname: `auth${i + 1}`,
      dataDir: dataDir(i),
      host: '127.0.0.1',
      port: 0,
      votingIntervalMs: CLUSTER_INTERVAL_MS,
      consensusLifetimeMs: CLUSTER_LIFETIME_MS,
      probe: tcpProbe,
      probeTimeoutMs: 1000,
      probeIntervalMs: 1000,
      authoritiesFile: files[i]!,
      ...opts.config,
    });
  for (let i = 0; i < n; i++) authorities.push(await start(i));
  const ports = authorities.map((a) => Number(new URL(a.url).port));
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) if (i !== j) proxies[i]![j]!.target = ports[j]!;
  for (let i = 0; i < n; i++) {
    const lines = authorities.map((a, j) => `${i === j ? a.url : `http://127.0.0.1:${proxies[i]![j]!.port}`}#${hex(a.identity)}`);
    for (const extra of opts.extraIdentities ?? []) lines.push(`${extra.url}#${hex(extra.identity)}`);
    writeFileSync(`${files[i]}.tmp`, `${lines.join('\n')}\n`);
    renameSync(`${files[i]}.tmp`, files[i]!);
  }
  const identities = [...authorities.map((a) => a.identity), ...(opts.extraIdentities ?? []).map((e) => e.identity)];
  t.after(async () => {
    await Promise.all(authorities.map((a, i) => (stopped.has(i) ? undefined : a.close())));
    await Promise.all(proxies.flat().map((p) => p?.close()));
    rmSync(root, { recursive: true, force: true });
  });

  const consensus = async (i: number) => {
    let answer: HttpAnswer;
    try {
      answer = await http(`${authorities[i]!.url}/allium/v1/consensus`);
    } catch {
      return null;
    }
    if (answer.status !== 200) return null;
    try {
      return { text: answer.body, consensus: verifyConsensus(answer.body, identities, Date.now()) };
    } catch {
      return null;
    }
  };

  return {
    authorities,
    identities,
    proxies,
    partition(a, b) {
      for (const i of a) for (const j of b) {
        proxies[i]![j]?.cut();
        proxies[j]![i]?.cut();
      }
    },
    heal() {
      for (const p of proxies.flat()) p?.heal();
    },
    async upload(text, to) {
      const targets = to ?? authorities.map((_, i) => i);
      return Promise.all(targets.map(async (i) => (await http(`${authorities[i]!.url}/allium/v1/descriptor`, { method: 'POST', body: text })).status));
    },
    consensus,
    async waitFor(i, ok, timeoutMs, what) {
      const deadline = Date.now() + timeoutMs;
      let last: { text: string; consensus: VerifiedConsensus } | null = null;
      while (Date.now() < deadline) {
        last = await consensus(i);
        if (last !== null && ok(last.consensus, last.text)) return last;
        await new Promise((r) => setTimeout(r, 100));
      }
      const seen = last === null ? 'no verifiable consensus' : `valid-after ${new Date(last.consensus.validAfter).toISOString()}, ${last.consensus.relays.length} relays, ${last.consensus.signatures.length} signatures`;
      throw new Error(`auth${i + 1}: timed out after ${timeoutMs} ms waiting for ${what} (last: ${seen}; last round: ${JSON.stringify(authorities[i]!.lastRound())})`);
    },
    async stop(i) {
      stopped.add(i);
      await authorities[i]!.close();
    },
    async restart(i) {
      authorities[i] = await start(i);
      stopped.delete(i);
      const port = Number(new URL(authorities[i]!.url).port);
      for (let j = 0; j < n; j++) if (j !== i) proxies[j]![i]!.target = port;
    },
    dataDir,
  };
}

/** The signed body of a consensus text (up to and including `directory-footer`). */
export function bodyOf(text: string): string {
  return parseConsensus(text).bodyText;
}
