/**
 * When a client stream request may be tried again on another circuit
 * (docs/protocol.md §11): the time and attempt bounds, the build errors no
 * retry changes, and what a failed BEGIN or RESOLVE says about its exit and
 * circuit. Used by CircuitManager (circuit-manager.ts), which runs the tries.
 */
import { hex } from '../src/bytes.js';
import { EndReason } from '../src/cell/reasons.js';
import { AlliumError, CircuitDestroyedError, StreamEndedError } from '../src/errors.js';
import type { PooledCircuit } from './circuit-pool.js';
import type { PathRelay, StreamTarget } from './path-selection.js';
import type { RelayStatus } from './relay-status.js';

/** Total time a stream request may take, retries included, ms. */
export const STREAM_TIMEOUT_MS = 30_000;
/** Time one BEGIN may wait for CONNECTED before the stream is tried elsewhere, ms. */
export const STREAM_ATTEMPT_TIMEOUT_MS = 10_000;
/** Circuits tried for one stream, at most. */
export const MAX_STREAM_ATTEMPTS = 8;
/** Exits that may fail to resolve one name before the client gives up (Tor's MAX_RESOLVE_FAILURES). */
export const MAX_RESOLVE_FAILURES = 3;
/** Build errors no retry can change: no path in the consensus, too many circuits, closed. */
export const FATAL_BUILD_ERRORS: ReadonlySet<string> = new Set(['ERR_NO_PATH', 'ERR_RESOURCE_LIMIT', 'ERR_CONFIG']);

/**
 * A BEGIN on `pc` to `target` failed with `error`: note what it says about
 * `exit` (in `status`, and in `refused`, the hex identities of exits not to
 * try again) and about the circuit, and say whether the stream may be tried
 * on another circuit. `resolveFailures` counts the RESOLVEFAILED ends so far,
 * this one included.
 */
export function retryAfterBeginFailure(
  status: RelayStatus,
  error: unknown,
  pc: PooledCircuit,
  exit: PathRelay,
  target: StreamTarget,
  refused: Set<string>,
  resolveFailures: number,
): boolean {
  const exitId = hex(exit.identity);
  if (error instanceof CircuitDestroyedError) return true; // destroyed before CONNECTED
  if (error instanceof AlliumError && error.code === 'ERR_TIMEOUT') {
    // No answer in time: this circuit takes no new streams, and another exit gets a go.
    pc.retired = true;
    refused.add(exitId);
    return true;
  }
  if (!(error instanceof StreamEndedError)) return false;
  switch (error.reason) {
    case EndReason.EXITPOLICY:
      status.markExitRejected(exit, target);
      refused.add(exitId);
      return true;
    case EndReason.RESOLVEFAILED:
      refused.add(exitId);
      return resolveFailures < MAX_RESOLVE_FAILURES;
    case EndReason.TIMEOUT:
    case EndReason.NOROUTE:
    case EndReason.MISC:
      refused.add(exitId);
      return true;
    case EndReason.RESOURCELIMIT:
    case EndReason.HIBERNATING:
    case EndReason.INTERNAL:
      status.markFailed(exit, `exit refused a stream (reason ${error.reason})`);
      refused.add(exitId);
      return true;
    default:
      // CONNECTREFUSED and the rest: the destination's answer, the same through any exit.
      return false;
  }
}

/**
 * A RESOLVE on `pc` failed with `error`: whether the lookup may be tried on
 * another circuit (the circuit was destroyed, or the exit stayed silent: that
 * circuit then takes no new streams and its exit goes into `refused`).
 */
export function retryAfterResolveFailure(error: unknown, pc: PooledCircuit, exit: PathRelay, refused: Set<string>): boolean {
  if (error instanceof CircuitDestroyedError) return true;
  if (error instanceof AlliumError && error.code === 'ERR_TIMEOUT') {
    pc.retired = true;
    refused.add(hex(exit.identity));
    return true;
  }
  return false;
}
