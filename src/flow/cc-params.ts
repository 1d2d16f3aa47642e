/**
 * The congestion-control settings one circuit hop runs with (docs/protocol.md
 * §7.3, §7.4), taken from the network parameters (src/netdoc/params.ts, §8.5)
 * once, when the hop's handshake completes, plus the SENDME increment the two
 * ends agreed on (§7.2). Counts are cells unless a name says bytes.
 */
import { RELAY_DATA_LENGTH } from '../constants.js';
import { DEFAULT_NETWORK_PARAMS, type NetworkParams } from '../netdoc/params.js';

/** The Vegas algorithm (Tor proposal 324 §3.3; `cc_alg` 2). */
export const CC_ALG_VEGAS = 2;

export interface CongestionParams {
  /** Cells one circuit SENDME acknowledges (negotiated, §7.2). */
  readonly sendmeInc: number;
  readonly cwndInit: number;
  readonly cwndMin: number;
  readonly cwndMax: number;
  /** Steady-state increment and decrement. */
  readonly cwndInc: number;
  /** Slow-start growth per SENDME, percent of sendmeInc. */
  readonly cwndIncPctSs: number;
  /** Steady-state updates per congestion window. */
  readonly cwndIncRate: number;
  readonly ewmaCwndPct: number;
  readonly ewmaMax: number;
  readonly ewmaSs: number;
  readonly rttResetPct: number;
  readonly alpha: number;
  readonly beta: number;
  readonly gamma: number;
  readonly delta: number;
  /** RFC 3742 cap: slow start grows more slowly above this window. */
  readonly ssCap: number;
  /** Slow start ends at this window. */
  readonly ssMax: number;
  readonly cwndFullGap: number;
  readonly cwndFullMinPct: number;
  readonly cwndFullPerCwnd: boolean;
  /** Sender pacing (§7.5, Allium only): percent of cwnd / RTTmin; 0 = unpaced. */
  readonly pacePct: number;
  /** One cut per round trip (§7.3, Allium only): false = Tor's cut at every update. */
  readonly cutPerRtt: boolean;
  /** XOFF once more than this many bytes wait for the application: at a client. */
  readonly xoffClientBytes: number;
  /** The same at a relay (exit or directory stream). */
  readonly xoffExitBytes: number;
  /** Bytes a client must have sent per XON it accepts (with xoffExitBytes, proposal 324 §4.1.4). */
  readonly xonRateBytes: number;
  /** N of the drain-rate average an XON carries. */
  readonly xonEwmaCnt: number;
}

/** The settings of a hop that agreed on `sendmeInc`, from the network parameters `p`. */
export function congestionParams(p: NetworkParams, sendmeInc: number): CongestionParams {
  if (!Number.isInteger(sendmeInc) || sendmeInc < 1 || sendmeInc > 255) throw new RangeError(`sendme_inc ${sendmeInc} is not in 1..255`);
  return Object.freeze({
    sendmeInc,
    cwndInit: p.cc_cwnd_init,
    cwndMin: p.cc_cwnd_min,
    cwndMax: p.cc_cwnd_max,
    cwndInc: p.cc_cwnd_inc,
    cwndIncPctSs: p.cc_cwnd_inc_pct_ss,
    cwndIncRate: p.cc_cwnd_inc_rate,
    ewmaCwndPct: p.cc_ewma_cwnd_pct,
    ewmaMax: p.cc_ewma_max,
    ewmaSs: p.cc_ewma_ss,
    rttResetPct: p.cc_rtt_reset_pct,
    alpha: p.cc_vegas_alpha_exit,
    beta: p.cc_vegas_beta_exit,
    gamma: p.cc_vegas_gamma_exit,
    delta: p.cc_vegas_delta_exit,
    ssCap: p.cc_sscap_exit,
    ssMax: p.cc_ss_max,
    cwndFullGap: p.cc_cwnd_full_gap,
    cwndFullMinPct: p.cc_cwnd_full_minpct,
    cwndFullPerCwnd: p.cc_cwnd_full_per_cwnd === 1,
    pacePct: p.cc_pace_pct,
    cutPerRtt: p.cc_cut_per_rtt === 1,
    xoffClientBytes: p.cc_xoff_client * RELAY_DATA_LENGTH,
    xoffExitBytes: p.cc_xoff_exit * RELAY_DATA_LENGTH,
    xonRateBytes: p.cc_xon_rate * RELAY_DATA_LENGTH,
    xonEwmaCnt: p.cc_xon_ewma_cnt,
  });
}

/** Every setting at Tor's default, with SENDME increment 31. */
export const DEFAULT_CONGESTION_PARAMS: CongestionParams = congestionParams(DEFAULT_NETWORK_PARAMS, DEFAULT_NETWORK_PARAMS.cc_sendme_inc);
