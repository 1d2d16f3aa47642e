/**
 * Observable events: named `node:diagnostics_channel` channels that metrics,
 * a dashboard or tests subscribe to, and the shapes of the read-only stats
 * snapshots that each manager returns. docs/architecture.md "Events".
 *
 * Privacy rule: no event and no snapshot carries a destination (host, port),
 * a client address, or key material. Relay identities are public (they are in
 * the consensus) and may appear as hex fingerprints; a client's link has no
 * identity and shows as null.
 *
 * Publishing costs one property read when nobody subscribes: call
 * `publish(channel, () => message)` so the message is only built for a listener.
 */
import { channel, type Channel as DiagnosticsChannel } from 'node:diagnostics_channel';

/** Which side of the network a circuit or stream belongs to. */
export type CircuitRole = 'origin' | 'relay';

/** `allium:link:open`: an authenticated link finished its handshake. */
export interface LinkOpenEvent {
  /** Process-unique link number (not a wire value). */
  linkId: number;
  /** True if we dialled the link. */
  initiator: boolean;
  /** The peer relay's Ed25519 identity as hex, or null for an anonymous client. */
  peerIdentity: string | null;
  /** Link handshake time, ms: from the handshake's first byte handled to the link being open. */
  handshakeMs: number;
}

/** `allium:link:close`: a link closed; counts are over its whole life. */
export interface LinkCloseEvent {
  linkId: number;
  /** The AlliumError code that closed it, or null for a clean close. */
  code: string | null;
  cellsIn: number;
  cellsOut: number;
}

/** `allium:circuit:built`: an origin circuit finished building, or a relay answered CREATE2. */
export interface CircuitBuiltEvent {
  /** Process-unique circuit number (not a wire circuit id). */
  circuitId: number;
  role: CircuitRole;
  /** Hops on the circuit as seen from here: the path length at an origin, 1 at a relay. */
  hops: number;
  /** At an origin: ms from starting the build to the last hop's answer. Absent at a relay. */
  buildMs?: number;
}

/** `allium:circuit:destroyed`: a circuit ended, with the DESTROY reason (src/cell/reasons.ts). */
export interface CircuitDestroyedEvent {
  circuitId: number;
  role: CircuitRole;
  /** DestroyReason number. */
  reason: number;
  /** True if the DESTROY (or link close) came from the network, false if we decided. */
  remote: boolean;
  /** Relay cells this side received and sent on the circuit over its whole life. */
  relayCellsIn: number;
  relayCellsOut: number;
}

/** `allium:stream:open`: a stream was accepted (exit, directory) or connected (client). */
export interface StreamOpenEvent {
  circuitId: number;
  streamId: number;
  /** 'exit' and 'dir' at relays; 'client' at an origin. */
  kind: 'client' | 'exit' | 'dir';
}

/** `allium:stream:close`: a stream ended; byte counts are application bytes (DATA bodies). */
export interface StreamCloseEvent {
  circuitId: number;
  streamId: number;
  kind: 'client' | 'exit' | 'dir';
  /** EndReason number sent or received. */
  reason: number;
  bytesIn: number;
  bytesOut: number;
}

/** `allium:consensus`: a client accepted a new consensus (not a refetch of the one in use). */
export interface ConsensusEvent {
  /** ms since the epoch. */
  validAfter: number;
  relays: number;
  /** Authority signatures that verified. */
  signatures: number;
}

/** `allium:descriptor:upload`: one upload of a relay's descriptor to one authority ended (a failed one is retried with backoff, relay/publisher.ts). */
export interface DescriptorUploadEvent {
  /** Index of the authority in the relay's configured list (0-based). */
  authority: number;
  /** True when the authority answered 200 (accepted, or a duplicate of what it holds). */
  accepted: boolean;
  /** The authority's HTTP status, or null when none answered. */
  status: number | null;
}

/** `allium:accounting`: a relay started or stopped hibernating (docs/protocol.md §8.2.1). */
export interface AccountingEvent {
  hibernating: boolean;
  /** Bytes counted in the period, and its budget. */
  usedBytes: number;
  maxBytes: number;
  /** ms since the epoch when the period ends. */
  periodEnd: number;
}

/** `allium:key:rotated`: a relay rotated a key (docs/protocol.md §8.2.2). */
export interface KeyRotatedEvent {
  key: 'onion';
  /** ms since the epoch until which the previous key is still accepted. */
  previousAcceptedUntil: number;
}

/**
 * `allium:key:signing`: a relay's signing key (docs/protocol.md §8.2.3) was
 * renewed (identity online), reloaded (the operator certified a new one), or
 * is expiring (within 7 days) or expired with the identity offline.
 */
export interface SigningKeyEvent {
  state: 'renewed' | 'reloaded' | 'expiring' | 'expired';
  /** ms since the epoch when the signing key in use expires. */
  expires: number;
  /** Whether the identity key is in the data directory. */
  identityOnline: boolean;
}

/** Every event Allium publishes, by channel name. */
export interface AlliumEvents {
  'allium:link:open': LinkOpenEvent;
  'allium:link:close': LinkCloseEvent;
  'allium:circuit:built': CircuitBuiltEvent;
  'allium:circuit:destroyed': CircuitDestroyedEvent;
  'allium:stream:open': StreamOpenEvent;
  'allium:stream:close': StreamCloseEvent;
  'allium:consensus': ConsensusEvent;
  'allium:descriptor:upload': DescriptorUploadEvent;
  'allium:accounting': AccountingEvent;
  'allium:key:rotated': KeyRotatedEvent;
  'allium:key:signing': SigningKeyEvent;
}
export type AlliumEventName = keyof AlliumEvents;

const channels = new Map<AlliumEventName, DiagnosticsChannel>();

/** The diagnostics channel named `name`. */
export function eventChannel(name: AlliumEventName): DiagnosticsChannel {
  let ch = channels.get(name);
  if (ch === undefined) {
    ch = channel(name);
    channels.set(name, ch);
  }
  return ch;
}

/** Publish an event; `build` runs only when someone subscribes. */
export function publish<N extends AlliumEventName>(name: N, build: () => AlliumEvents[N]): void {
  const ch = eventChannel(name);
  if (ch.hasSubscribers) ch.publish(build());
}

/** Subscribe to one event; returns the function that unsubscribes. */
export function subscribe<N extends AlliumEventName>(name: N, listener: (event: AlliumEvents[N]) => void): () => void {
  const ch = eventChannel(name);
  const handler = (message: unknown) => listener(message as AlliumEvents[N]);
  ch.subscribe(handler);
  return () => {
    ch.unsubscribe(handler);
  };
}

let nextId = 1;
/** A process-unique number for a link or circuit in events (never a wire id). */
export function nextEventId(): number {
  return nextId++;
}

/** LinkManager.stats(): a read-only snapshot. */
export interface LinkStats {
  /** Links open now. */
  open: number;
  opened: number;
  closed: number;
  cellsIn: number;
  cellsOut: number;
  /** Bytes of cells queued on open links now, not yet handed to their sockets. */
  queuedBytes: number;
}

/** A circuit manager's stats() (client or relay): a read-only snapshot. */
export interface CircuitStats {
  /** Circuits open now. */
  open: number;
  built: number;
  destroyed: number;
  /** Streams open now. */
  streams: number;
  streamsOpened: number;
  /** Application bytes carried by streams (not directory streams), both ways, over the manager's life. */
  streamBytesIn: number;
  streamBytesOut: number;
  /** Bytes carried by directory streams (BEGIN_DIR), both ways, over the manager's life. */
  dirBytesIn: number;
  dirBytesOut: number;
}
