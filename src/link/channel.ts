/**
 * A link (channel) over one socket: the only part of the link layer that
 * touches I/O. It runs the sans-IO handshake (link-handshake.ts) over a node
 * Duplex, then carries 514-byte cells in encrypted frames (frame.ts).
 *
 * Sending: cells queued in one event-loop turn are sealed together, up to 127
 * per frame, and handed to the socket corked, so one turn's frames leave in
 * one writev; a lone cell waits at most until the end of the turn
 * (setImmediate). `sendCell` returns false once more than CHANNEL_HIGH_WATER
 * bytes are queued; 'drain' follows when the queue is below half of that
 * again. More than CHANNEL_HARD_CAP queued destroys the channel
 * (ERR_RESOURCE_LIMIT).
 *
 * Receiving: reading starts when the first 'cell' or 'cells' listener is
 * added (so no cell is emitted before anyone listens), and `pauseReading`
 * stops both the cell events and the socket. With a 'cells' listener, the
 * cells of all the frames one socket read completed are delivered as one
 * batch (paused reading takes effect between batches); 'cell' listeners, if
 * any, see each cell of the batch first and may modify it in place.
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
import { abytes } from '../bytes.js';
import { CELL_LENGTH } from '../constants.js';
import { crypto } from '../crypto/crypto.js';
import { AlliumError, HandshakeError } from '../errors.js';
import { nextEventId, publish } from '../events.js';
import { hex } from '../bytes.js';
import { Deframer, FrameOpener, FrameSealer, MAX_CELLS_PER_FRAME } from './frame.js';
import {
  LinkInitiator,
  LinkResponder,
  signLinkCertificate,
  type LinkHandshakeMachine,
  type LinkHandshakeResult,
} from './link-handshake.js';
import { generateKeyPair } from './noise.js';
import type { SigningKeySigner } from '../netdoc/signing-key-cert.js';

/** An X25519 key pair (a relay's link key). */
export interface StaticKey {
  secret: Uint8Array;
  public: Uint8Array;
}

/**
 * A relay's Ed25519 identity (public key) and the medium-term signing key
 * that speaks for it (seed and certificate, docs/protocol.md §8.6). `signer`
 * may be replaced on a running relay (a renewed signing key): links opened
 * afterwards present the new certificate.
 */
export interface LinkIdentity {
  identity: Uint8Array;
  signer: SigningKeySigner;
}

/** Who is on the other end: its link key, and its identity (null for an anonymous client). */
export interface ChannelPeer {
  linkKey: Uint8Array;
  identity: Uint8Array | null;
}

export interface ConnectOptions {
  peerLinkKey: Uint8Array;
  peerIdentity: Uint8Array;
  linkKey?: StaticKey;
  identity?: LinkIdentity;
  timeoutMs: number;
  /** The clock (ms) against which the peer's signing-key certificate is checked (§3.3); default Date.now. */
  now?: () => number;
}

export interface AcceptOptions {
  linkKey: StaticKey;
  identity: LinkIdentity;
  timeoutMs: number;
  /** The clock (ms) against which the peer's signing-key certificate is checked (§3.3); default Date.now. */
  now?: () => number;
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

const FRAME_CAPACITY = MAX_CELLS_PER_FRAME * CELL_LENGTH;

function asError(err: unknown): Error {
  return err instanceof Error ? err : new AlliumError('ERR_PROTOCOL', String(err));
}

function noop(): void {}

/** Certificates are signed once per (signing key, link key) pair. */
const certCache = new WeakMap<StaticKey, { signer: SigningKeySigner; cert: Uint8Array }>();

function certificateFor(linkKey: StaticKey, identity: LinkIdentity): Uint8Array {
  const cached = certCache.get(linkKey);
  if (cached !== undefined && cached.signer === identity.signer) return cached.cert;
  const cert = signLinkCertificate(identity.signer, linkKey.public, crypto);
  certCache.set(linkKey, { signer: identity.signer, cert });
  return cert;
}

interface QueuedFrame {
  buf: Uint8Array;
  cells: number;
  /** performance.now() when its first cell was queued (the memory cap's age of its data). */
  since: number;
}

export class Channel extends EventEmitter {
  readonly peer: ChannelPeer;
  readonly isInitiator: boolean;
  /** Process-unique link number for events and logs (not a wire value). */
  readonly linkId = nextEventId();

  readonly #socket: Duplex;
  readonly #sealer: FrameSealer;
  readonly #opener: FrameOpener;
  readonly #deframer = new Deframer();

  // Send side.
  #frames: QueuedFrame[] = [];
  #freeBuffers: Uint8Array[] = [];
  #queuedCells = 0;
  #flushScheduled = false;
  #socketBlocked = false;
  /** performance.now() when the socket last pushed back, while it does; null when it takes what we write. */
  #blockedSince: number | null = null;
  #needDrain = false;

  // Receive side.
  #leftover: Uint8Array | null;
  #readingStarted = false;
  #readPaused = false;
  #inbox: Uint8Array[] = [];
  #current: Uint8Array | null = null;
  #currentAt = 0;
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
    this.#opener = new FrameOpener(result.keys.recv);
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
    let machine: LinkHandshakeMachine;
    try {
      if ((opts.linkKey === undefined) !== (opts.identity === undefined)) {
        throw new AlliumError('ERR_CONFIG', 'Channel.connect: give both linkKey and identity (relay) or neither (client)');
      }
      const staticKey = opts.linkKey ?? generateKeyPair(crypto);
      const initiatorOpts: ConstructorParameters<typeof LinkInitiator>[0] = {
        peerLinkKey: opts.peerLinkKey,
        peerIdentity: opts.peerIdentity,
        staticKey,
        backend: crypto,
        now: (opts.now ?? Date.now)(),
      };
      if (opts.linkKey !== undefined && opts.identity !== undefined) {
        initiatorOpts.certificate = certificateFor(opts.linkKey, opts.identity);
      }
      machine = new LinkInitiator(initiatorOpts);
    } catch (err) {
      socket.on('error', noop);
      socket.destroy();
      return Promise.reject(asError(err));
    }
    return runHandshake(socket, machine, opts.timeoutMs, (result, ms) => new Channel(socket, true, result, ms));
  }

  /** Accept a link as the responder (a relay) on an incoming socket. */
  static accept(socket: Duplex, opts: AcceptOptions): Promise<Channel> {
    let machine: LinkHandshakeMachine;
    try {
      machine = new LinkResponder({
        staticKey: opts.linkKey,
        certificate: certificateFor(opts.linkKey, opts.identity),
        backend: crypto,
        now: (opts.now ?? Date.now)(),
      });
    } catch (err) {
      socket.on('error', noop);
      socket.destroy();
      return Promise.reject(asError(err));
    }
    return runHandshake(socket, machine, opts.timeoutMs, (result, ms) => new Channel(socket, false, result, ms));
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
    return this.#queuedCells * CELL_LENGTH;
  }

  /** performance.now() when the oldest cell still queued was queued; null when nothing is queued. */
  get oldestQueuedAt(): number | null {
    return this.#frames[0]?.since ?? null;
  }

  /**
   * The queued cells by circuit id: how many bytes each circuit has waiting
   * and when its oldest one was queued (performance.now()). A walk over the
   * queue, for the relay's memory cap (relay/mem-cap.ts), not the cell path.
   */
  queuedByCircuit(): Map<number, { bytes: number; since: number }> {
    const out = new Map<number, { bytes: number; since: number }>();
    for (const frame of this.#frames) {
      for (let at = 0; at < frame.cells * CELL_LENGTH; at += CELL_LENGTH) {
        const b = frame.buf;
        const id = ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
        const entry = out.get(id);
        if (entry === undefined) out.set(id, { bytes: CELL_LENGTH, since: frame.since });
        else entry.bytes += CELL_LENGTH;
      }
    }
    return out;
  }

  /**
   * Bytes this link holds to send, in bytes: its queued cells (queuedBytes)
   * and what the socket holds unsent in its own write buffer (sealed frames
   * handed to it past its high-water mark; not the kernel's buffer, which is
   * not this process's memory). What the relay's memory cap accounts per
   * link (relay/mem-cap.ts). Not counted: the unfilled rest of the last
   * queued frame (frames are allocated whole, 127 cells; dropQueuedCells
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
    const frames = this.#frames;
    let dropped = 0;
    // Kept cells move down to the write position (out, outCells), which never passes the read position.
    let out = 0;
    let outCells = 0;
    for (const src of frames) {
      const b = src.buf;
      const cells = src.cells;
      for (let i = 0; i < cells; i++) {
        const at = i * CELL_LENGTH;
        const id = ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
        if (id === circuitId) {
          dropped++;
          continue;
        }
        if (outCells === MAX_CELLS_PER_FRAME) {
          frames[out]!.cells = outCells;
          out++;
          outCells = 0;
        }
        const dst = frames[out]!;
        // A frame's age is that of its first cell.
        if (outCells === 0) dst.since = src.since;
        if (dst !== src) dst.buf.set(b.subarray(at, at + CELL_LENGTH), outCells * CELL_LENGTH);
        else if (outCells !== i) b.copyWithin(outCells * CELL_LENGTH, at, at + CELL_LENGTH);
        outCells++;
      }
    }
    if (dropped === 0) return 0;
    if (outCells > 0) frames[out++]!.cells = outCells;
    frames.length = out;
    this.#queuedCells -= dropped;
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
    let last = this.#frames[this.#frames.length - 1];
    if (last === undefined || last.cells === MAX_CELLS_PER_FRAME) {
      last = { buf: this.#freeBuffers.pop() ?? new Uint8Array(FRAME_CAPACITY), cells: 0, since: performance.now() };
      this.#frames.push(last);
    }
    last.buf.set(cell, last.cells * CELL_LENGTH);
    last.cells++;
    this.#queuedCells++;
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
      while (this.#frames.length > 0 && (force || !this.#socketBlocked)) {
        let ok = true;
        for (let n = 0; n < FRAMES_PER_WRITE && this.#frames.length > 0; n++) {
          const frame = this.#frames.shift()!;
          const [header, body, tag] = this.#sealer.sealParts(frame.buf.subarray(0, frame.cells * CELL_LENGTH));
          this.#queuedCells -= frame.cells;
          this.#cellsOut += frame.cells;
          if (this.#freeBuffers.length < 4) this.#freeBuffers.push(frame.buf);
          socket.write(header);
          socket.write(body);
          ok = socket.write(tag);
        }
        if (!ok && !this.#socketBlocked) {
          this.#socketBlocked = true;
          this.#blockedSince = performance.now();
          // A link the peer does not read keeps no spare buffers while it waits (the memory cap counts them).
          this.#freeBuffers = [];
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
    this.#frames = [];
    this.#freeBuffers = [];
    this.#queuedCells = 0;
    this.#inbox = [];
    this.#current = null;
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
    for (const f of frames) this.#inbox.push(f);
    this.#deliver();
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
        if (this.#current === null) {
          const ciphertext = this.#inbox.shift();
          if (ciphertext === undefined) break;
          this.#current = this.#opener.open(ciphertext);
          this.#currentAt = 0;
        }
        const cell = this.#current.slice(this.#currentAt, this.#currentAt + CELL_LENGTH);
        this.#currentAt += CELL_LENGTH;
        if (this.#currentAt >= this.#current.length) this.#current = null;
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
   * Deliver every cell waiting (the frames of one socket read) as one 'cells'
   * batch. False if there was none. A frame that fails to open ends the link,
   * after the cells of the frames before it were delivered.
   */
  #deliverBatch(): boolean {
    const cells: Uint8Array[] = [];
    const current = this.#current;
    if (current !== null) {
      for (let at = this.#currentAt; at < current.length; at += CELL_LENGTH) cells.push(current.subarray(at, at + CELL_LENGTH));
      this.#current = null;
    }
    let failure: unknown = null;
    for (let i = 0; i < this.#inbox.length; i++) {
      let plaintext: Uint8Array;
      try {
        plaintext = this.#opener.open(this.#inbox[i]!);
      } catch (err) {
        failure = err;
        break;
      }
      for (let at = 0; at < plaintext.length; at += CELL_LENGTH) cells.push(plaintext.subarray(at, at + CELL_LENGTH));
    }
    this.#inbox = [];
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

/**
 * Drive a handshake machine over `socket` until it finishes, fails, or the
 * time runs out. On failure the socket is destroyed and the promise rejects
 * (HandshakeError, also when the peer hangs up mid-handshake; AlliumError
 * ERR_TIMEOUT; ERR_LINK_CLOSED for other socket failures).
 */
function runHandshake(
  socket: Duplex,
  machine: LinkHandshakeMachine,
  timeoutMs: number,
  build: (result: LinkHandshakeResult, handshakeMs: number) => Channel,
): Promise<Channel> {
  const startedAt = performance.now();
  return new Promise<Channel>((resolve, reject) => {
    let settled = false;
    const cleanup = (): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('end', onEnd);
      socket.off('close', onClose);
    };
    const fail = (err: unknown): void => {
      if (settled) return;
      settled = true;
      cleanup();
      socket.on('error', noop);
      socket.destroy();
      reject(asError(err));
    };
    const writeOut = (): void => {
      for (const bytes of machine.takeOutput()) socket.write(bytes);
    };
    const onData = (chunk: Uint8Array): void => {
      if (settled) return;
      try {
        machine.push(chunk);
        writeOut();
        if (!machine.done) return;
        settled = true;
        cleanup();
        socket.pause();
        resolve(build(machine.result, performance.now() - startedAt));
      } catch (err) {
        settled = false;
        fail(err);
      }
    };
    // A peer that hangs up or resets mid-handshake refused us (e.g. we used the wrong link key):
    // that is a HandshakeError. Other socket errors (refused, unreachable) are ERR_LINK_CLOSED.
    const onError = (err: Error & { code?: string }): void =>
      fail(
        err.code === 'ECONNRESET' || err.code === 'EPIPE'
          ? new HandshakeError(`peer aborted the link handshake: ${err.message}`, { cause: err })
          : new AlliumError('ERR_LINK_CLOSED', `link failed during the handshake: ${err.message}`, { cause: err }),
      );
    const onEnd = (): void => fail(new HandshakeError('peer closed the link during the handshake'));
    const onClose = (): void => fail(new AlliumError('ERR_LINK_CLOSED', 'link closed during the handshake'));
    const timer = setTimeout(
      () => fail(new AlliumError('ERR_TIMEOUT', `link handshake did not finish within ${timeoutMs} ms`)),
      timeoutMs,
    );

    socket.on('data', onData);
    socket.on('error', onError);
    socket.on('end', onEnd);
    socket.on('close', onClose);
    if (socket.destroyed) {
      fail(new AlliumError('ERR_LINK_CLOSED', 'socket already closed'));
      return;
    }
    try {
      writeOut();
    } catch (err) {
      fail(err);
      return;
    }
    socket.resume();
  });
}
