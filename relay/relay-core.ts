/**
 * The relay without its listener: a link manager whose links carry this
 * relay's circuits. Sockets accepted elsewhere (the OR listener, or an
 * in-memory pair in tests) are handed to `accept`; EXTEND2 reuses or dials
 * links through the manager and its transport; BEGIN and RESOLVE go to the
 * exit code, BEGIN_DIR to the directory handler (relay/dir/dir-server.ts).
 *
 * Defences against load (docs/protocol.md §3.6): the DoS guard (dos.ts)
 * limits links per remote address at accept, circuit creation per address
 * at CREATE2, and streams per circuit at BEGIN / RESOLVE; the memory cap
 * (mem-cap.ts) frees the circuits holding the oldest queued data when the
 * relay holds too much. Sockets without a remote address (in-memory pairs)
 * are not limited by address.
 */
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { EndReason } from '../src/cell/reasons.js';
import { AlliumError } from '../src/errors.js';
import type { Channel } from '../src/link/channel.js';
import { LinkManager } from '../src/link/link-manager.js';
import type { Transport } from '../src/link/transport.js';
import { relayCircuitCells } from './circuit-cells.js';
import { addressKey, DOS_DEFAULTS, DosGuard, type DosOptions } from './dos.js';
import { beginExitStream, resolveForClient, type ExitConfig } from './exit.js';
import type { RelayKeys } from './keys.js';
import { MemoryCap, type MemoryCapOptions } from './mem-cap.js';
import type { OnionKeySource } from './onion-keys.js';
import type { DirectoryHandler, RelayCircuit, RelayContext } from './relay-circuit.js';
import { CircuitStatsRecorder } from '../src/circuit/circuit-stats.js';
import type { CircuitStats } from '../src/events.js';
import type { NetworkParams } from '../src/netdoc/params.js';
import type { ExtendTarget } from '../src/cell/extend2.js';

export interface RelayCoreOptions {
  keys: RelayKeys;
  exit: ExitConfig;
  /** How this relay dials other relays. */
  transport: Transport;
  /** One link dial or accept (connect and handshake), ms; default dos.handshakeTimeoutMs (10 s). Also the handshake timeout of accepted links. */
  dialTimeoutMs?: number;
  /** Links at most; default the manager's (4096). */
  maxLinks?: number;
  /** Serves BEGIN_DIR streams; absent: BEGIN_DIR is refused with END NOTDIRECTORY. */
  directory?: DirectoryHandler | null;
  /** DoS limits (dos.ts DOS_DEFAULTS for what is not given). */
  dos?: DosOptions;
  /** The memory cap for queued cells and stream buffers (mem-cap.ts defaults for what is not given). */
  memoryCap?: MemoryCapOptions;
  /** The relay's own network parameters (congestion control, §7.2); default all at their defaults. */
  params?: NetworkParams;
  /** Reclaim half-closed streams idle this long (ms); default HALF_CLOSED_IDLE_TIMEOUT_MS (docs/protocol.md §6.4). */
  halfClosedIdleMs?: number;
  /** True while the relay hibernates: new circuits are refused (DESTROY HIBERNATING). */
  hibernating?: () => boolean;
  /** The onion keys CREATE2 may name (current and previous, relay/onion-keys.ts); default only `keys.ntor`. */
  onionKeys?: OnionKeySource;
  /** This relay has an IPv6 OR address, so it may dial the IPv6 address of an EXTEND2 (§6.3); default false. */
  ipv6?: boolean;
}

/**
 * The addresses an EXTEND2 lets this relay dial, in the order it tries them
 * (docs/protocol.md §6.3): IPv4 first, then IPv6 when the relay has an IPv6
 * OR address itself. Empty: none it can use.
 */
export function extendAddresses(target: ExtendTarget, ipv6: boolean): { address: string; port: number }[] {
  const out: { address: string; port: number }[] = [];
  if (target.address !== undefined && target.port !== undefined) out.push({ address: target.address, port: target.port });
  if (ipv6 && target.ipv6 !== undefined) out.push(target.ipv6);
  return out;
}

/**
 * The link for an EXTEND2: an open one to the identity if there is one (the
 * manager's `get`), else a dial to each address of extendAddresses in turn
 * until one succeeds. Rejects with the last dial's error, or ERR_CONFIG when
 * no address is usable.
 */
async function connectExtendTarget(links: LinkManager<RelayCircuit>, target: ExtendTarget, ipv6: boolean): Promise<Channel> {
  const addresses = extendAddresses(target, ipv6);
  if (addresses.length === 0) throw new AlliumError('ERR_CONFIG', 'EXTEND2 names only an IPv6 address and this relay has no IPv6 OR address');
  let last: unknown;
  for (const at of addresses) {
    try {
      return await links.get({ ...at, identity: target.identity, linkKey: target.linkKey });
    } catch (error) {
      if (error instanceof AlliumError && (error.code === 'ERR_RESOURCE_LIMIT' || error.code === 'ERR_CONFIG')) throw error;
      last = error;
    }
  }
  throw last;
}

export interface RelayCore {
  /** Every link of this relay and its circuit tables. */
  readonly links: LinkManager<RelayCircuit>;
  /** The relay's DoS defences and their refusal counters. */
  readonly dos: DosGuard;
  /** The relay's memory cap and its counters. */
  readonly memoryCap: MemoryCap;
  /** Run the responder's handshake on an incoming socket and carry the link's circuits. */
  accept(socket: Duplex): Promise<Channel>;
  /** A snapshot of the relay's circuit and stream counters. */
  stats(): CircuitStats;
  /** Stop the memory cap's timer and destroy every link. */
  destroy(): void;
}

export function createRelayCore(opts: RelayCoreOptions): RelayCore {
  const stats = new CircuitStatsRecorder();
  const dos = new DosGuard(opts.dos);
  const isExit = opts.exit.policy !== null;
  /** A BEGIN or RESOLVE at an exit past the per-circuit limits gets END RESOURCELIMIT on its stream. */
  const admitStream = (circuit: RelayCircuit, streamId: number): boolean => {
    if (!isExit || dos.admitBegin(circuit, circuit.edge.streamCount) === 'ok') return true;
    circuit.edge.refuse(streamId, EndReason.RESOURCELIMIT);
    return false;
  };
  const ctx: RelayContext = {
    identity: opts.keys.identity.identity,
    circuitsOf: (channel) => links.circuitsOf(channel),
    connectTo: (target) => connectExtendTarget(links, target, opts.ipv6 === true),
    begin: (circuit, streamId, body) => {
      if (admitStream(circuit, streamId)) beginExitStream(opts.exit, circuit, streamId, body);
    },
    resolve: (circuit, streamId, hostname) => {
      if (admitStream(circuit, streamId)) resolveForClient(opts.exit, circuit, streamId, hostname);
    },
    directory: opts.directory ?? null,
    stats,
    admitCreate: (link) => dos.admitCreate(link),
    ...(opts.params !== undefined ? { params: opts.params } : {}),
    ...(opts.halfClosedIdleMs !== undefined ? { halfClosedIdleMs: opts.halfClosedIdleMs } : {}),
    ...(opts.hibernating !== undefined ? { hibernating: opts.hibernating } : {}),
  };
  const links: LinkManager<RelayCircuit> = new LinkManager<RelayCircuit>({
    transport: opts.transport,
    handler: relayCircuitCells(ctx, opts.onionKeys ?? opts.keys.ntor),
    keys: { linkKey: opts.keys.linkKey, identity: opts.keys.identity },
    dialTimeoutMs: opts.dialTimeoutMs ?? opts.dos?.handshakeTimeoutMs ?? DOS_DEFAULTS.handshakeTimeoutMs,
    ...(opts.maxLinks !== undefined ? { maxLinks: opts.maxLinks } : {}),
  });
  const memoryCap = new MemoryCap(links, opts.memoryCap);

  function accept(socket: Duplex): Promise<Channel> {
    const address = addressKey((socket as Partial<Socket>).remoteAddress);
    if (address === '') return links.accept(socket);
    if (!dos.admitLink(address)) {
      socket.destroy();
      return Promise.reject(new AlliumError('ERR_RESOURCE_LIMIT', 'too many links from one address'));
    }
    let counted = true;
    const release = (): void => {
      if (!counted) return;
      counted = false;
      dos.linkClosed(address);
    };
    socket.once('close', release);
    if (socket.destroyed) release();
    return links.accept(socket, (link) => dos.tagLink(link, address));
  }

  return {
    links,
    dos,
    memoryCap,
    accept,
    stats: () => stats.snapshot(),
    destroy() {
      memoryCap.close();
      links.destroy();
    },
  };
}
