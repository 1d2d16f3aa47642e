/**
 * Metrics only a relay has: its bandwidth rate limit (Tor's
 * tor_relay_load_global_rate_limit_reached_total) and settings.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { AccountingState, BandwidthStats } from '../../relay/relay.js';

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
