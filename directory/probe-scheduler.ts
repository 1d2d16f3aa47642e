/**
 * When the authority's reachability tests run (docs/protocol.md §9.4): every
 * relay at start and then every `intervalMs`; the registry bounds their
 * concurrency and time. What one test is: relay-tester.ts.
 */
import type { Registry } from './registry.js';

/** Probe every relay in `registry` now and every `intervalMs`; `stop` ends the schedule. */
export function startProbeScheduler(registry: Registry, intervalMs: number): { stop(): void } {
  registry.probeAll();
  const timer = setInterval(() => registry.probeAll(), intervalMs);
  return { stop: () => clearInterval(timer) };
}
