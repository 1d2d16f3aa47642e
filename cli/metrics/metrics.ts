/**
 * A node's Prometheus metrics (prom-client), fed by the diagnostics channels
 * and stats snapshots of src/events.ts. Tor's MetricsPort names where Tor has
 * the metric (`tor_relay_*`, relays only), `allium_*` otherwise; docs/operators.md
 * lists them.
 *
 * Privacy: every label value comes from a fixed set (directions, states,
 * reason names, error codes, stream kinds, the role); no label carries an
 * address, a destination, a relay identity or any key. Counters that mirror a
 * snapshot are set at scrape time, so the hot path pays nothing for them;
 * event subscriptions cost one call per link, circuit or stream, never per cell.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { CELL_LENGTH } from '../../src/constants.js';
import { destroyReasonName, endReasonName } from '../../src/cell/reasons.js';
import { subscribe, type CircuitStats, type LinkStats } from '../../src/events.js';

/** What the metrics read from the running node. */
export interface MetricsSource {
  role: 'relay' | 'authority' | 'client';
  version: string;
  /** Link snapshot (undefined until the node is up); absent for a role without links (the authority). */
  linkStats?: () => LinkStats | undefined;
  /** Circuit and stream snapshot (undefined until the node is up); absent for a role without circuits. */
  circuitStats?: () => CircuitStats | undefined;
}

export interface NodeMetrics {
  readonly registry: Registry;
  /** The Prometheus text exposition of every metric now. */
  text(): Promise<string>;
  /** Unsubscribe from the event channels. */
  close(): void;
}

/** Upper bounds, seconds: a loopback handshake takes ~5 ms, a WAN circuit build seconds. */
const HANDSHAKE_BUCKETS = [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const BUILD_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60];

const ZERO_LINKS: LinkStats = { open: 0, opened: 0, closed: 0, cellsIn: 0, cellsOut: 0, queuedBytes: 0 };
const ZERO_CIRCUITS: CircuitStats = { open: 0, built: 0, destroyed: 0, streams: 0, streamsOpened: 0, streamBytesIn: 0, streamBytesOut: 0, dirBytesIn: 0, dirBytesOut: 0 };

/** A label from an error code: the code itself if it looks like one of ours, else OTHER. */
function codeLabel(code: string | null): string {
  if (code === null) return 'none';
  return /^ERR_[A-Z_]{1,40}$/.test(code) ? code : 'OTHER';
}

/** A counter whose value is read from a snapshot at scrape time (nothing while `read` gives undefined). */
function mirrorCounter(registry: Registry, name: string, help: string, labelNames: string[], read: () => [Record<string, string>, number][] | undefined): void {
  new Counter({
    name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      const values = read();
      if (values === undefined) return;
      this.reset();
      for (const [labels, value] of values) this.inc(labels, value);
    },
  });
}

/**
 * Process CPU and memory, read at scrape time only. (prom-client's default
 * metrics also watch every garbage collection, which costs CPU while cells
 * flow; these names are the same as its defaults.)
 */
function processMetrics(registry: Registry): void {
  const startSeconds = Math.round(Date.now() / 1000 - process.uptime());
  new Counter({
    name: 'process_cpu_seconds_total',
    help: 'User and system CPU time spent, seconds',
    registers: [registry],
    collect() {
      const cpu = process.cpuUsage();
      this.reset();
      this.inc((cpu.user + cpu.system) / 1e6);
    },
  });
  new Counter({
    name: 'process_cpu_user_seconds_total',
    help: 'User CPU time spent, seconds',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(process.cpuUsage().user / 1e6);
    },
  });
  new Counter({
    name: 'process_cpu_system_seconds_total',
    help: 'System CPU time spent, seconds',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(process.cpuUsage().system / 1e6);
    },
  });
  new Gauge({ name: 'process_start_time_seconds', help: 'Start time of the process since the epoch, seconds', registers: [registry] }).set(startSeconds);
  new Gauge({ name: 'process_resident_memory_bytes', help: 'Resident memory size, bytes', registers: [registry], collect() { this.set(process.memoryUsage.rss()); } });
  new Gauge({
    name: 'nodejs_heap_size_used_bytes',
    help: 'V8 heap in use, bytes',
    registers: [registry],
    collect() {
      this.set(process.memoryUsage().heapUsed);
    },
  });
  new Gauge({ name: 'nodejs_external_memory_bytes', help: 'Memory of C++ objects bound to JavaScript objects (buffers), bytes', registers: [registry], collect() { this.set(process.memoryUsage().external); } });
}

/** Metrics for one node. Subscribes to the event channels until close(). */
export function createNodeMetrics(source: MetricsSource): NodeMetrics {
  const registry = new Registry();
  processMetrics(registry);
  const relay = source.role === 'relay';
  const unsubscribe: (() => void)[] = [];

  new Gauge({ name: 'allium_info', help: 'Constant 1, labelled with the role and version of this node', labelNames: ['role', 'version'], registers: [registry] })
    .set({ role: source.role, version: source.version }, 1);

  // Links.
  const linkStats = source.linkStats;
  if (linkStats !== undefined) {
    const links = () => linkStats() ?? ZERO_LINKS;
    const directions = new Map<number, 'initiated' | 'received'>();
    const open = { initiated: 0, received: 0 };
    new Gauge({
      name: 'allium_links',
      help: 'Links (channels) open now, by who dialled them',
      labelNames: ['direction'],
      registers: [registry],
      collect() {
        this.set({ direction: 'initiated' }, open.initiated);
        this.set({ direction: 'received' }, open.received);
      },
    });
    const opened = new Counter({ name: 'allium_links_opened_total', help: 'Links that finished their handshake', labelNames: ['direction'], registers: [registry] });
    const closed = new Counter({ name: 'allium_links_closed_total', help: 'Links closed, by the error code that closed them (none: a clean close)', labelNames: ['code'], registers: [registry] });
    const handshake = new Histogram({ name: 'allium_link_handshake_seconds', help: 'Link handshake duration', buckets: HANDSHAKE_BUCKETS, registers: [registry] });
    unsubscribe.push(
      subscribe('allium:link:open', (e) => {
        const direction = e.initiator ? 'initiated' : 'received';
        directions.set(e.linkId, direction);
        open[direction]++;
        opened.inc({ direction });
        handshake.observe(e.handshakeMs / 1000);
      }),
      subscribe('allium:link:close', (e) => {
        const direction = directions.get(e.linkId);
        if (direction !== undefined) {
          directions.delete(e.linkId);
          open[direction]--;
        }
        closed.inc({ code: codeLabel(e.code) });
      }),
    );
    mirrorCounter(registry, 'allium_cells_total', 'Cells received (in) and sent (out) over every link', ['direction'], () => {
      const s = links();
      return [[{ direction: 'in' }, s.cellsIn], [{ direction: 'out' }, s.cellsOut]];
    });
    new Gauge({ name: 'allium_link_queued_bytes', help: 'Bytes of cells queued on links, not yet written to their sockets', registers: [registry], collect() { this.set(links().queuedBytes); } });
    if (relay) {
      new Gauge({
        name: 'tor_relay_connections',
        help: 'OR connections open now (as Tor\'s MetricsPort; type OR only)',
        labelNames: ['type', 'direction', 'state'],
        registers: [registry],
        collect() {
          this.set({ type: 'OR', direction: 'initiated', state: 'opened' }, open.initiated);
          this.set({ type: 'OR', direction: 'received', state: 'opened' }, open.received);
        },
      });
      // Tor's name, typed gauge: promtool refuses a counter without _total. It only grows.
      new Gauge({
        name: 'tor_relay_traffic_bytes',
        help: 'Cell bytes read and written on OR links since start (514 per cell; link framing not counted); grows like a counter',
        labelNames: ['direction'],
        registers: [registry],
        collect() {
          const s = links();
          this.set({ direction: 'read' }, s.cellsIn * CELL_LENGTH);
          this.set({ direction: 'written' }, s.cellsOut * CELL_LENGTH);
        },
      });
    }
  }

  // Circuits and streams.
  const circuitStats = source.circuitStats;
  if (circuitStats !== undefined) {
    const circuits = () => circuitStats() ?? ZERO_CIRCUITS;
    new Gauge({ name: 'allium_circuits', help: 'Circuits open now', registers: [registry], collect() { this.set(circuits().open); } });
    mirrorCounter(registry, 'allium_circuits_built_total', 'Circuits built (origin) or created (relay)', [], () => [[{}, circuits().built]]);
    const destroyed = new Counter({
      name: 'allium_circuits_destroyed_total',
      help: 'Circuits ended, by DESTROY reason and by which side decided (local, remote)',
      labelNames: ['reason', 'side'],
      registers: [registry],
    });
    // Only an origin builds circuits: a relay has no such histogram (it would stay empty).
    const build = relay ? undefined : new Histogram({ name: 'allium_circuit_build_seconds', help: 'Time to build a circuit, first CREATE2 to last EXTENDED2 (clients)', buckets: BUILD_BUCKETS, registers: [registry] });
    new Gauge({ name: 'allium_streams', help: 'Streams open now', registers: [registry], collect() { this.set(circuits().streams); } });
    const streamsOpened = new Counter({ name: 'allium_streams_opened_total', help: 'Streams opened, by kind (client, exit, dir)', labelNames: ['kind'], registers: [registry] });
    const streamsClosed = new Counter({ name: 'allium_streams_closed_total', help: 'Streams closed, by kind and END reason', labelNames: ['kind', 'reason'], registers: [registry] });
    mirrorCounter(registry, 'allium_stream_bytes_total', 'Application bytes carried by streams (DATA bodies; directory streams apart), in and out', ['direction'], () => {
      const s = circuits();
      return [[{ direction: 'in' }, s.streamBytesIn], [{ direction: 'out' }, s.streamBytesOut]];
    });
    mirrorCounter(registry, 'allium_dir_stream_bytes_total', 'Bytes carried by directory streams (BEGIN_DIR), in and out', ['direction'], () => {
      const s = circuits();
      return [[{ direction: 'in' }, s.dirBytesIn], [{ direction: 'out' }, s.dirBytesOut]];
    });
    const relayStreams = relay
      ? new Counter({ name: 'tor_relay_streams_total', help: 'Stream requests accepted (as Tor\'s MetricsPort)', labelNames: ['type'], registers: [registry] })
      : undefined;
    unsubscribe.push(
      subscribe('allium:circuit:destroyed', (e) => destroyed.inc({ reason: destroyReasonName(e.reason), side: e.remote ? 'remote' : 'local' })),
      subscribe('allium:circuit:built', (e) => {
        if (e.buildMs !== undefined) build?.observe(e.buildMs / 1000);
      }),
      subscribe('allium:stream:open', (e) => {
        streamsOpened.inc({ kind: e.kind });
        relayStreams?.inc({ type: e.kind === 'dir' ? 'BEGIN_DIR' : 'BEGIN' });
      }),
      subscribe('allium:stream:close', (e) => streamsClosed.inc({ kind: e.kind, reason: endReasonName(e.reason) })),
    );
  }

  // The consensus this node uses (clients).
  if (source.role === 'client') {
    let validAfter: number | undefined;
    let relays = 0;
    unsubscribe.push(
      subscribe('allium:consensus', (e) => {
        validAfter = e.validAfter;
        relays = e.relays;
      }),
    );
    new Gauge({
      name: 'allium_consensus_age_seconds',
      help: 'Seconds since the valid-after time of the consensus in use',
      registers: [registry],
      collect() {
        if (validAfter !== undefined) this.set((Date.now() - validAfter) / 1000);
      },
    });
    new Gauge({ name: 'allium_consensus_relays', help: 'Relays in the consensus in use', registers: [registry], collect() { this.set(relays); } });
  }

  return {
    registry,
    text: () => registry.metrics(),
    close() {
      for (const off of unsubscribe) off();
    },
  };
}
