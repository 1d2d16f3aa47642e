/**
 * Metrics only a relay has: its bandwidth rate limit (Tor's
 * tor_relay_load_global_rate_limit_reached_total) and settings, accounting,
 * DoS refusals and the memory cap.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { AccountingState, BandwidthStats } from '../../relay/relay.js';
import type { DosStats } from '../../relay/dos.js';
import type { MemoryCapStats } from '../../relay/mem-cap.js';
import { totalCounters } from './total-counter.js';

/** Register the rate-limit metrics; `stats` is read at scrape time (null: no limit, nothing reported). */
export function relayRateMetrics(registry: Registry, stats: () => BandwidthStats | null): void {
  new Counter({
    name: 'tor_relay_load_global_rate_limit_reached_total',
    help: 'Times the bandwidth rate limit was reached (reads waited for tokens), as Tor\'s MetricsPort; side is read (the limit applies to link reads)',
    labelNames: ['side'],
    registers: [registry],
    collect() {
      const s = stats();
      if (s === null) return;
      this.reset();
      this.inc({ side: 'read' }, s.limited);
    },
  });
  new Gauge({
    name: 'allium_bandwidth_rate_bytes',
    help: 'The bandwidth rate limit (bytes per second) and burst (bytes) in force',
    labelNames: ['kind'],
    registers: [registry],
    collect() {
      const s = stats();
      if (s === null) return;
      this.set({ kind: 'rate' }, s.rate);
      this.set({ kind: 'burst' }, s.burst);
    },
  });
}

/** Register the accounting metrics; `state` is read at scrape time (null: no accounting, nothing reported). */
export function relayAccountingMetrics(registry: Registry, state: () => AccountingState | null): void {
  new Gauge({
    name: 'allium_accounting_bytes',
    help: 'Accounting: bytes counted this period (used) and the budget (max)',
    labelNames: ['kind'],
    registers: [registry],
    collect() {
      const s = state();
      if (s === null) return;
      this.set({ kind: 'used' }, s.usedBytes);
      this.set({ kind: 'max' }, s.maxBytes);
    },
  });
  new Gauge({
    name: 'allium_hibernating',
    help: '1 while the relay hibernates (accounting budget spent), else 0',
    registers: [registry],
    collect() {
      const s = state();
      if (s !== null) this.set(s.hibernating ? 1 : 0);
    },
  });
}

/**
 * Register the DoS and memory-cap metrics (relay/dos.ts, relay/mem-cap.ts);
 * read at scrape time (with workers: the sums they last reported). Refusals
 * use Tor's tor_relay_dos_total with its type names where Tor has one.
 */
export function relayDosMetrics(registry: Registry, dos: () => DosStats | null, memory: () => MemoryCapStats | null): void {
  new Counter({
    name: 'tor_relay_dos_total',
    help: 'Requests refused by the DoS limits, by type: concurrent_conn_rejected (links per address), circuit_rejected (CREATE2 rate per address), begin_rejected (BEGIN/RESOLVE rate per circuit), stream_rejected (open streams per circuit)',
    labelNames: ['type'],
    registers: [registry],
    collect() {
      const s = dos();
      if (s === null) return;
      this.reset();
      this.inc({ type: 'concurrent_conn_rejected' }, s.linksRefused);
      this.inc({ type: 'circuit_rejected' }, s.circuitsRefused);
      this.inc({ type: 'begin_rejected' }, s.beginsRefused);
      this.inc({ type: 'stream_rejected' }, s.streamsRefused);
    },
  });
  new Gauge({
    name: 'allium_dos_addresses_with_links',
    help: 'Remote addresses that hold at least one open link',
    registers: [registry],
    collect() {
      const s = dos();
      if (s !== null) this.set(s.addressesWithLinks);
    },
  });
  new Gauge({
    name: 'allium_queued_bytes',
    help: 'What the memory cap counted at its last check (queued: queued cells, stream and socket buffers with the allocator\'s share, and the state estimate per open link, circuit and stream), garbage not yet collected counted with them (garbage), and the cap (cap)',
    labelNames: ['kind'],
    registers: [registry],
    collect() {
      const s = memory();
      if (s === null) return;
      this.set({ kind: 'queued' }, s.queuedBytes);
      this.set({ kind: 'garbage' }, s.garbageBytes);
      this.set({ kind: 'cap' }, s.capBytes);
    },
  });
  totalCounters(registry, memory, [
    ['tor_relay_load_oom_bytes_total', 'Bytes freed by the memory cap (queued cells and stream buffers of the circuits it destroyed), as Tor\'s MetricsPort', (s) => s.bytesFreed],
    ['allium_oom_circuits_freed_total', 'Circuits the memory cap destroyed (RESOURCELIMIT)', (s) => s.circuitsFreed],
    ['allium_oom_events_total', 'Times the total went over the memory cap', (s) => s.oomEvents],
    ['allium_oom_links_closed_total', 'Links the memory cap closed (ERR_RESOURCE_LIMIT): their sockets pushed back while over the cap', (s) => s.linksClosed],
  ]);
}
