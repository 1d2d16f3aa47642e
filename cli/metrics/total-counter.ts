/**
 * Prometheus counters whose values are running totals kept elsewhere (a
 * stats snapshot), read at each scrape: the shape of every memory-cap
 * counter of the relay and the client (cli/metrics/relay-metrics.ts,
 * cli/metrics/client-metrics.ts).
 */
import { Counter, type Registry } from 'prom-client';

/** One counter: its name, help text, and the total it reports from a snapshot. */
export type TotalCounter<S> = readonly [name: string, help: string, value: (stats: S) => number];

/**
 * Register each of `counters` on `registry`, set at each scrape to its
 * value in `stats()`; a null snapshot (nothing to report yet) leaves them
 * out of that scrape.
 */
export function totalCounters<S>(registry: Registry, stats: () => S | null, counters: ReadonlyArray<TotalCounter<S>>): void {
  for (const [name, help, value] of counters) {
    new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        const s = stats();
        if (s === null) return;
        this.reset();
        this.inc(value(s));
      },
    });
  }
}
