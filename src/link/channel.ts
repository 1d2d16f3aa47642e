/**
 * A link (channel) over one socket: the only part of the link layer that
 * touches I/O. It runs the sans-IO handshake (link-handshake.ts) over a node
 * Duplex (driven by channel-handshake.ts), then carries 514-byte cells in
 * encrypted frames (frame.ts), queued as send-queue.ts lays them out.
 *
 * Sending: cells queued in one event-loop turn are sealed together, up to 31
 * per frame (SEND_FRAME_CELLS), and handed to the socket corked, so one turn's frames leave in
 * one writev; a lone cell waits at most until the end of the turn
 * (setImmediate). `sendCell` returns false once more than CHANNEL_HIGH_WATER
 * bytes are queued; 'drain' follows when the queue is below half of that
 * again. More than CHANNEL_HARD_CAP queued destroys the channel
 * (ERR_RESOURCE_LIMIT).
 *
 * Receiving: reading starts when the first 'cell' or 'cells' listener is
 * added (so no cell is emitted before anyone listens), and `pauseReading`
 * stops both the cell events and the socket. Frames read wait in the link's
 * inbox (link-inbox.ts) until the end of the event loop's poll phase, or
 * less when much is held; with a 'cells' listener, the cells of all the
 * frames read since the last delivery go out as one batch (paused reading
 * takes effect between batches); 'cell' listeners, if any, see each cell of
 * the batch first and may modify it in place.
 *
 * Any malformed frame, failed authentication or handshake failure destroys
 * the socket and emits 'close' with the error, once. No error escapes.
 *
 * Lifecycle: a Channel exists only once its handshake finished (the handshake
 * is the promise of `connect`/`accept`). Its `state` is then 'open', becomes
 * 'closing' on close() or destroy() (nothing more is sent or delivered), and
 * 'closed' when the socket is gone and 'close' has been emitted.
 *
 * Events: 'cell' (cell: Uint8Array, 514 bytes, ours to keep; with a 'cells'
 * listener it is the same view the batch holds), 'cells' (cells: Uint8Array[],
 * 514-byte views into a buffer no one else holds, in arrival order), 'drain',
 * 'close' (err?: Error);
 * and the diagnostics channels `allium:link:open` / `allium:link:close` (src/events.ts).
 */
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { abytes, hex } from '../bytes.js';
import { CELL_LENGTH } from '../constants.js';
import { AlliumError } from '../errors.js';
import { nextEventId, publish } from '../events.js';
import { Deframer, FrameOpener, FrameSealer } from './frame.js';
import { LinkInbox } from './link-inbox.js';
import type { LinkHandshakeResult } from './link-handshake.js';
import {
  asError,
  initiatorMachine,
  responderMachine,
  startHandshake,
  type AcceptOptions,
  type ConnectOptions,
} from './channel-handshake.js';
import { LinkOutbox } from './send-queue.js';

export type { AcceptOptions, ConnectOptions, LinkIdentity, StaticKey } from './channel-handshake.js';

/** Who is on the other end: its link key, and its identity (null for an anonymous client). */
export interface ChannelPeer {
  linkKey: Uint8Array;
  identity: Uint8Array | null;
}

/**
 * Where a link is in its life: 'open' carries cells; 'closing' after close()
 * (flushing, waiting for the peer's end of stream) or destroy() (socket being
 * torn down); 'closed' once 'close' was emitted.
 */
export type LinkState = 'open' | 'closing' | 'closed';

/** Bytes of queued cells above which sendCell returns false. */
export const CHANNEL_HIGH_WATER = 256 * 1024;
/** Bytes of queued cells above which the channel is destroyed (ERR_RESOURCE_LIMIT). */
export const CHANNEL_HARD_CAP = 4 * 1024 * 1024;
/** Frames sealed before the socket's backpressure is looked at again. */
const FRAMES_PER_WRITE = 4;
/** How long a graceful close() waits for the peer before destroying the socket. */
const CLOSE_GRACE_MS = 5000;

export class Channel extends EventEmitter {
  readonly peer: ChannelPeer;
  readonly isInitiator: boolean;
  /** Process-unique link number for events and logs (not a wire value). */
  readonly linkId = nextEventId();

  readonly #socket: Duplex;
  readonly #sealer: FrameSealer;
  readonly #inbox: LinkInbox;
  readonly #deframer = new Deframer();

  // Send side.
  readonly #outbox = new LinkOutbox();
  #flushScheduled = false;
  #socketBlocked = false;
  /** performance.now() when the socket last pushed back, while it does; null when it takes what we write. */
  #blockedSince: number | null = null;
  #needDrain = false;

  // Receive side.
  #leftover: Uint8Array | null;
  #readingStarted = false;
  #readPaused = false;
  /** A setImmediate will deliver the inbox (#onData). */
  #deliverScheduled = false;
  #delivering = false;

  // Lifecycle.
  #state: LinkState = 'open';
  /** destroy() was called: the socket is torn down, nothing more is written. */
  #aborted = false;
  #error: Error | undefined;
  #cellsIn = 0;
  #cellsOut = 0;
  #closeTimer: NodeJS.Timeout | null = null;

  private constructor(socket: Duplex, isInitiator: boolean, result: LinkHandshakeResult, handshakeMs: number) {
    super();
    this.#socket = socket;
    this.isInitiator = isInitiator;
    this.peer = { linkKey: result.peer.linkKey, identity: result.peer.identity };
    this.#sealer = new FrameSealer(result.keys.send);
    this.#inbox = new LinkInbox(new FrameOpener(result.keys.recv));
    this.#leftover = result.leftover.length > 0 ? result.leftover : null;

    socket.pause();
    socket.on('error', this.#onSocketError);
    socket.on('close', this.#onSocketClose);
    socket.on('end', this.#onSocketEnd);
    this.on('newListener', this.#onNewListener);
    publish('allium:link:open', () => ({
      linkId: this.linkId,
      initiator: isInitiator,
      peerIdentity: this.peer.identity === null ? null : hex(this.peer.identity),
      handshakeMs,
    }));
    if (socket.destroyed) queueMicrotask(() => this.#finish(new AlliumError('ERR_LINK_CLOSED', 'link closed')));
  }

  /** Open a link as the initiator over a connected (or connecting) socket. */
  static connect(socket: Duplex, opts: ConnectOptions): Promise<Channel> {
    return startHandshake(socket, () => initiatorMachine(opts), opts.timeoutMs, (result, ms) => new Channel(socket, true, result, ms));
  }

  /** Accept a link as the responder (a relay) on an incoming socket. */
  static accept(socket: Duplex, opts: AcceptOptions): Promise<Channel> {
    return startHandshake(socket, () => responderMachine(opts), opts.timeoutMs, (result, ms) => new Channel(socket, false, result, ms));
  }

  get state(): LinkState {
    return this.#state;
  }

  /** True once the link is no longer open (closing or closed): sendCell drops cells. */
  get closed(): boolean {
    return this.#state !== 'open';
  }

  /** Cells delivered ('cell' events or in 'cells' batches) so far. */
  get cellsIn(): number {
    return this.#cellsIn;
  }

  /** Cells handed to the socket so far (queued cells count once written). */
  get cellsOut(): number {
    return this.#cellsOut;
  }

  /** Bytes of cells queued but not yet handed to the socket. */
  get queuedBytes(): number {
    return this.#outbox.bytes;
  }

  /** performance.now() when the oldest cell still queued was queued; null when nothing is queued. */
  get oldestQueuedAt(): number | null {
    return this.#outbox.oldestQueuedAt;
  }

  /** The queued cells by circuit id (LinkOutbox.byCircuit): for the relay's memory cap, not the cell path. */
  queuedByCircuit(): Map<number, { bytes: number; since: number }> {
    return this.#outbox.byCircuit();
  }

  /**
   * Bytes this link holds to send, in bytes: its queued cells (queuedBytes)
   * and what the socket holds unsent in its own write buffer (sealed frames
   * handed to it past its high-water mark; not the kernel's buffer, which is
   * not this process's memory). What the relay's memory cap accounts per
   * link (relay/mem-cap.ts). Not counted: the unfilled rest of the last
   * queued frame (frames are allocated whole, 31 cells; dropQueuedCells
   * packs the others) and the spare frame buffers a sending link keeps for
   * reuse (at most 4, none while the socket pushes back). 0 once destroy()
   * was called.
   */
  get heldBytes(): number {
    if (this.#aborted) return 0;
    return this.queuedBytes + this.#socket.writableLength;
  }

  /**
   * Bytes sealed and handed to the socket that it has not yet passed to the
   * system (its userland write buffer). They cannot be recalled: only closing
   * the link frees them. 0 once destroy() was called.
   */
  get unsentSocketBytes(): number {
    return this.#aborted ? 0 : this.#socket.writableLength;
  }

  /**
   * performance.now() since when the socket has pushed back (its write
   * buffer past its high-water mark, waiting for 'drain'); null while it
   * takes what is written. The memory cap's age of a link whose peer does
   * not read (relay/mem-cap.ts).
   */
  get sendBlockedSince(): number | null {
    return this.#aborted ? null : this.#blockedSince;
  }

  /**
   * Drop every queued cell of circuit `circuitId` (the memory cap freeing a
   * circuit); returns the bytes freed. The cells left are packed into as few
   * frames as they fill, in order, so the frames emptied are freed too. Cells
   * already handed to the socket are not recalled. May emit 'drain' (on a
   * later tick) if the queue fell below the low-water mark.
   */
  dropQueuedCells(circuitId: number): number {
    const dropped = this.#outbox.dropCircuit(circuitId);
    if (dropped === 0) return 0;
    if (this.#needDrain && !this.closed && this.queuedBytes < CHANNEL_HIGH_WATER / 2) {
      this.#needDrain = false;
      process.nextTick(() => {
        if (!this.closed) this.emit('drain');
      });
    }
    return dropped * CELL_LENGTH;
  }

  /**
   * Queue one 514-byte cell (copied). Returns false once more than the high-water
   * mark is queued (wait for 'drain'), or if the channel is closed (the cell is dropped).
   */
  sendCell(cell: Uint8Array): boolean {
    abytes(cell, 'cell', CELL_LENGTH);
    if (this.closed) return false;
    this.#outbox.append(cell);
    if (this.queuedBytes > CHANNEL_HARD_CAP) {
      this.destroy(new AlliumError('ERR_RESOURCE_LIMIT', `more than ${CHANNEL_HARD_CAP} bytes of cells queued on a link`));
      return false;
    }
    this.#scheduleFlush();
    if (this.queuedBytes >= CHANNEL_HIGH_WATER) {
      this.#needDrain = true;
      return false;
    }
    return true;
  }

  /** Stop emitting cells and stop reading the socket (the peer's sends then back up). */
  pauseReading(): void {
    this.#readPaused = true;
    if (this.#readingStarted) this.#socket.pause();
  }

  resumeReading(): void {
    if (!this.#readPaused) return;
    this.#readPaused = false;
    if (this.#state !== 'open') return;
    if (!this.#readingStarted) {
      this.#startReading();
      return;
    }
    setImmediate(() => {
      if (this.#readPaused || this.#state !== 'open') return;
      this.#deliver();
      if (!this.#readPaused && this.#state === 'open') this.#socket.resume();
    });
  }

  /** Graceful close: send what is queued, then end the socket. */
  close(): void {
    if (this.closed) return;
    this.#flush(true);
    this.#state = 'closing';
    this.#socket.end();
    // Keep reading (cells are dropped) so the peer's end of stream is seen.
    this.#readPaused = false;
    this.#startReading(true);
    if (this.#readingStarted) this.#socket.resume();
    this.#closeTimer = setTimeout(() => this.destroy(), CLOSE_GRACE_MS);
    this.#closeTimer.unref?.();
  }

  /** Abrupt close: drop what is queued, destroy the socket, emit 'close' (with `err`). */
  destroy(err?: Error): void {
    if (this.#aborted || this.#state === 'closed') return;
    this.#aborted = true;
    this.#state = 'closing';
    if (err !== undefined && this.#error === undefined) this.#error = err;
    this.#dropQueues();
    this.#socket.destroy();
    process.nextTick(() => this.#finish(this.#error));
  }

  // ---- send side ----

  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    setImmediate(() => {
      this.#flushScheduled = false;
      this.#flush(false);
    });
  }

  /** Seal and write queued cells until the queue is empty or the socket pushes back (unless `force`). */
  #flush(force: boolean): void {
    if (this.#state !== 'open') return;
    const socket = this.#socket;
    // Corked: every frame of this flush goes to the kernel in one writev.
    socket.cork();
    try {
      const outbox = this.#outbox;
      while (outbox.cells > 0 && (force || !this.#socketBlocked)) {
        let ok = true;
        for (let n = 0; n < FRAMES_PER_WRITE; n++) {
          const frame = outbox.takeFrame();
          if (frame === undefined) break;
          const [header, body, tag] = this.#sealer.sealParts(frame.buf.subarray(0, frame.cells * CELL_LENGTH));
          this.#cellsOut += frame.cells;
          outbox.recycle(frame.buf);
          socket.write(header);
          socket.write(body);
          ok = socket.write(tag);
        }
        if (!ok && !this.#socketBlocked) {
          this.#socketBlocked = true;
          this.#blockedSince = performance.now();
          // A link the peer does not read keeps no spare buffers while it waits (the memory cap counts them).
          outbox.dropSpares();
          socket.once('drain', this.#onSocketDrain);
        }
      }
    } catch (err) {
      this.destroy(asError(err));
      return;
    } finally {
      socket.uncork();
    }
    if (this.#needDrain && !this.closed && this.queuedBytes < CHANNEL_HIGH_WATER / 2) {
      this.#needDrain = false;
      this.emit('drain');
    }
  }

  #onSocketDrain = (): void => {
    this.#socketBlocked = false;
    this.#blockedSince = null;
    this.#flush(false);
  };

  #dropQueues(): void {
    this.#outbox.clear();
    this.#inbox.clear();
  }

  // ---- receive side ----

  #onNewListener = (event: string | symbol): void => {
    if ((event === 'cell' || event === 'cells') && !this.#readingStarted) queueMicrotask(() => this.#startReading());
  };

  /** Start taking data from the socket; `closing` is close() reading only to see the peer's end of stream. */
  #startReading(closing = false): void {
    if (this.#readingStarted || this.#aborted || this.#state === 'closed' || (this.#state === 'closing' && !closing)) return;
    this.#readingStarted = true;
    this.off('newListener', this.#onNewListener);
    this.#socket.on('data', this.#onData);
    const leftover = this.#leftover;
    this.#leftover = null;
    if (leftover !== null) this.#onData(leftover);
    if (!this.#readPaused && !this.#aborted) this.#socket.resume();
  }

  #onData = (chunk: Uint8Array): void => {
    // After close() incoming data is only read to see the peer's end of stream.
    if (this.#state !== 'open') return;
    let frames: Uint8Array[];
    try {
      frames = this.#deframer.push(chunk);
    } catch (err) {
      this.destroy(asError(err));
      return;
    }
    const deliverNow = this.#inbox.push(frames);
    // A busy link is read up to 32 times in a row by one poll of the event
    // loop (64 KiB each). Delivering once after them, rather than per read,
    // gives each circuit one batch of all its cells (one cipher call per
    // layer, one write to a stream's socket) instead of one per read: with 20
    // busy circuits on a link a batch per read is ~6 cells each. The inbox is
    // still delivered at once past its bounds (link-inbox.ts).
    if (deliverNow) this.#deliver();
    else if (!this.#deliverScheduled && !this.#inbox.empty) {
      this.#deliverScheduled = true;
      setImmediate(this.#deliverDeferred);
    }
  };

  #deliverDeferred = (): void => {
    this.#deliverScheduled = false;
    if (this.#state === 'open') this.#deliver();
  };

  #deliver(): void {
    if (this.#delivering) return;
    this.#delivering = true;
    try {
      while (!this.#readPaused && this.#state === 'open') {
        if (this.listenerCount('cells') > 0) {
          if (!this.#deliverBatch()) break;
          continue;
        }
        const cell = this.#inbox.nextCell();
        if (cell === null) break;
        this.#cellsIn++;
        this.emit('cell', cell);
      }
    } catch (err) {
      this.destroy(asError(err));
    } finally {
      this.#delivering = false;
    }
  }

  /**
   * Deliver every cell waiting (the frames read since the last delivery: up
   * to one poll of the event loop, #onData) as one 'cells'
   * batch. False if there was none. A frame that fails to open ends the link,
   * after the cells of the frames before it were delivered.
   */
  #deliverBatch(): boolean {
    const { cells, failure } = this.#inbox.takeAll();
    if (cells.length > 0) {
      this.#cellsIn += cells.length;
      if (this.listenerCount('cell') > 0) {
        for (const cell of cells) {
          this.emit('cell', cell);
          if (this.#state !== 'open') return false;
        }
      }
      this.emit('cells', cells);
    }
    if (failure !== null) throw failure;
    return cells.length > 0;
  }

  // ---- lifecycle ----

  #onSocketEnd = (): void => {
    // Cells read before the end of stream go first (#onData may have deferred them).
    if (this.#state === 'open') this.#deliver();
    try {
      this.#deframer.end();
    } catch (err) {
      this.destroy(asError(err));
      return;
    }
    // The peer closed its side cleanly; finish ours.
    if (!this.#aborted) this.#socket.end();
  };

  #onSocketError = (err: Error): void => {
    // Cells read before the error go first (#onData may have deferred them).
    if (this.#state === 'open') this.#deliver();
    if (this.#error === undefined) this.#error = new AlliumError('ERR_LINK_CLOSED', `link error: ${err.message}`, { cause: err });
    this.destroy();
  };

  #onSocketClose = (): void => {
    this.#finish(this.#error);
  };

  #finish(err: Error | undefined): void {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    if (this.#closeTimer !== null) clearTimeout(this.#closeTimer);
    this.#dropQueues();
    this.#socket.off('data', this.#onData);
    this.#socket.off('drain', this.#onSocketDrain);
    if (!this.#socket.destroyed) this.#socket.destroy();
    publish('allium:link:close', () => ({
      linkId: this.linkId,
      code: err === undefined ? null : err instanceof AlliumError ? err.code : 'ERR_LINK_CLOSED',
      cellsIn: this.#cellsIn,
      cellsOut: this.#cellsOut,
    }));
    this.emit('close', err);
  }
}
