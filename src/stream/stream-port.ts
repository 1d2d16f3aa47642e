/**
 * What a RelayStream (./relay-stream.ts) needs from outside it: the circuit
 * edge that owns it (StreamPort), a meter of application bytes (ByteMeter),
 * and the buffers of a socket spliced to it (AttachedBuffers). The circuit
 * edge (src/circuit/circuit-edge.ts) implements StreamPort.
 */
import type { StreamFlowMsg } from '../flow/flow-control.js';
import type { RelayStream } from './relay-stream.js';

/** Counts application bytes as they pass (a manager's stats). */
export interface ByteMeter {
  bytesIn(n: number): void;
  bytesOut(n: number): void;
}

/** What a stream needs from the circuit edge that owns it. */
export interface StreamPort {
  /** True if one more DATA cell may go out now (circuit window open, link not congested). */
  canSendData(): boolean;
  /** DATA cells that may go out now on the circuit (its window, 0 while the link is congested): an estimate, canSendData() is the rule. */
  dataRoomCells(): number;
  /** Calls `wake` once, when canSendData() may have become true. */
  waitForRoom(wake: () => void): void;
  sendData(streamId: number, data: Uint8Array): void;
  /** Send a stream SENDME, XON or XOFF on stream `streamId`. */
  sendStreamFlowMsg(streamId: number, msg: StreamFlowMsg): void;
  sendEnd(streamId: number, reason: number): void;
  /** Allium's FIN (§6.4): no more DATA from us on this stream. */
  sendFin(streamId: number): void;
  /**
   * The stream is closed on the wire (END sent or received, or FIN both
   * ways): no cell for it will be sent or expected any more; its id may be
   * reused. The stream object may live on while its reader drains it.
   */
  wireClosed(stream: RelayStream): void;
  /** The stream object is finished (destroyed); count it and publish its close. */
  release(stream: RelayStream): void;
}

/** Buffers held for a stream outside it: a socket's (net.Socket has both lengths, in bytes). */
export interface AttachedBuffers {
  readonly writableLength: number;
  readonly readableLength: number;
}
