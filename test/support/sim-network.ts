/**
 * A small network in one process for client tests: relays with real keys
 * and real Noise links over in-memory duplex pairs (MemoryTransport), and a
 * consensus listing them, so a CircuitManager can run against it. Exits
 * connect to real TCP destinations on 127.0.0.1. A relay can be killed
 * (every link destroyed, new connections refused) and brought back with the
 * same keys. No side effects at import.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { createRelayCore, type RelayCore } from '../../relay/relay.js';
import { loadRelayKeys, type RelayKeys } from '../../relay/keys.js';
import type { Consensus, ConsensusRelay } from '../../src/netdoc/consensus.js';
import { parseExitPolicy, parseSummary } from '../../src/netdoc/exit-policy.js';
import { DEFAULT_NETWORK_PARAMS } from '../../src/netdoc/params.js';
import { crypto } from '../../src/crypto/crypto.js';
import { MemoryTransport } from './memory-transport.js';

export interface SimRelaySpec {
  nickname: string;
  flags: string[];
  /** Policy rules the relay enforces (exits); default: accept 127.0.0.1 only. */
  policy?: string[];
  /** Summary in the consensus; default `accept 1-65535` for exits. */
  summary?: string;
  bandwidth?: number;
}

export interface SimRelay {
  readonly spec: SimRelaySpec;
  readonly keys: RelayKeys;
  readonly entry: ConsensusRelay;
  readonly alive: boolean;
  /** Destroy every link and refuse new ones, as a SIGKILL would. */
  kill(): void;
  /** Come back with the same keys (and a new descriptor digest). */
  revive(): void;
}

export interface SimNetwork {
  readonly relays: SimRelay[];
  /** Dials any live relay of the network. */
  readonly transport: MemoryTransport;
  /** The consensus as it stands (a new object after a revive). */
  consensus(): Consensus;
  relay(nickname: string): SimRelay;
  cleanup(): void;
}

const TIMEOUT_MS = 5000;

export function simNetwork(specs: SimRelaySpec[]): SimNetwork {
  const dir = mkdtempSync(join(tmpdir(), 'allium-simnet-'));
  const relays: Array<SimRelay & { core: RelayCore; accept: (socket: Duplex) => void }> = [];
  const transport = new MemoryTransport((peer) => {
    const r = relays.find((x) => x.alive && x.entry.address === peer.address && x.entry.orPort === peer.port);
    return r?.accept;
  });
  let current: Consensus | null = null;
  const makeCore = (spec: SimRelaySpec, keys: RelayKeys): RelayCore =>
    createRelayCore({
      keys,
      exit: {
        policy: spec.flags.includes('Exit') ? parseExitPolicy(spec.policy ?? ['accept 127.0.0.1:*', 'reject *:*']) : null,
        localAddress: '127.0.0.1',
      },
      transport,
      dialTimeoutMs: TIMEOUT_MS,
    });
  specs.forEach((spec, i) => {
    const keys = loadRelayKeys(join(dir, spec.nickname));
    const entry: ConsensusRelay = {
      nickname: spec.nickname,
      identity: keys.identity.identity,
      address: `127.${i + 1}.0.1`,
      orPort: 9000 + i,
      linkKey: keys.linkKey.public,
      ntorOnionKey: keys.ntor.onionKey,
      descriptorDigest: crypto.randomBytes(32),
      flags: ['Running', 'Valid', ...spec.flags].sort(),
      bandwidth: spec.bandwidth ?? 1000,
      exitSummary: parseSummary(spec.summary ?? (spec.flags.includes('Exit') ? 'accept 1-65535' : 'reject 1-65535')),
    };
    let core = makeCore(spec, keys);
    let alive = true;
    const relay = {
      spec,
      keys,
      get entry() {
        return entry;
      },
      get alive() {
        return alive;
      },
      get core() {
        return core;
      },
      accept(socket: Duplex) {
        core.accept(socket).catch(() => socket.destroy());
      },
      kill() {
        alive = false;
        core.links.destroy();
      },
      revive() {
        core = makeCore(spec, keys);
        entry.descriptorDigest = crypto.randomBytes(32);
        alive = true;
        current = null;
      },
    };
    relays.push(relay);
  });
  return {
    relays,
    transport,
    consensus() {
      if (current === null) {
        const now = Date.now();
        current = {
          consensusMethod: 1,
          rawParams: new Map(),
          params: DEFAULT_NETWORK_PARAMS,
          validAfter: now - 1000,
          freshUntil: now + 3600_000,
          validUntil: now + 3 * 3600_000,
          authorities: [],
          relays: relays.map((r) => ({ ...r.entry })),
          rawBandwidthWeights: new Map(),
          signatures: [],
        };
      }
      return current;
    },
    relay(nickname) {
      const r = relays.find((x) => x.spec.nickname === nickname);
      if (r === undefined) throw new Error(`no relay ${nickname}`);
      return r;
    },
    cleanup() {
      for (const r of relays) r.core.links.destroy();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
