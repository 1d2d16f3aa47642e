/**
 * Relays and a client in one process, joined by real Noise links over
 * in-memory duplex pairs (a MemoryTransport under each node's link manager):
 * the whole circuit machinery without the kernel.
 * Exits connect to real TCP destinations on 127.0.0.1. No side effects at import.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import type { Channel } from '../../src/link/channel.js';
import { LinkManager } from '../../src/link/link-manager.js';
import { parseExitPolicy } from '../../src/netdoc/exit-policy.js';
import { createRelayCore, type RelayCore } from '../../relay/relay.js';
import { loadRelayKeys, type RelayKeys } from '../../relay/keys.js';
import { OriginCircuit, type HopInfo, type OriginCircuitOptions } from '../../client/origin-circuit.js';
import type { DirectoryHandler } from '../../relay/relay-circuit.js';
import type { CircuitStats } from '../../src/events.js';
import type { NetworkParams } from '../../src/netdoc/params.js';
import { MemoryTransport } from './memory-transport.js';
import { ShapedTransport } from '../../src/link/shaped-transport.js';
import type { LinkShape } from '../../src/link/delay-line.js';
import { OnionKeyRing } from '../../relay/onion-keys.js';

export interface MemoryRelay {
  keys: RelayKeys;
  info: HopInfo;
  core: RelayCore;
  /** Links this relay accepted, in order. */
  inbound: Channel[];
  accept(socket: Duplex): void;
  /** The relay core's circuit counters. */
  stats(): CircuitStats;
  /** Its onion keys (current and previous), with `onionKeyRings`. */
  onionKeys?: OnionKeyRing;
}

export interface MemoryNetwork {
  relays: MemoryRelay[];
  /** Dials any relay of the network by its address and port. */
  transport: MemoryTransport;
  /** Remove the key directory. */
  cleanup(): void;
}

const TIMEOUT_MS = 5000;

/**
 * `count` relays; the last one is an exit allowing 127.0.0.1. `directory(i)`
 * gives relay i's BEGIN_DIR handler (default none), `params(i)` its own network
 * parameters (default all at their defaults: congestion control on);
 * `onionKeyRings`: each relay rotates onion keys through a ring (relay/onion-keys.ts).
 */
export function memoryNetwork(
  count = 3,
  opts: { directory?: (index: number) => DirectoryHandler | null; params?: (index: number) => NetworkParams; linkShape?: LinkShape; onionKeyRings?: boolean } = {},
): MemoryNetwork {
  const dir = mkdtempSync(join(tmpdir(), 'allium-memnet-'));
  const relays: MemoryRelay[] = [];
  const transport = new MemoryTransport((peer) => relays.find((r) => r.info.address === peer.address && r.info.orPort === peer.port)?.accept);
  for (let i = 0; i < count; i++) {
    const keys = loadRelayKeys(join(dir, `relay${i}`));
    const onionKeys = opts.onionKeyRings === true ? new OnionKeyRing(join(dir, `relay${i}`, 'keys'), keys.identity.identity) : undefined;
    const core = createRelayCore({
      keys,
      ...(onionKeys !== undefined ? { onionKeys } : {}),
      directory: opts.directory?.(i) ?? null,
      exit: { policy: i === count - 1 ? parseExitPolicy(['accept 127.0.0.1:*', 'reject *:*']) : null, localAddress: '127.0.0.1' },
      transport: opts.linkShape === undefined ? transport : new ShapedTransport(transport, opts.linkShape),
      dialTimeoutMs: TIMEOUT_MS,
      ...(opts.params !== undefined ? { params: opts.params(i) } : {}),
    });
    const relay: MemoryRelay = {
      keys,
      core,
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
      ...(onionKeys !== undefined ? { onionKeys } : {}),
      accept(socket) {
        core.accept(socket).then(
          (channel) => relay.inbound.push(channel),
          () => socket.destroy(),
        );
      },
    };
    relays.push(relay);
  }
  return { relays, transport, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * A fresh anonymous client (its own link manager) with a link to relays[0]
 * and a circuit through all relays; `linkShape` shapes its link to the guard.
 */
export async function memoryCircuit(
  relays: MemoryRelay[],
  options: OriginCircuitOptions = {},
  linkShape?: LinkShape,
): Promise<{ circuit: OriginCircuit; channel: Channel; links: LinkManager<OriginCircuit> }> {
  const memory = new MemoryTransport((peer) => relays.find((r) => r.info.address === peer.address && r.info.orPort === peer.port)?.accept);
  const links = new LinkManager<OriginCircuit>({
    transport: linkShape === undefined ? memory : new ShapedTransport(memory, linkShape),
    handler: { onCircuitCell: (slot, cell) => slot.circuit.receive(cell), onRelayCells: (slot, cells) => slot.circuit.receiveCells(cells), onLinkClosed: (slot) => slot.circuit.linkClosed() },
    dialTimeoutMs: TIMEOUT_MS,
  });
  const guard = relays[0]!.info;
  const channel = await links.get({ address: guard.address, port: guard.orPort, identity: guard.identity, linkKey: guard.linkKey });
  const circuit = await OriginCircuit.build(channel, links.circuitsOf(channel), relays.map((r) => r.info), 10_000, options);
  return { circuit, channel, links };
}
