/**
 * A role's metrics port, wired from its effective configuration: metrics
 * subscribe to the event channels before the role starts (so the first
 * consensus and links are counted), read the role's snapshots once it is up,
 * and the server serves them (and the dashboard) on `metrics.port` when set.
 * With no `metrics.port` (the default) none of it exists: prom-client, the
 * metrics and the dashboard are never loaded (about 1 MiB of V8 heap and
 * 3 MiB of RSS in every node) and nothing subscribes to the event channels.
 */
import { readFileSync } from 'node:fs';
import type { CircuitStats, LinkStats } from '../../src/events.js';
import { parseIp } from '../../src/net/address.js';
import { LOOPBACK_PREFIXES, prefixContains } from '../../src/net/prefix.js';
import type { EffectiveConfig } from '../config/effective.js';
import { ConfigError } from '../config/load.js';
import type { Appliers } from '../config/reload.js';
import type { Registry } from 'prom-client';
import type { NodeMetrics } from './metrics.js';
import type { MetricsServer, Routes } from './server.js';

/** The package version, for allium_info. */
export function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : '0.0.0';
  } catch {
    return '0.0.0';
  }
}

export interface Observed {
  /** The node's metrics, or null when `metrics.port` is not set. */
  readonly metrics: NodeMetrics | null;
  /** True when `metrics.port` is set (the server will listen). */
  readonly enabled: boolean;
  /** Give the metrics the running node's snapshots. */
  attach(sources: { linkStats?: () => LinkStats; circuitStats?: () => CircuitStats }): void;
  /** Start the metrics server if `metrics.port` is set; resolves with `HOST:PORT`, or undefined when off. */
  listen(extraRoutes?: Routes): Promise<string | undefined>;
  /** SIGHUP appliers for the metrics options. */
  readonly appliers: Appliers;
  close(): Promise<void>;
}

/**
 * Extra collectors a role adds to its registry (rate limits, accounting,
 * ...), called once when the metrics are made; async so that the role's
 * metric module, and prom-client with it, load only when metrics are on.
 */
export type ExtendMetrics = (registry: Registry) => void | Promise<void>;

/**
 * Check the metrics options and, when `metrics.port` is set, load and
 * subscribe the metrics (before the role starts, so its first consensus and
 * links are counted). Rejects with ConfigError when the listener is not on
 * loopback and no allow list is given.
 */
export async function observe(config: EffectiveConfig, extend?: ExtendMetrics): Promise<Observed> {
  const address = config.must<string>('metrics.address');
  const allowTexts = config.get<string[]>('metrics.allow');
  const port = config.get<number>('metrics.port');
  const ip = parseIp(address);
  const loopback = ip !== null && LOOPBACK_PREFIXES.some((p) => prefixContains(p, ip));
  if (port !== undefined && !loopback && (allowTexts === undefined || allowTexts.length === 0)) {
    throw new ConfigError([{ file: config.file ?? `allium ${config.role}`, key: 'metrics.allow', message: `required when metrics.address (${address}) is not a loopback address` }]);
  }
  if (port === undefined) {
    return { metrics: null, enabled: false, attach() {}, listen: async () => undefined, appliers: {}, async close() {} };
  }
  const [{ createNodeMetrics }, { allowList, startMetricsServer }] = await Promise.all([import('./metrics.js'), import('./server.js')]);
  let sources: { linkStats?: () => LinkStats; circuitStats?: () => CircuitStats } = {};
  const metrics = createNodeMetrics({
    role: config.role,
    version: packageVersion(),
    ...(config.role !== 'authority' ? { linkStats: () => sources.linkStats?.(), circuitStats: () => sources.circuitStats?.() } : {}),
  });
  try {
    await extend?.(metrics.registry);
  } catch (error) {
    metrics.close();
    throw error;
  }
  let server: MetricsServer | undefined;
  return {
    metrics,
    enabled: true,
    attach(s) {
      sources = s;
    },
    async listen(extraRoutes) {
      server = await startMetricsServer({
        address,
        port,
        allow: allowList(allowTexts),
        routes: async (path, query) => {
          if (path === '/metrics') return { contentType: metrics.registry.contentType, body: await metrics.text() };
          return extraRoutes?.(path, query);
        },
      });
      return server.address.includes(':') ? `[${server.address}]:${server.port}` : `${server.address}:${server.port}`;
    },
    appliers: {
      'metrics.allow': (value) => server?.setAllow(allowList(value as string[] | undefined)),
    },
    async close() {
      metrics.close();
      await server?.close();
    },
  };
}

/** A started role together with its metrics port; close() closes both. */
export interface Observable<H> {
  readonly node: H;
  /** `HOST:PORT` of the metrics port, or undefined when it is off. */
  readonly metrics: string | undefined;
  close(): Promise<void>;
}

/**
 * Start `observed`'s metrics server for a started `node` (closing the node if
 * the port cannot be bound), with the node's dashboard (cli/dashboard/) when
 * `dashboard` makes one (called only when metrics are on, so a role loads
 * its dashboard code only then).
 */
export async function withMetrics<H extends { close(): Promise<void> }>(
  observed: Observed,
  node: H,
  dashboard?: () => Promise<{ routes: Routes; close(): void }>,
): Promise<Observable<H>> {
  let metrics: string | undefined;
  let page: { routes: Routes; close(): void } | undefined;
  try {
    page = observed.enabled ? await dashboard?.() : undefined;
    metrics = await observed.listen(page?.routes);
  } catch (error) {
    page?.close();
    await node.close();
    await observed.close();
    throw error;
  }
  return {
    node,
    metrics,
    async close() {
      page?.close();
      await observed.close();
      await node.close();
    },
  };
}
