/**
 * The authority's reachability checks (docs/protocol.md §9.3): what one probe
 * is (a complete link handshake with the relay, as an anonymous client, through
 * the same dial every role uses) and when probes run (every relay at start and
 * then every `intervalMs`; the registry bounds their concurrency and time).
 */
import type { RelayDescriptor } from '../src/netdoc/descriptor.js';
import { probeLink } from '../src/link/link-manager.js';
import { TcpTransport, type Transport } from '../src/link/transport.js';
import type { Registry } from './registry.js';

/** A probe function for the registry: true if the relay completed a link handshake within `timeoutMs`. */
export function linkProbe(timeoutMs: number, transport: Transport = new TcpTransport()): (d: RelayDescriptor) => Promise<boolean> {
  return (d) => probeLink(transport, { address: d.address, port: d.orPort, identity: d.identity, linkKey: d.linkKey }, timeoutMs);
}

/** Probe every relay in `registry` now and every `intervalMs`; `stop` ends the schedule. */
export function startProbeScheduler(registry: Registry, intervalMs: number): { stop(): void } {
  registry.probeAll();
  const timer = setInterval(() => registry.probeAll(), intervalMs);
  return { stop: () => clearInterval(timer) };
}
