/**
 * Entry guards (docs/protocol.md §11.1), in the spirit of Tor's guard-spec:
 *
 * - The **sample**: guards drawn by bandwidth (guard position weight) among
 *   the Running, Valid, Guard-flagged relays, in the order drawn, kept across
 *   restarts (the state file) with the date each was added. A guard is
 *   *listed* while the consensus lists it as such; an unlisted guard is not
 *   used, and is dropped after REMOVE_UNLISTED_MS. Guards expire after
 *   GUARD_LIFETIME_MS (unless confirmed less than CONFIRMED_MIN_LIFETIME_MS ago).
 * - **Confirmed** guards: those a circuit was built through, in the order
 *   that happened (persistent).
 * - **Primary** guards: the first PRIMARY_GUARDS listed guards, confirmed
 *   ones first (in confirmed order), then unconfirmed ones in sample order.
 *   Every circuit uses the first primary guard that is not known to be
 *   down (and fits the path); only when all primary guards are down does the
 *   client use another guard (confirmed first), and it says so in its log.
 * - **Retries**: a guard that failed is not tried again until its retry time,
 *   drawn with decorrelated jitter (Tor proposal 336): primary guards from
 *   30 s up to 6 h, others from 10 min up to 36 h. When every sampled guard
 *   is down they are all tried again; when a circuit succeeds after the
 *   client was off the network for INTERNET_DOWN_MS, the primary guards are
 *   tried again.
 *
 * Time and randomness are injected; `state()` is what the state file keeps.
 */
import { hex } from '../src/bytes.js';
import { nextDelay, type BackoffSchedule } from './backoff.js';
import { isUsable, selectionWeight, weightedChoice, type PathRelay, type RandomSource } from './path-selection.js';
import type { PositionWeights } from './position-weights.js';

const DAY_MS = 24 * 3600_000;
export const PRIMARY_GUARDS = 3;
export const MIN_FILTERED_SAMPLE = 20;
export const MAX_SAMPLE_SIZE = 60;
export const MAX_SAMPLE_FRACTION = 0.2;
export const GUARD_LIFETIME_MS = 120 * DAY_MS;
export const CONFIRMED_MIN_LIFETIME_MS = 60 * DAY_MS;
export const REMOVE_UNLISTED_MS = 20 * DAY_MS;
export const INTERNET_DOWN_MS = 10 * 60_000;
export const PRIMARY_RETRY: BackoffSchedule = { baseMs: 30_000, capMs: 6 * 3600_000 };
export const OTHER_RETRY: BackoffSchedule = { baseMs: 10 * 60_000, capMs: 36 * 3600_000 };

/** What the state file keeps of one sampled guard. */
export interface GuardRecord {
  /** Ed25519 identity, 64 lowercase hex digits. */
  identity: string;
  nickname: string;
  /** When it was sampled (ms since the epoch; randomized up to lifetime/10 into the past, as Tor does). */
  addedOn: number;
  /** When it was first used for a circuit (same randomization), or null. */
  confirmedOn: number | null;
  /** Since when the consensus has not listed it as a guard, or null while listed. */
  unlistedSince: number | null;
}

/** The persistent part of a guard set. */
export interface GuardState {
  /** In sample order. */
  guards: GuardRecord[];
  /** Identities of confirmed guards, in confirmation order (a subset of `guards`). */
  confirmed: string[];
}

export type Reachability = 'yes' | 'no' | 'maybe';

/** A guard as the client sees it now (for status output and tests). */
export interface GuardStatus extends GuardRecord {
  listed: boolean;
  primary: boolean;
  confirmed: boolean;
  reachable: Reachability;
  /** When a guard that is down will be tried again (ms since the epoch), or null. */
  retryAt: number | null;
  failures: number;
}

export interface GuardSetOptions {
  now?: () => number;
  random?: RandomSource;
  /** Where the log lines go (moving off the primary guards and back). */
  log?: (message: string) => void;
  /** Called whenever state() changed (to persist it). */
  onChange?: () => void;
  primaryGuards?: number;
  primaryRetry?: BackoffSchedule;
  otherRetry?: BackoffSchedule;
}

interface Runtime {
  reachable: Reachability;
  failures: number;
  delayMs: number;
  retryAt: number | null;
  lastTried: number | null;
}

export class GuardSet {
  readonly #now: () => number;
  readonly #random: RandomSource;
  readonly #log: (message: string) => void;
  readonly #onChange: () => void;
  readonly #primaryCount: number;
  readonly #primaryRetry: BackoffSchedule;
  readonly #otherRetry: BackoffSchedule;
  #guards: GuardRecord[];
  #confirmed: string[];
  readonly #runtime = new Map<string, Runtime>();
  /** The consensus entries of listed guards, by identity hex. */
  #listed = new Map<string, PathRelay>();
  #weights: PositionWeights | null = null;
  /** Whether the last guard handed out was a primary one (for the log line). */
  #onPrimary = true;
  #lastOnInternet: number | null = null;

  constructor(state: GuardState | null, opts: GuardSetOptions = {}) {
    this.#now = opts.now ?? Date.now;
    this.#random = opts.random ?? Math.random;
    this.#log = opts.log ?? (() => {});
    this.#onChange = opts.onChange ?? (() => {});
    this.#primaryCount = opts.primaryGuards ?? PRIMARY_GUARDS;
    this.#primaryRetry = opts.primaryRetry ?? PRIMARY_RETRY;
    this.#otherRetry = opts.otherRetry ?? OTHER_RETRY;
    this.#guards = state?.guards.map((g) => ({ ...g })) ?? [];
    const known = new Set(this.#guards.map((g) => g.identity));
    this.#confirmed = (state?.confirmed ?? []).filter((id, i, all) => known.has(id) && all.indexOf(id) === i);
  }

  /** The persistent state (copies). */
  state(): GuardState {
    return { guards: this.#guards.map((g) => ({ ...g })), confirmed: [...this.#confirmed] };
  }

  /**
   * A new consensus (guard-spec "on consensus"): update which sampled guards
   * are listed, drop expired ones, and sample more guards if too few usable
   * ones are left.
   */
  onConsensus(relays: readonly PathRelay[], weights: PositionWeights): void {
    const now = this.#now();
    this.#weights = weights;
    this.#listed = new Map();
    for (const r of relays) if (isGuard(r)) this.#listed.set(hex(r.identity), r);
    let changed = false;
    for (const g of this.#guards) {
      const relay = this.#listed.get(g.identity);
      if (relay !== undefined) {
        if (g.unlistedSince !== null || g.nickname !== relay.nickname) changed = true;
        g.unlistedSince = null;
        g.nickname = relay.nickname;
      } else if (g.unlistedSince === null) {
        g.unlistedSince = now;
        changed = true;
      }
    }
    const keep = this.#guards.filter((g) => {
      if (g.unlistedSince !== null && now - g.unlistedSince > REMOVE_UNLISTED_MS) return false;
      const expired = now - g.addedOn > GUARD_LIFETIME_MS;
      const confirmedLongAgo = g.confirmedOn === null || now - g.confirmedOn > CONFIRMED_MIN_LIFETIME_MS;
      return !(expired && confirmedLongAgo);
    });
    if (keep.length !== this.#guards.length) {
      const kept = new Set(keep.map((g) => g.identity));
      this.#confirmed = this.#confirmed.filter((id) => kept.has(id));
      this.#guards = keep;
      changed = true;
    }
    if (this.#expandSample()) changed = true;
    if (changed) this.#onChange();
  }

  /** The primary guards now (listed ones only), highest priority first. */
  primary(): GuardRecord[] {
    return this.#primaryIds().map((id) => this.#record(id)!);
  }

  /** Every sampled guard with what the client knows about it, in sample order. */
  status(): GuardStatus[] {
    this.#applyRetries();
    const primary = new Set(this.#primaryIds());
    const confirmed = new Set(this.#confirmed);
    return this.#guards.map((g) => {
      const rt = this.#runtime.get(g.identity);
      return {
        ...g,
        listed: this.#listed.has(g.identity),
        primary: primary.has(g.identity),
        confirmed: confirmed.has(g.identity),
        reachable: rt?.reachable ?? 'maybe',
        retryAt: rt?.reachable === 'no' ? rt.retryAt : null,
        failures: rt?.failures ?? 0,
      };
    });
  }

  /**
   * The guard for a new circuit (guard-spec "selecting"): the first primary
   * guard that is not down and for which `compatible` holds; else the first
   * such confirmed guard; else the first such sampled guard. When every
   * sampled guard is down, all are marked worth trying again. Returns null
   * when no listed guard fits `compatible`.
   */
  choose(compatible: (relay: PathRelay) => boolean = () => true): PathRelay | null {
    this.#applyRetries();
    if (this.#usableIds().length < MIN_FILTERED_SAMPLE && this.#expandSample()) this.#onChange();
    let pick = this.#pick(compatible);
    if (pick === null && this.#guards.some((g) => this.#listed.has(g.identity)) && this.#usableIds().length === 0) {
      // Every guard is down: the network is more likely down than all of them. Try them all again.
      this.#log('every sampled guard failed recently; trying them all again');
      for (const rt of this.#runtime.values()) if (rt.reachable === 'no') rt.reachable = 'maybe';
      pick = this.#pick(compatible);
    }
    if (pick === null) return null;
    const rt = this.#rt(pick.id);
    rt.lastTried = this.#now();
    if (!pick.primary && this.#onPrimary) {
      const names = this.#primaryIds().map((id) => this.#describe(id));
      this.#log(`all primary guards are unreachable or unusable (${names.join(', ') || 'none listed'}); using guard ${this.#describe(pick.id)}`);
      this.#onPrimary = false;
    } else if (pick.primary && !this.#onPrimary) {
      this.#log(`back on primary guard ${this.#describe(pick.id)}`);
      this.#onPrimary = true;
    }
    return this.#listed.get(pick.id)!;
  }

  /** A circuit (at least its first hop) was built through `relay`: it is reachable, and confirmed if it was not. */
  markSucceeded(relay: Pick<PathRelay, 'identity'>): void {
    const id = hex(relay.identity);
    const now = this.#now();
    const record = this.#record(id);
    if (record === undefined) return;
    const rt = this.#rt(id);
    const wasDown = this.#lastOnInternet !== null && now - this.#lastOnInternet > INTERNET_DOWN_MS;
    this.#lastOnInternet = now;
    rt.reachable = 'yes';
    rt.failures = 0;
    rt.delayMs = 0;
    rt.retryAt = null;
    if (!this.#confirmed.includes(id)) {
      this.#confirmed.push(id);
      record.confirmedOn = now - Math.floor(this.#random() * (GUARD_LIFETIME_MS / 10));
      this.#onChange();
    }
    if (wasDown) {
      // We were off the network for a while: the primary guards may be fine after all.
      for (const pid of this.#primaryIds()) if (this.#rt(pid).reachable === 'no') this.#rt(pid).reachable = 'maybe';
    }
  }

  /**
   * `relay` could not be reached as a guard (link refused or lost, CREATE2
   * failed): it is down until its retry time. Returns the retry delay, ms,
   * or null when `relay` is not a sampled guard.
   */
  markFailed(relay: Pick<PathRelay, 'identity'>, why: string): number | null {
    const id = hex(relay.identity);
    if (this.#record(id) === undefined) return null;
    const rt = this.#rt(id);
    const primary = this.#primaryIds().includes(id);
    rt.failures++;
    rt.delayMs = nextDelay(primary ? this.#primaryRetry : this.#otherRetry, rt.delayMs, this.#random);
    rt.retryAt = this.#now() + rt.delayMs;
    rt.reachable = 'no';
    this.#log(`guard ${this.#describe(id)} failed (${why}); retrying it in ${formatDelay(rt.delayMs)}`);
    return rt.delayMs;
  }

  // ---- internals ----

  #rt(id: string): Runtime {
    let rt = this.#runtime.get(id);
    if (rt === undefined) {
      rt = { reachable: 'maybe', failures: 0, delayMs: 0, retryAt: null, lastTried: null };
      this.#runtime.set(id, rt);
    }
    return rt;
  }

  #record(id: string): GuardRecord | undefined {
    return this.#guards.find((g) => g.identity === id);
  }

  #describe(id: string): string {
    const g = this.#record(id);
    return `${g?.nickname ?? '?'} (${id.slice(0, 8)})`;
  }

  /** Guards down whose retry time has come are worth trying again. */
  #applyRetries(): void {
    const now = this.#now();
    for (const rt of this.#runtime.values()) {
      if (rt.reachable === 'no' && rt.retryAt !== null && rt.retryAt <= now) rt.reachable = 'maybe';
    }
  }

  #isDown(id: string): boolean {
    return this.#runtime.get(id)?.reachable === 'no';
  }

  /** Listed sampled guards, in sample order. */
  #listedIds(): string[] {
    return this.#guards.filter((g) => this.#listed.has(g.identity)).map((g) => g.identity);
  }

  /** Listed sampled guards not known to be down. */
  #usableIds(): string[] {
    return this.#listedIds().filter((id) => !this.#isDown(id));
  }

  #primaryIds(): string[] {
    const listed = this.#listedIds();
    const listedSet = new Set(listed);
    const confirmed = this.#confirmed.filter((id) => listedSet.has(id));
    const confirmedSet = new Set(confirmed);
    return [...confirmed, ...listed.filter((id) => !confirmedSet.has(id))].slice(0, this.#primaryCount);
  }

  #pick(compatible: (relay: PathRelay) => boolean): { id: string; primary: boolean } | null {
    const fits = (id: string) => !this.#isDown(id) && compatible(this.#listed.get(id)!);
    const primary = this.#primaryIds();
    const p = primary.find(fits);
    if (p !== undefined) return { id: p, primary: true };
    const primarySet = new Set(primary);
    const listed = new Set(this.#listedIds());
    const c = this.#confirmed.find((id) => listed.has(id) && !primarySet.has(id) && fits(id));
    if (c !== undefined) return { id: c, primary: false };
    const s = this.#listedIds().find((id) => !primarySet.has(id) && fits(id));
    if (s !== undefined) return { id: s, primary: false };
    return null;
  }

  /** Add guards to the sample while too few usable ones are listed and the sample may grow. Returns whether it grew. */
  #expandSample(): boolean {
    if (this.#weights === null) return false;
    const weights = this.#weights;
    const listedGuards = [...this.#listed.values()];
    const maxSize = Math.max(MIN_FILTERED_SAMPLE, Math.min(MAX_SAMPLE_SIZE, Math.floor(MAX_SAMPLE_FRACTION * listedGuards.length)));
    const sampled = new Set(this.#guards.map((g) => g.identity));
    let grew = false;
    while (this.#usableIds().length < MIN_FILTERED_SAMPLE && this.#guards.length < maxSize) {
      const candidates = listedGuards.filter((r) => !sampled.has(hex(r.identity)));
      const pick = weightedChoice(candidates, (r) => selectionWeight(r, 'guard', weights), this.#random);
      if (pick === undefined) break;
      const id = hex(pick.identity);
      sampled.add(id);
      const now = this.#now();
      this.#guards.push({
        identity: id,
        nickname: pick.nickname,
        addedOn: now - Math.floor(this.#random() * (GUARD_LIFETIME_MS / 10)),
        confirmedOn: null,
        unlistedSince: null,
      });
      grew = true;
    }
    return grew;
  }
}

/** A relay the guard set may sample: Running, Valid and Guard. */
function isGuard(relay: PathRelay): boolean {
  return isUsable(relay) && relay.flags.includes('Guard');
}

function formatDelay(ms: number): string {
  if (ms < 120_000) return `${Math.round(ms / 1000)} s`;
  if (ms < 2 * 3600_000) return `${Math.round(ms / 60_000)} min`;
  return `${(ms / 3600_000).toFixed(1)} h`;
}
