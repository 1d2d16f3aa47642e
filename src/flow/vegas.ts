/**
 * Tor Vegas (docs/protocol.md §7.3; Tor proposal 324 §3.3, as Tor 0.4.8 runs
 * it): a congestion window per circuit hop, grown in slow start and then kept
 * near the bandwidth-delay product by estimating the cells queued on the path
 * as cwnd − cwnd·RTTmin/RTTewma. `VegasController` is the arithmetic, fed one
 * SENDME at a time (with `cc_cut_per_rtt`, an Allium addition, at most one cut
 * to the BDP per round trip); `VegasCircuit` puts it behind CircuitFlowControl with the
 * authenticated SENDMEs of §7.1, every `sendmeInc` cells instead of 100.
 */
import { debuglog } from 'node:util';
import type { Sendme } from '../cell/relay-msg.js';
import { equalBytes } from '../bytes.js';
import { ProtocolError } from '../errors.js';
import type { CongestionParams } from './cc-params.js';
import type { CircuitFlowControl, CircuitFlowSnapshot } from './flow-control.js';
import { Pacer } from './pacer.js';
import { ClockHealth, PROCESS_CLOCK, RttEstimator, cwndUpdateRate, sendmesPerCwnd } from './rtt.js';

const log = debuglog('allium:cc');
/**
 * NODE_DEBUG=allium:cc-trace: one line per circuit SENDME at the sending
 * end, for plotting a hop's window over time: wall-clock ms, the circuit's
 * number in this process, cwnd, inflight, BDP estimate and queue estimate
 * (cells), min/EWMA/sample RTT (ms).
 */
const trace = debuglog('allium:cc-trace');
let traceCircuits = 0;

/** A monotonic clock in microseconds. */
export type MicroClock = () => number;

/** performance.now() in whole microseconds. */
export const performanceMicros: MicroClock = () => Math.floor(performance.now() * 1000);

/** turnMicros' reading, or -1 when the next call must read the clock. */
let turnNowUs = -1;
const endTurn = (): void => {
  turnNowUs = -1;
};

/**
 * performanceMicros read at most once per synchronous run of JavaScript (one
 * event-loop callback): the value is kept until the next microtask
 * checkpoint. The pacer's clock (§7.5): the cells a run sends (an exit
 * packaging one socket read) leave in one write at the end of the turn
 * anyway, so to the pacer they are one instant; its virtual clock still
 * moves one interval per cell. Reading the clock twice per DATA cell
 * (canSend, onSent) was 2.5 % of an exit's CPU in a 100 MB download.
 */
export const turnMicros: MicroClock = () => {
  if (turnNowUs < 0) {
    turnNowUs = performanceMicros();
    queueMicrotask(endTurn);
  }
  return turnNowUs;
};

/**
 * The Vegas state of one hop's sending side. Call `onSent()` per DATA cell
 * and `onSendme(rttUs, blocked)` per circuit SENDME; read `cwnd`, `inflight`.
 */
export class VegasController {
  readonly params: CongestionParams;
  readonly rtt: RttEstimator;
  /** Congestion window, cells. */
  cwnd: number;
  /** DATA cells sent and not yet acknowledged. */
  inflight = 0;
  inSlowStart = true;
  /** The window was recently (nearly) full: only then may it grow. */
  cwndFull = false;
  /** The link toward the peer was congested at the last SENDME (a congestion signal). */
  blockedChan = false;
  /** BDP estimate, cells: cwnd · RTTmin / RTTewma. */
  bdp = 0;
  /** SENDMEs until the next steady-state update (0: update at the next one). */
  nextCcEvent: number;
  /** SENDMEs until one window's worth has been acknowledged. */
  nextCwndEvent = 0;
  /** DATA cells sent so far (onSent), and acknowledged so far (sendmeInc per SENDME). */
  #sentCells = 0;
  #ackedCells = 0;
  /**
   * With cc_cut_per_rtt: the cells sent when the window was last cut to the
   * BDP. A SENDME acknowledging no further than this answers a cell sent
   * before that cut: it reports the same round trip, so it cuts no more (§7.3).
   */
  #cutAtCells = 0;

  constructor(params: CongestionParams, clock: ClockHealth = PROCESS_CLOCK) {
    this.params = params;
    this.rtt = new RttEstimator(params, clock);
    this.cwnd = params.cwndInit;
    this.nextCcEvent = cwndUpdateRate(params, this.cwnd, true);
  }

  /** True while cwnd − inflight > 0. */
  get canSend(): boolean {
    return this.inflight < this.cwnd;
  }

  /** One DATA cell went out. Returns true when it is the cell the peer's next SENDME will answer. */
  onSent(): boolean {
    this.inflight++;
    this.#sentCells++;
    return this.inflight % this.params.sendmeInc === 0;
  }

  /**
   * A SENDME arrived `rttUs` µs after the cell that asked for it was sent;
   * `blocked`: the link toward the peer is congested now. Updates the RTT,
   * the BDP estimate and the window, and acknowledges sendmeInc cells.
   */
  onSendme(rttUs: number, blocked: boolean): void {
    const p = this.params;
    if (this.nextCcEvent > 0) this.nextCcEvent--;
    if (this.nextCwndEvent > 0) this.nextCwndEvent--;
    // The cells this SENDME acknowledges end with the one whose round trip it timed.
    const ackedThrough = this.#ackedCells + p.sendmeInc;
    this.#ackedCells = ackedThrough;
    if (!this.#updateEstimates(rttUs, blocked)) {
      this.inflight -= p.sendmeInc;
      return;
    }
    // Within the round trip of the last cut (cc_cut_per_rtt): no second cut on the same evidence.
    const cutThisRtt = p.cutPerRtt && ackedThrough <= this.#cutAtCells;
    const queueUse = this.bdp > this.cwnd ? 0 : this.cwnd - this.bdp;
    if (this.inflight + p.cwndFullGap * p.sendmeInc >= this.cwnd) this.cwndFull = true;
    else if (100 * this.inflight < p.cwndFullMinPct * this.cwnd) this.cwndFull = false;

    if (this.inSlowStart) {
      if (queueUse < p.gamma && !this.blockedChan) {
        if (this.cwndFull) {
          const inc = this.#slowStartIncrement();
          this.cwnd += inc;
          // Slow start growing no faster than steady state would: leave it.
          if (inc * sendmesPerCwnd(p, this.cwnd) <= p.cwndInc * p.cwndIncRate) this.#exitSlowStart();
        }
      } else {
        this.cwnd = this.bdp + p.gamma;
        this.#cutAtCells = this.#sentCells;
        this.#exitSlowStart();
      }
      if (this.cwnd >= p.ssMax) {
        this.cwnd = p.ssMax;
        this.#exitSlowStart();
      }
    } else if (this.nextCcEvent === 0) {
      if (queueUse > p.delta && !cutThisRtt) {
        this.cwnd = this.bdp + p.delta - p.cwndInc;
        this.#cutAtCells = this.#sentCells;
      } else if (queueUse > p.beta || this.blockedChan) this.cwnd -= p.cwndInc;
      else if (this.cwndFull && queueUse < p.alpha) this.cwnd += p.cwndInc;
      this.cwnd = Math.max(this.cwnd, p.cwndMin);
    }

    if (this.nextCwndEvent === 0) this.nextCwndEvent = sendmesPerCwnd(p, this.cwnd);
    if (this.nextCcEvent === 0) this.nextCcEvent = cwndUpdateRate(p, this.cwnd, this.inSlowStart);
    const fullReset = p.cwndFullPerCwnd
      ? this.nextCwndEvent === sendmesPerCwnd(p, this.cwnd)
      : this.nextCcEvent === cwndUpdateRate(p, this.cwnd, this.inSlowStart);
    if (fullReset) this.cwndFull = false;
    this.inflight -= p.sendmeInc;
    this.cwnd = Math.min(this.cwnd, p.cwndMax);
  }

  /**
   * Leave slow start. The update counter, 1 in slow start, has just run out,
   * so the end of this SENDME schedules the first steady-state update one
   * steady-state period away (as Tor does).
   */
  #exitSlowStart(): void {
    this.inSlowStart = false;
  }

  /** RFC 3742 limited slow start: sendmeInc·pct below the cap; above it, inc·cap/(2·cwnd), at least 1. */
  #slowStartIncrement(): number {
    const p = this.params;
    if (this.cwnd <= p.ssCap) return Math.floor((p.cwndIncPctSs * p.sendmeInc + 50) / 100);
    return Math.max(Math.floor((p.sendmeInc * p.ssCap + this.cwnd) / (2 * this.cwnd)), 1);
  }

  /**
   * RTT, then BDP. A newly blocked or unblocked link forces an update at
   * this SENDME. Returns false when there is nothing to act on (the sample
   * was discarded and the link is not blocked).
   */
  #updateEstimates(rttUs: number, blocked: boolean): boolean {
    const sample = this.rtt.update(rttUs, this.cwnd, this.inSlowStart);
    if (this.rtt.ewmaUs === 0) {
      // No usable sample ever: the window is the best estimate.
      this.bdp = this.cwnd;
      this.blockedChan = blocked;
      return blocked;
    }
    this.bdp = Math.floor((this.cwnd * this.rtt.minUs) / this.rtt.ewmaUs);
    if (blocked !== this.blockedChan) {
      this.blockedChan = blocked;
      this.nextCcEvent = 0;
    }
    return blocked || sample !== 0;
  }
}

/**
 * Vegas behind CircuitFlowControl (§7.3): may send while inflight < cwnd;
 * remembers the running digest and send time of every sendmeInc-th cell;
 * each circuit SENDME must echo the oldest such digest, and its delay is an
 * RTT sample. As a receiver it answers every sendmeInc DATA cells with a
 * version-1 SENDME at once (no deliver window: the sender's window bounds
 * what is in flight, and each stream's XOFF bounds what waits, §7.4).
 * With `cc_pace_pct` > 0 the cells a window allows are also paced (§7.5,
 * ./pacer.ts): canSend() is false until the pacer lets the next one go, and
 * pacingDelayMs() says when.
 */
export class VegasCircuit implements CircuitFlowControl {
  readonly vegas: VegasController;
  /** RTT samples (the sendme_inc-th cell's send time, each SENDME's arrival). */
  readonly #clock: MicroClock;
  /** The pacer's: turnMicros with the process clock, else the clock given (tests move it between calls). */
  readonly #pacingClock: MicroClock;
  readonly #owed: Array<{ digest: Uint8Array; sentAtUs: number }> = [];
  /** Null when cc_pace_pct is 0 (unpaced, as Tor). */
  readonly #pacer: Pacer | null;
  #delivered = 0;
  #sendmes = 0;
  #lastRttUs: number | null = null;
  readonly #traceId = ++traceCircuits;

  constructor(params: CongestionParams, clock: MicroClock = performanceMicros, health: ClockHealth = PROCESS_CLOCK) {
    this.vegas = new VegasController(params, health);
    this.#clock = clock;
    this.#pacingClock = clock === performanceMicros ? turnMicros : clock;
    this.#pacer = params.pacePct > 0 ? new Pacer(params.pacePct) : null;
  }

  canSend(): boolean {
    const v = this.vegas;
    if (!v.canSend) return false;
    return this.#pacer === null || v.rtt.minUs === 0 || this.#pacer.waitUs(this.#pacingClock(), v.cwnd, v.rtt.minUs) === 0;
  }

  sendableCells(): number {
    return this.canSend() ? Math.max(1, this.vegas.cwnd - this.vegas.inflight) : 0;
  }

  /** Sends while only the pacer holds them back wait this long (ms); 0 when they may go or only a SENDME can help. */
  pacingDelayMs(): number {
    const v = this.vegas;
    if (this.#pacer === null || !v.canSend || v.rtt.minUs === 0) return 0;
    return this.#pacer.waitUs(this.#pacingClock(), v.cwnd, v.rtt.minUs) / 1000;
  }

  onSent(digest: Uint8Array): void {
    const v = this.vegas;
    if (!v.canSend) throw new ProtocolError('sent a DATA cell with a full congestion window');
    // An active pacer reads its clock (once per turn); the RTT clock is read only for the cell a SENDME will acknowledge (one in sendme_inc).
    if (this.#pacer !== null && v.rtt.minUs > 0) this.#pacer.onSent(this.#pacingClock(), v.cwnd, v.rtt.minUs);
    if (v.onSent()) this.#owed.push({ digest: digest.slice(), sentAtUs: this.#clock() });
  }

  onSendme(sendme: Sendme, linkBlocked = false): void {
    if (sendme.version !== 1 || sendme.digest === null) throw new ProtocolError('circuit SENDME without an authenticated digest');
    const expected = this.#owed[0];
    if (expected === undefined || !equalBytes(sendme.digest, expected.digest)) throw new ProtocolError('circuit SENDME digest mismatch');
    this.#owed.shift();
    const rtt = Math.max(0, this.#clock() - expected.sentAtUs);
    this.#lastRttUs = rtt;
    const wasSlowStart = this.vegas.inSlowStart;
    this.vegas.onSendme(rtt, linkBlocked);
    if (trace.enabled) {
      const v = this.vegas;
      const at = (performance.timeOrigin + performance.now()).toFixed(1);
      trace('circ %d t %s cwnd %d inflight %d bdp %d queue %d rtt min/ewma/last %d/%d/%d ms%s%s', this.#traceId, at, v.cwnd, v.inflight, v.bdp, Math.max(0, v.cwnd - v.bdp), Math.round(v.rtt.minUs / 1000), Math.round(v.rtt.ewmaUs / 1000), Math.round(rtt / 1000), v.inSlowStart ? ' slow-start' : '', v.blockedChan ? ' blocked' : '');
    }
    if (log.enabled && (wasSlowStart !== this.vegas.inSlowStart || ++this.#sendmes % 100 === 0)) {
      const v = this.vegas;
      log('vegas cwnd %d inflight %d bdp %d rtt min/ewma/last %d/%d/%d ms%s%s', v.cwnd, v.inflight, v.bdp, v.rtt.minUs / 1000, v.rtt.ewmaUs / 1000, rtt / 1000, v.inSlowStart ? ' slow-start' : '', v.blockedChan ? ' blocked' : '');
    }
  }

  onDelivered(receivedDigest: () => Uint8Array): Sendme | null {
    if (++this.#delivered < this.vegas.params.sendmeInc) return null;
    this.#delivered = 0;
    return { kind: 'sendme', version: 1, digest: receivedDigest() };
  }

  snapshot(): CircuitFlowSnapshot {
    const v = this.vegas;
    return {
      inflight: v.inflight,
      window: v.cwnd,
      lastRttMs: this.#lastRttUs === null ? null : this.#lastRttUs / 1000,
      minRttMs: v.rtt.minUs === 0 ? null : v.rtt.minUs / 1000,
      algorithm: 'vegas',
      slowStart: v.inSlowStart,
    };
  }
}
