/**
 * The relay without its listener: a link manager whose links carry this
 * relay's circuits. Sockets accepted elsewhere (the OR listener, or an
 * in-memory pair in tests) are handed to `accept`; EXTEND2 reuses or dials
 * links through the manager and its transport; BEGIN goes to the exit code.
 */
import type { Duplex } from 'node:stream';
import type { Channel } from '../src/link/channel.js';
import { LinkManager } from '../src/link/link-manager.js';
import type { Transport } from '../src/link/transport.js';
import { relayCircuitCells } from './circuit-cells.js';
import { beginExitStream, type ExitConfig } from './exit.js';
import type { RelayKeys } from './keys.js';
import type { RelayCircuit, RelayContext } from './relay-circuit.js';

export interface RelayCoreOptions {
  keys: RelayKeys;
  exit: ExitConfig;
  /** How this relay dials other relays. */
  transport: Transport;
  /** One link dial or accept, ms; default the manager's (10 s). */
  dialTimeoutMs?: number;
  /** Links at most; default the manager's (4096). */
  maxLinks?: number;
}

export interface RelayCore {
  /** Every link of this relay and its circuit tables. */
  readonly links: LinkManager<RelayCircuit>;
  /** Run the responder's handshake on an incoming socket and carry the link's circuits. */
  accept(socket: Duplex): Promise<Channel>;
}

export function createRelayCore(opts: RelayCoreOptions): RelayCore {
  const ctx: RelayContext = {
    identity: opts.keys.identity.identity,
    circuitsOf: (channel) => links.circuitsOf(channel),
    connectTo: (target) => links.get(target),
    begin: (circuit, streamId, body) => beginExitStream(opts.exit, circuit, streamId, body),
  };
  const links: LinkManager<RelayCircuit> = new LinkManager<RelayCircuit>({
    transport: opts.transport,
    handler: relayCircuitCells(ctx, opts.keys.ntor),
    keys: { linkKey: opts.keys.linkKey, identity: opts.keys.identity },
    ...(opts.dialTimeoutMs !== undefined ? { dialTimeoutMs: opts.dialTimeoutMs } : {}),
    ...(opts.maxLinks !== undefined ? { maxLinks: opts.maxLinks } : {}),
  });
  return { links, accept: (socket) => links.accept(socket) };
}
