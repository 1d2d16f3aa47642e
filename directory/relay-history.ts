/**
 * What an authority remembers about each relay across rounds (docs/protocol.md
 * §9.4): when it first saw the relay, the outcome of every reachability test
 * as uptime statistics in the spirit of Tor's rephist — weighted mean time
 * between failures (MTBF) and weighted fractional uptime (WFU), old
 * observations decaying with a half-life — and its recent bandwidth
 * measurements. Pure bookkeeping: times are passed in; `toJSON` /
 * `fromJSON` give the form stored on disk (§9.9).
 */

/** Uptime statistics of one relay at one moment. */
export interface UptimeStats {
  /** ms since this authority first accepted a descriptor for the relay. */
  timeKnownMs: number;
  /** ms the relay has been up without a failed test, 0 if it is down now. */
  currentUptimeMs: number;
  /** Weighted mean length of its up runs (the current one included), ms. */
  mtbfMs: number;
  /** Weighted fraction of the observed time it was up, 0..1. */
  wfu: number;
}

interface Entry {
  firstSeen: number;
  /** Time of the last test result. */
  lastAt: number | undefined;
  /** Start of the current up run; undefined while down. */
  upSince: number | undefined;
  /** Decayed sums, all decayed to `lastAt`. */
  runSum: number;
  runCount: number;
  upTime: number;
  totalTime: number;
  /** Bandwidth measurements, oldest first: [at, bytes per second]. */
  bandwidth: [number, number][];
}

export interface RelayHistoryOptions {
  /** Observations this old weigh half as much; default 7 days (about Tor's 0.95 per 12 hours). */
  halfLifeMs?: number;
  /** Bandwidth measurements kept per relay; default 5. */
  maxMeasurements?: number;
  /** Measurements older than this are dropped; default 2 days. */
  measurementMaxAgeMs?: number;
  /** Relays remembered at most (the oldest-tested are forgotten first); default 10 000. */
  maxRelays?: number;
}

const DAY = 24 * 3600_000;

export class RelayHistory {
  readonly #entries = new Map<string, Entry>();
  readonly #halfLife: number;
  readonly #maxMeasurements: number;
  readonly #measurementMaxAge: number;
  readonly #maxRelays: number;

  constructor(opts: RelayHistoryOptions = {}) {
    this.#halfLife = opts.halfLifeMs ?? 7 * DAY;
    this.#maxMeasurements = opts.maxMeasurements ?? 5;
    this.#measurementMaxAge = opts.measurementMaxAgeMs ?? 2 * DAY;
    this.#maxRelays = opts.maxRelays ?? 10_000;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Notes that a relay is known (its descriptor was accepted) at `at`; keeps an earlier first sighting. */
  seen(id: string, at: number): void {
    if (this.#entries.has(id)) return;
    this.#entries.set(id, { firstSeen: at, lastAt: undefined, upSince: undefined, runSum: 0, runCount: 0, upTime: 0, totalTime: 0, bandwidth: [] });
    this.#bound();
  }

  /** Forgets a relay. */
  forget(id: string): void {
    this.#entries.delete(id);
  }

  #decay(e: Entry, at: number): void {
    if (e.lastAt === undefined || at <= e.lastAt) return;
    const f = Math.pow(0.5, (at - e.lastAt) / this.#halfLife);
    e.runSum *= f;
    e.runCount *= f;
    e.upTime *= f;
    e.totalTime *= f;
  }

  /**
   * Records a reachability test at `at`: the time since the previous test
   * counts as up if this one succeeded, as down otherwise; a failure ends
   * the current up run.
   */
  record(id: string, ok: boolean, at: number): void {
    this.seen(id, at);
    const e = this.#entries.get(id)!;
    if (e.lastAt !== undefined && at < e.lastAt) return;
    const elapsed = e.lastAt === undefined ? 0 : at - e.lastAt;
    this.#decay(e, at);
    e.totalTime += elapsed;
    if (ok) {
      e.upTime += elapsed;
      e.upSince ??= at;
    } else if (e.upSince !== undefined) {
      e.runSum += at - e.upSince;
      e.runCount += 1;
      e.upSince = undefined;
    }
    e.lastAt = at;
  }

  /** Records a bandwidth measurement (bytes per second) taken at `at`. */
  recordBandwidth(id: string, bytesPerSecond: number, at: number): void {
    this.seen(id, at);
    const list = this.#entries.get(id)!.bandwidth;
    list.push([at, Math.max(0, Math.round(bytesPerSecond))]);
    while (list.length > this.#maxMeasurements) list.shift();
  }

  /**
   * The relay's measured bandwidth at `now`: the lower median of its
   * measurements no older than the maximum age, or undefined if none.
   */
  measured(id: string, now: number): number | undefined {
    const list = this.#entries.get(id)?.bandwidth.filter(([at]) => now - at <= this.#measurementMaxAge).map(([, bw]) => bw);
    if (list === undefined || list.length === 0) return undefined;
    list.sort((a, b) => a - b);
    return list[Math.floor((list.length - 1) / 2)];
  }

  /** When the relay was last measured, if ever. */
  lastMeasuredAt(id: string): number | undefined {
    const list = this.#entries.get(id)?.bandwidth;
    return list === undefined || list.length === 0 ? undefined : list[list.length - 1]![0];
  }

  /** The relay's uptime statistics at `now`, or undefined if it was never seen. */
  stats(id: string, now: number): UptimeStats | undefined {
    const e = this.#entries.get(id);
    if (e === undefined) return undefined;
    const f = e.lastAt === undefined || now <= e.lastAt ? 1 : Math.pow(0.5, (now - e.lastAt) / this.#halfLife);
    const current = e.upSince === undefined ? 0 : Math.max(0, now - e.upSince);
    const runs = e.runSum * f + current;
    const count = e.runCount * f + (e.upSince === undefined ? 0 : 1);
    const total = e.totalTime * f;
    return {
      timeKnownMs: Math.max(0, now - e.firstSeen),
      currentUptimeMs: current,
      mtbfMs: count > 0 ? runs / count : 0,
      wfu: total > 0 ? (e.upTime * f) / total : 0,
    };
  }

  /** Keeps at most `maxRelays`, forgetting the ones tested longest ago. */
  #bound(): void {
    if (this.#entries.size <= this.#maxRelays) return;
    const oldest = [...this.#entries].sort(([, a], [, b]) => (a.lastAt ?? a.firstSeen) - (b.lastAt ?? b.firstSeen));
    for (const [id] of oldest.slice(0, this.#entries.size - this.#maxRelays)) this.#entries.delete(id);
  }

  /** The stored form (§9.9): plain JSON. */
  toJSON(): { version: 1; relays: Record<string, Entry> } {
    return { version: 1, relays: Object.fromEntries(this.#entries) };
  }

  /** Restores a stored form; entries that do not have the expected shape are skipped. Returns how many were restored. */
  load(json: unknown): number {
    if (typeof json !== 'object' || json === null || (json as { version?: unknown }).version !== 1) return 0;
    const relays = (json as { relays?: unknown }).relays;
    if (typeof relays !== 'object' || relays === null) return 0;
    let n = 0;
    for (const [id, value] of Object.entries(relays as Record<string, unknown>)) {
      if (!/^[0-9a-f]{64}$/.test(id) || !isEntry(value)) continue;
      this.#entries.set(id, { ...value, bandwidth: value.bandwidth.slice(-this.#maxMeasurements) });
      n++;
    }
    this.#bound();
    return n;
  }
}

const finite = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x) && x >= 0;
const optionalFinite = (x: unknown): boolean => x === undefined || x === null || finite(x);

function isEntry(v: unknown): v is Entry {
  if (typeof v !== 'object' || v === null) return false;
  const e = v as Record<string, unknown>;
  if (!finite(e['firstSeen']) || !optionalFinite(e['lastAt']) || !optionalFinite(e['upSince'])) return false;
  for (const k of ['runSum', 'runCount', 'upTime', 'totalTime']) if (!finite(e[k])) return false;
  if ((e['upTime'] as number) > (e['totalTime'] as number) + 1e-6) return false;
  if (!Array.isArray(e['bandwidth'])) return false;
  if (e['lastAt'] === null) e['lastAt'] = undefined;
  if (e['upSince'] === null) e['upSince'] = undefined;
  return (e['bandwidth'] as unknown[]).every((m) => Array.isArray(m) && m.length === 2 && finite(m[0]) && finite(m[1]));
}
