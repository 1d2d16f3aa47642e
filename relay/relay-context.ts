/**
 * What a relay circuit (relay-circuit.ts) needs from the relay that holds it:
 * RelayContext (its links, dialling, exit and directory streams, DoS and
 * stats hooks, network parameters) and the DirectoryHandler that serves
 * BEGIN_DIR streams. relay-core.ts provides it.
 */
import type { Duplex } from 'node:stream';
import type { ExtendTarget } from '../src/cell/extend2.js';
import type { BeginBody } from '../src/cell/stream-messages.js';
import type { ChannelCircuits } from '../src/circuit/circuit-ids.js';
import type { CircuitStatsRecorder } from '../src/circuit/circuit-stats.js';
import type { Channel } from '../src/link/channel.js';
import type { NetworkParams } from '../src/netdoc/params.js';
import type { RelayCircuit } from './relay-circuit.js';

/**
 * Serves one directory stream (BEGIN_DIR, docs/protocol.md §6.5): reads the
 * request from `stream` and writes the answer; ends or destroys the stream
 * when done. relay/dir/dir-server.ts has the relay's default.
 */
export type DirectoryHandler = (stream: Duplex) => void;

/** What a circuit needs from the relay that holds it. */
export interface RelayContext {
  readonly identity: Uint8Array;
  circuitsOf(channel: Channel): ChannelCircuits<RelayCircuit>;
  /** Open or reuse an authenticated link to the relay named by `target`. */
  connectTo(target: ExtendTarget): Promise<Channel>;
  /** A BEGIN arrived on this circuit (exit side). */
  begin(circuit: RelayCircuit, streamId: number, body: BeginBody): void;
  /**
   * A RESOLVE arrived: answer RESOLVED on `streamId` (circuit.sendBackward).
   * Absent: every RESOLVE is answered with a non-transient error.
   */
  resolve?(circuit: RelayCircuit, streamId: number, hostname: string): void;
  /** Serves BEGIN_DIR streams; absent or null: BEGIN_DIR is refused with END NOTDIRECTORY. */
  readonly directory?: DirectoryHandler | null;
  /** The relay's circuit counters (its stats()). */
  readonly stats?: CircuitStatsRecorder | null;
  /** DoS defence (relay/dos.ts): may `link` create one more circuit? Absent: always. A refusal is DESTROY RESOURCELIMIT. */
  admitCreate?(link: Channel): boolean;
  /**
   * The relay's own network parameters: congestion control is agreed with
   * clients that ask when `cc_alg` is 2, with its `cc_sendme_inc` (§7.2).
   * Default: every parameter at its default (congestion control on).
   */
  readonly params?: NetworkParams;
  /** Reclaim half-closed streams idle this long (ms); default HALF_CLOSED_IDLE_TIMEOUT_MS. */
  readonly halfClosedIdleMs?: number;
  /** True while the relay hibernates (§8.2.1): every CREATE2 is answered with DESTROY HIBERNATING. */
  readonly hibernating?: () => boolean;
}
