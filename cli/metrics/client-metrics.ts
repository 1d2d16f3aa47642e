/**
 * The client's own metrics: its memory cap over SOCKS and HTTP tunnel
 * streams (client/mem-cap.ts, docs/protocol.md §3.6), under the same names
 * as a relay's where the meaning is the same (docs/operators.md "Metrics").
 */
import { Gauge, type Registry } from 'prom-client';
import type { ClientMemoryCapStats } from '../../client/mem-cap.js';
import { totalCounters } from './total-counter.js';

/**
 * Register the client memory cap's metrics on `registry`, read from
 * `memory()` at each scrape (null: not started yet, nothing reported):
 * allium_queued_bytes{kind="queued"|"cap"} (bytes), allium_oom_events_total,
 * allium_oom_streams_freed_total and allium_oom_bytes_freed_total (bytes).
 */
export function clientMemoryMetrics(registry: Registry, memory: () => ClientMemoryCapStats | null): void {
  new Gauge({
    name: 'allium_queued_bytes',
    help: 'Bytes the client\'s streams and their application sockets held at the memory cap\'s last check (queued), and the cap (cap)',
    labelNames: ['kind'],
    registers: [registry],
    collect() {
      const s = memory();
      if (s === null) return;
      this.set({ kind: 'queued' }, s.queuedBytes);
      this.set({ kind: 'cap' }, s.capBytes);
    },
  });
  totalCounters(registry, memory, [
    ['allium_oom_events_total', 'Times the total went over the memory cap', (s) => s.oomEvents],
    ['allium_oom_streams_freed_total', 'Streams the client\'s memory cap ended (END RESOURCELIMIT, application socket reset)', (s) => s.streamsFreed],
    ['allium_oom_bytes_freed_total', 'Bytes the streams ended by the memory cap held', (s) => s.bytesFreed],
  ]);
}
