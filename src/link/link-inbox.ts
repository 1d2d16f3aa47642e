/**
 * A link's receive queue (docs/protocol.md §3.4): the sealed frames read
 * from its socket and not yet opened, and the cells they hold, handed out
 * one by one or all at once. The Channel (channel.ts) feeds it what the
 * deframer cuts from each socket read and decides when to deliver; this
 * module only holds, opens and counts.
 *
 * Delivery may wait for the end of the event loop's poll phase (so all the
 * reads of one poll become one batch per circuit), but only while little is
 * held: DELIVER_DEFER_BYTES on this link, DELIVER_DEFER_TOTAL_BYTES over
 * every link of the thread. These bytes are not part of a link's heldBytes
 * (the relay's memory cap): they are bounded here instead.
 */
import { CELL_LENGTH } from '../constants.js';
import type { FrameOpener } from './frame.js';

/**
 * Sealed frames read but not yet delivered, in bytes, above which a socket
 * read is delivered at once instead of at the end of the event loop's poll
 * phase.
 */
export const DELIVER_DEFER_BYTES = 256 * 1024;
/**
 * The same bound over every link of the thread: a relay with many busy links
 * holds at most this much read and not yet delivered (beyond what it held
 * before deferring), then delivers each read at once.
 */
export const DELIVER_DEFER_TOTAL_BYTES = 1024 * 1024;

/** Bytes in the inboxes of every link of this thread (the sum of their #bytes). */
let bytesTotal = 0;

/** What takeAll() returns: the cells, and the error of the first frame that failed to open, if one did. */
export interface InboxBatch {
  /** 514-byte views into the opened frames, in order. */
  cells: Uint8Array[];
  /** Thrown by FrameOpener.open for the first frame that failed (the cells before it are in `cells`); null if none. */
  failure: unknown;
}

/** The sealed frames of one link waiting to be opened and delivered. */
export class LinkInbox {
  readonly #opener: FrameOpener;
  #frames: Uint8Array[] = [];
  /** Bytes of the sealed frames in #frames. */
  #bytes = 0;
  /** The opened frame nextCell() is handing out, from #currentAt. */
  #current: Uint8Array | null = null;
  #currentAt = 0;

  constructor(opener: FrameOpener) {
    this.#opener = opener;
  }

  /** No sealed frame is waiting (cells of an already opened frame may be). */
  get empty(): boolean {
    return this.#frames.length === 0;
  }

  /**
   * Queue the sealed frames of one socket read. Returns true if the inbox
   * should be delivered now: this link or the thread holds past its bound.
   */
  push(frames: readonly Uint8Array[]): boolean {
    for (const f of frames) {
      this.#frames.push(f);
      this.#bytes += f.length;
      bytesTotal += f.length;
    }
    return this.#bytes >= DELIVER_DEFER_BYTES || bytesTotal >= DELIVER_DEFER_TOTAL_BYTES;
  }

  /**
   * The next cell, a 514-byte copy; null when nothing is waiting. Opens the
   * next frame when needed; throws what FrameOpener.open throws (the frame is
   * consumed).
   */
  nextCell(): Uint8Array | null {
    if (this.#current === null) {
      const sealed = this.#frames.shift();
      if (sealed === undefined) return null;
      this.#bytes -= sealed.length;
      bytesTotal -= sealed.length;
      this.#current = this.#opener.open(sealed);
      this.#currentAt = 0;
    }
    const cell = this.#current.slice(this.#currentAt, this.#currentAt + CELL_LENGTH);
    this.#currentAt += CELL_LENGTH;
    if (this.#currentAt >= this.#current.length) this.#current = null;
    return cell;
  }

  /** Every cell waiting, opened, as views; the inbox is empty afterwards. Never throws (see InboxBatch.failure). */
  takeAll(): InboxBatch {
    const cells: Uint8Array[] = [];
    const current = this.#current;
    if (current !== null) {
      for (let at = this.#currentAt; at < current.length; at += CELL_LENGTH) cells.push(current.subarray(at, at + CELL_LENGTH));
      this.#current = null;
    }
    let failure: unknown = null;
    for (const sealed of this.#frames) {
      let plaintext: Uint8Array;
      try {
        plaintext = this.#opener.open(sealed);
      } catch (err) {
        failure = err;
        break;
      }
      for (let at = 0; at < plaintext.length; at += CELL_LENGTH) cells.push(plaintext.subarray(at, at + CELL_LENGTH));
    }
    this.clear();
    return { cells, failure };
  }

  /** Drop everything waiting. */
  clear(): void {
    this.#frames = [];
    bytesTotal -= this.#bytes;
    this.#bytes = 0;
    this.#current = null;
  }
}
