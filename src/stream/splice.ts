/**
 * Joins a TCP socket to a stream, both ways, with TCP's manners
 * (docs/protocol.md §6.7): the application's socket to its stream at the
 * client's SOCKS port, the destination's socket to its stream at an exit.
 *
 * - Bytes flow both ways with backpressure (pipe).
 * - The socket's EOF ends the stream's writable side (FIN or END DONE, as the
 *   stream negotiated); the stream's end, once every byte before it has been
 *   written, half-closes the socket (FIN). Neither closes the other direction.
 * - An EOF is checked before it is passed on: a peer's reset that arrives
 *   while bytes wait unread (a paused socket) is reported by libuv as a clean
 *   EOF once those bytes are read (the socket has hung up, and libuv does not
 *   read again to see the error). So on EOF the socket writes nothing (an
 *   empty write), which fails on a reset connection and succeeds on a
 *   half-closed one; only then is the stream ended. (Skipped when our side is
 *   already ended or a write is pending: a pending write sees a reset itself.)
 * - A stream that fails (END with an error reason, the circuit destroyed, a
 *   half-closed stream reclaimed) resets the socket (RST), so the peer sees
 *   an error, never a clean EOF after a short transfer.
 * - A socket that fails (reset, error) destroys the stream with
 *   `socketError(error)`, whose END reason goes to the far edge — also while
 *   the stream is backed up and the socket not read (below).
 * - While backpressure keeps the socket from being read (the stream does not
 *   take its bytes: a full circuit, a slow far end), the system reports a
 *   reset by the peer only to a read or a write, and the socket does neither:
 *   a peer's reset would go unnoticed for as long as the stream stays stuck,
 *   and the far edge would never get its END. So a paused socket is probed
 *   every SPLICE_PAUSED_PROBE_MS with an empty write, which sends nothing but
 *   fails with the pending reset. (Not needed while a write is pending: the
 *   system reports the reset to it. Not possible once the socket has sent its
 *   FIN: then the reset is noticed when reading resumes, and a stream stuck
 *   half-closed is reclaimed by its idle limit, relay-stream.ts.) Reading on
 *   past the buffer's bound instead would give up backpressure.
 * - When the stream is finished but the socket's peer has not closed its side
 *   (the far end closed both ways with END DONE), the socket finishes writing,
 *   then reads and drops whatever the peer still sends — never a reset, which
 *   could discard bytes the peer has not read yet — and is closed after
 *   `lingerMs` at most.
 * - With `endLingerMs` (the exit: EXIT_LINGER_MS, relay/exit.ts), a socket
 *   whose stream has closed on the wire (WIRE_CLOSE_EVENT: END either way, or
 *   FIN both ways) gets that long in all, whether or not it has finished
 *   writing: a peer that never reads cannot keep the socket, its stream and
 *   their buffered bytes forever. Then the stream is destroyed and the socket
 *   closed — reset if it still held bytes, since the peer did not get them.
 * - With a PooledReader (the exit's destination sockets), the socket reads
 *   into one shared buffer and its bytes become DATA cells at once; only what
 *   the stream cannot send yet is copied, and the socket is paused until it
 *   is sent (src/stream/pooled-read.ts). Same backpressure, no chunk per read.
 * - A stream that can (RelayStream.attachBuffers) counts the socket's read
 *   and write buffers as its own, so the memory caps see them.
 *
 * The socket should be made with `allowHalfOpen: true`, so that its EOF does
 * not end its writable side before the stream has delivered everything.
 */
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { PooledReader } from './pooled-read.js';
import { WIRE_CLOSE_EVENT } from './relay-stream.js';

/** How long a socket whose stream is finished may take to close its side, once it has written everything. */
export const SPLICE_LINGER_MS = 10_000;

/** How often a socket not being read (backpressure) is probed for a reset by its peer (ms; above). */
export const SPLICE_PAUSED_PROBE_MS = 1000;

const EMPTY = Buffer.alloc(0);

/**
 * End `socket` as a failure: a reset (RST), so its peer sees an error. Once
 * the socket has sent its FIN a reset is no longer possible (the system
 * refuses it, and Node would then leave the descriptor open), so it is
 * closed instead: the peer already has its EOF, and whatever it sends next
 * is answered with a reset by the system.
 */
export function resetSocket(socket: Socket): void {
  if (socket.destroyed) return;
  if (socket.writableEnded || socket.connecting) socket.destroy();
  else socket.resetAndDestroy();
}

export interface SpliceOptions {
  /** The error to destroy the stream with when the socket fails; its END reason (StreamEndedError) is what the far edge sees. */
  socketError: (error: Error) => Error;
  /** Default SPLICE_LINGER_MS. */
  lingerMs?: number;
  /**
   * The socket was made with this reader's `onread` (src/stream/pooled-read.ts):
   * its reads go to the stream through the shared buffer instead of pipe().
   * The stream must be a RelayStream (sendNow).
   */
  reader?: PooledReader;
  /**
   * Once the stream has closed on the wire, destroy the socket this long
   * later (ms) even if it has not written everything (above). Default: no
   * such limit (a client's application may read as slowly as it likes).
   */
  endLingerMs?: number;
}

/** Splice `socket` and `stream` (above). Both are closed by the time either has failed or both directions have ended. */
export function splice(
  socket: Socket,
  stream: Duplex & { readonly ended?: boolean; attachBuffers?(socket: Socket): void; sendNow?(data: Uint8Array): number; sendRoom?(): number },
  opts: SpliceOptions,
): void {
  const lingerMs = opts.lingerMs ?? SPLICE_LINGER_MS;
  // A RelayStream counts the socket's buffers as its own (the memory caps).
  stream.attachBuffers?.(socket);
  let linger: NodeJS.Timeout | undefined;
  let endLinger: NodeJS.Timeout | undefined;
  let probe: NodeJS.Timeout | undefined;

  if (opts.reader !== undefined && stream.sendNow !== undefined && stream.sendRoom !== undefined) {
    opts.reader.attach(socket, stream as Duplex & { sendNow(data: Uint8Array): number; sendRoom(): number });
  } else socket.pipe(stream, { end: false });
  stream.pipe(socket);

  // The socket's EOF ends the stream, once it is known not to be a reset (above).
  const onSocketEnd = (): void => {
    if (socket.writableEnded || socket.writableLength > 0) {
      stream.end();
      return;
    }
    socket.write(EMPTY, (error) => {
      if (error == null && !stream.destroyed) stream.end(); // on an error, the 'error' listener destroys the stream
    });
  };
  // The EOF may have come before the splice (a port read the application's request, its early data and its EOF).
  if (socket.readableEnded) process.nextTick(onSocketEnd);
  else socket.once('end', onSocketEnd);

  // The pipe pauses the socket while the stream is backed up: probe it for a reset until it flows again (above).
  const stopProbe = (): void => {
    clearInterval(probe);
    probe = undefined;
  };
  socket.on('pause', () => {
    if (probe !== undefined) return;
    probe = setInterval(() => {
      if (socket.destroyed || socket.readableFlowing !== false) stopProbe();
      else if (!socket.writableEnded && socket.writableLength === 0) socket.write(EMPTY);
    }, SPLICE_PAUSED_PROBE_MS);
    probe.unref();
  });

  stream.on('error', () => resetSocket(socket));
  socket.on('error', (error: Error) => {
    if (!stream.destroyed) stream.destroy(opts.socketError(error));
  });
  if (opts.endLingerMs !== undefined) {
    const endLingerMs = opts.endLingerMs;
    const startEndLinger = (): void => {
      if (socket.destroyed || endLinger !== undefined) return;
      endLinger = setTimeout(() => {
        if (socket.destroyed) return;
        const finished = socket.writableFinished;
        if (!stream.destroyed) stream.destroy();
        if (finished) socket.destroy();
        else resetSocket(socket); // bytes the peer never took: an error for it, not a clean end
      }, endLingerMs);
      endLinger.unref();
    };
    // A RelayStream says when it closes on the wire; it may have closed already (an END while the exit connected).
    if (stream.ended === true) startEndLinger();
    else stream.once(WIRE_CLOSE_EVENT, startEndLinger);
  }
  socket.once('close', () => {
    clearTimeout(linger);
    clearTimeout(endLinger);
    stopProbe();
    // Gone before its peer's EOF reached the stream (destroyed here, or reset): a failure for the far end too.
    if (!stream.writableEnded && !stream.destroyed) stream.destroy(opts.socketError(new Error('socket closed before its end')));
  });
  stream.once('close', () => {
    if (socket.destroyed || stream.errored !== null) return; // failures are handled by the 'error' listeners
    if (!stream.readableEnded) {
      // Closed without an end of its data and without an error: treat as a failure.
      resetSocket(socket);
      return;
    }
    // Finished both ways on the wire; the socket's peer may still be sending.
    socket.unpipe(stream);
    socket.on('data', () => {});
    socket.resume();
    const startLinger = () => {
      linger = setTimeout(() => socket.destroy(), lingerMs);
      linger.unref();
    };
    if (socket.writableFinished) startLinger();
    else socket.once('finish', startLinger);
  });
}
