/**
 * A client circuit's stream requests still waiting for their answer
 * (docs/protocol.md §6.4): streams asked for with BEGIN or BEGIN_DIR until
 * CONNECTED, and RESOLVE requests until RESOLVED, each with its timeout.
 * OriginCircuit (origin-circuit.ts) sends the requests and routes the answers
 * here (CONNECTED, a refusing END, RESOLVED); this module checks that each
 * answer belongs to a request, settles the promises and cancels the timers.
 */
import { BeginFlag, type ResolvedAnswer } from '../src/cell/stream-messages.js';
import { EndReason } from '../src/cell/reasons.js';
import { AlliumError, ProtocolError, StreamEndedError } from '../src/errors.js';
import type { RelayStream } from '../src/stream/relay-stream.js';

/** A stream waiting for CONNECTED. */
export interface PendingStream {
  /** The hop the stream was asked of (index into path). */
  hop: number;
  stream: RelayStream;
  /** BEGIN asked for half-close (BeginFlag.HALF_CLOSE). */
  halfClose: boolean;
  resolve: () => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

/** A RESOLVE waiting for RESOLVED (always asked of the last hop). */
export interface PendingResolve {
  resolve: (answers: ResolvedAnswer[]) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

export class StreamRequests {
  /** Streams waiting for CONNECTED, by stream id. */
  readonly connecting = new Map<number, PendingStream>();
  /** RESOLVE requests waiting for RESOLVED, by stream id (they never get a RelayStream). */
  readonly resolving = new Map<number, PendingResolve>();

  /** Whether `streamId` is taken by a request still waiting. */
  has(streamId: number): boolean {
    return this.connecting.has(streamId) || this.resolving.has(streamId);
  }

  /**
   * Wait for CONNECTED on `stream` (id `streamId`, asked of `hop`); `send`
   * sends the request once the wait is registered. After `timeoutMs` the
   * stream is ended (END MISC, §6.7) and the promise rejects with AlliumError
   * ERR_TIMEOUT.
   */
  awaitConnected(streamId: number, hop: number, stream: RelayStream, halfClose: boolean, timeoutMs: number, send: () => void): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.connecting.delete(streamId);
        stream.destroy(new StreamEndedError(EndReason.MISC, 'no CONNECTED in time')); // END MISC (§6.7)
        reject(new AlliumError('ERR_TIMEOUT', 'stream did not connect in time'));
      }, timeoutMs);
      this.connecting.set(streamId, { hop, stream, halfClose, resolve, reject, timer });
      send();
    });
  }

  /**
   * Wait for RESOLVED on `streamId`; `send` sends the RESOLVE once the wait
   * is registered. Rejects with AlliumError ERR_TIMEOUT after `timeoutMs`.
   */
  awaitResolved(streamId: number, timeoutMs: number, send: () => void): Promise<ResolvedAnswer[]> {
    return new Promise<ResolvedAnswer[]>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.resolving.delete(streamId);
        reject(new AlliumError('ERR_TIMEOUT', 'no RESOLVED in time'));
      }, timeoutMs);
      this.resolving.set(streamId, { resolve, reject, timer });
      send();
    });
  }

  /**
   * CONNECTED on `streamId` from `hop`: its stream's request is settled,
   * with half-close if BEGIN asked for it and `flags` (CONNECTED's, §6.4)
   * agree; other flags are ignored. Throws ProtocolError if no stream asked
   * of that hop waits for it.
   */
  connected(streamId: number, hop: number, flags: number | undefined): void {
    const pending = this.connecting.get(streamId);
    if (pending === undefined || pending.hop !== hop) throw new ProtocolError(`CONNECTED for stream ${streamId} from hop ${hop + 1}`);
    this.connecting.delete(streamId);
    clearTimeout(pending.timer);
    if (pending.halfClose && flags !== undefined && (flags & BeginFlag.HALF_CLOSE) !== 0) pending.stream.enableHalfClose();
    pending.resolve();
  }

  /**
   * END with `reason` on `streamId` from `hop`, if it answers a request: a
   * RESOLVE (asked of the last hop; `lastHop` says whether `hop` is it) is
   * refused, or a stream asked of `hop` is refused: `abortStream` ends it
   * first, then its opener's promise rejects (StreamEndedError with
   * `reason`). Returns false when no request waits for it (an END for an
   * open stream, the edge's business).
   */
  refused(streamId: number, hop: number, lastHop: boolean, reason: number, abortStream: (error: Error) => void): boolean {
    const resolving = lastHop ? this.resolving.get(streamId) : undefined;
    if (resolving !== undefined) {
      this.resolving.delete(streamId);
      clearTimeout(resolving.timer);
      resolving.reject(new StreamEndedError(reason, `resolve refused by the exit (reason ${reason})`));
      return true;
    }
    const pending = this.connecting.get(streamId);
    if (pending === undefined || pending.hop !== hop) return false;
    this.connecting.delete(streamId);
    clearTimeout(pending.timer);
    abortStream(new StreamEndedError(reason, 'stream refused'));
    pending.reject(new StreamEndedError(reason, `stream refused by hop ${hop + 1} (reason ${reason})`));
    return true;
  }

  /**
   * RESOLVED on `streamId` from `hop` (`lastHop`: whether it is the last
   * hop, the only one a RESOLVE is asked of): the request resolves with
   * `answers`. Throws ProtocolError if no RESOLVE waits for it there.
   */
  resolved(streamId: number, hop: number, lastHop: boolean, answers: ResolvedAnswer[]): void {
    const resolving = lastHop ? this.resolving.get(streamId) : undefined;
    if (resolving === undefined) throw new ProtocolError(`RESOLVED for stream ${streamId} from hop ${hop + 1}`);
    this.resolving.delete(streamId);
    clearTimeout(resolving.timer);
    resolving.resolve(answers);
  }

  /** A stream still waiting for CONNECTED broke the stream rules: END TORPROTOCOL to the hop, and the opener gets the same reason. */
  fail(streamId: number, pending: PendingStream, why: string): void {
    this.connecting.delete(streamId);
    clearTimeout(pending.timer);
    const error = new StreamEndedError(EndReason.TORPROTOCOL, `stream refused: ${why}`);
    pending.stream.destroy(error); // sends END TORPROTOCOL
    pending.reject(error);
  }

  /** The circuit is gone: every request waiting rejects with `error`. */
  rejectAll(error: Error): void {
    for (const pending of this.connecting.values()) {
      clearTimeout(pending.timer);
      pending.reject(error);
    }
    this.connecting.clear();
    for (const pending of this.resolving.values()) {
      clearTimeout(pending.timer);
      pending.reject(error);
    }
    this.resolving.clear();
  }
}
