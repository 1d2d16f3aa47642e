/**
 * Relays and a client in one process, joined by real Noise links over
 * in-memory duplex pairs: the whole circuit machinery without the kernel.
 * Exits connect to real TCP destinations on 127.0.0.1. No side effects at import.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { Channel } from '../../src/link/channel.js';
import { ChannelCircuits } from '../../src/circuit/circuit-ids.js';
import { cellCircuitId } from '../../src/cell/channel-cell.js';
import { parseExitPolicy } from '../../src/netdoc/exit-policy.js';
import { equalBytes } from '../../src/bytes.js';
import { createRelayCore } from '../../relay/relay.js';
import { loadRelayKeys, type RelayKeys } from '../../relay/keys.js';
import { OriginCircuit, type HopInfo, type OriginCircuitOptions } from '../../client/origin-circuit.js';
import type { DirectoryHandler } from '../../relay/relay-circuit.js';
import type { CircuitStats } from '../../src/events.js';
import { duplexPair } from './duplex-pair.js';

export interface MemoryRelay {
  keys: RelayKeys;
  info: HopInfo;
  /** Links this relay accepted, in order. */
  inbound: Channel[];
  accept(socket: Duplex): void;
  /** The relay core's circuit counters. */
  stats(): CircuitStats;
}

export interface MemoryNetwork {
  relays: MemoryRelay[];
  /** Remove the key directory. */
  cleanup(): void;
}

const TIMEOUT_MS = 5000;

/** `count` relays; the last one is an exit allowing 127.0.0.1. `directory(i)` gives relay i's BEGIN_DIR handler (default none). */
export function memoryNetwork(count = 3, opts: { directory?: (index: number) => DirectoryHandler | null } = {}): MemoryNetwork {
  const dir = mkdtempSync(join(tmpdir(), 'allium-memnet-'));
  const relays: MemoryRelay[] = [];
  for (let i = 0; i < count; i++) {
    const keys = loadRelayKeys(join(dir, `relay${i}`));
    const core = createRelayCore({
      keys,
      directory: opts.directory?.(i) ?? null,
      exit: { policy: i === count - 1 ? parseExitPolicy(['accept 127.0.0.1:*', 'reject *:*']) : null, localAddress: '127.0.0.1' },
      connectTo: async (target) => {
        const peer = relays.find((r) => equalBytes(r.keys.identity.identity, target.identity));
        if (peer === undefined) throw new Error('unknown relay');
        const [near, far] = duplexPair();
        peer.accept(far);
        return Channel.connect(near, { peerLinkKey: target.linkKey, peerIdentity: target.identity, linkKey: keys.linkKey, identity: keys.identity, timeoutMs: TIMEOUT_MS });
      },
    });
    const relay: MemoryRelay = {
      keys,
      info: {
        nickname: `relay${i}`,
        identity: keys.identity.identity,
        linkKey: keys.linkKey.public,
        ntorOnionKey: keys.ntor.onionKey,
        address: `127.${i + 1}.0.1`,
        orPort: 9000 + i,
      },
      inbound: [],
      stats: () => core.stats(),
      accept(socket) {
        void Channel.accept(socket, { linkKey: keys.linkKey, identity: keys.identity, timeoutMs: TIMEOUT_MS }).then(
          (channel) => {
            relay.inbound.push(channel);
            core.adopt(channel);
          },
          () => socket.destroy(),
        );
      },
    };
    relays.push(relay);
  }
  return { relays, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** An anonymous client link to relays[0] and a circuit through all relays. */
export async function memoryCircuit(relays: MemoryRelay[], options: OriginCircuitOptions = {}): Promise<{ circuit: OriginCircuit; channel: Channel }> {
  const [near, far] = duplexPair();
  const guard = relays[0]!;
  guard.accept(far);
  const channel = await Channel.connect(near, { peerLinkKey: guard.info.linkKey, peerIdentity: guard.info.identity, timeoutMs: TIMEOUT_MS });
  const table = new ChannelCircuits<OriginCircuit>();
  channel.on('cell', (cell: Uint8Array) => table.get(cellCircuitId(cell))?.circuit.receive(cell));
  const circuit = await OriginCircuit.build(channel, table, relays.map((r) => r.info), 10_000, options);
  return { circuit, channel };
}
