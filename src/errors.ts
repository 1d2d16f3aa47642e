/**
 * One error hierarchy for all of Allium. Every error carries a stable `code`;
 * match on `code`, never on the message. docs/protocol.md §13 lists the codes.
 */

export type AlliumErrorCode =
  /** Input ended before the structure did; only thrown where more bytes can never come. */
  | 'ERR_TRUNCATED'
  /** Bytes that can never be valid: bad length, bad enum value, trailing junk. */
  | 'ERR_MALFORMED'
  /** Input larger than the protocol allows. */
  | 'ERR_OVERSIZED'
  /** A peer did something the protocol forbids in its current state. */
  | 'ERR_PROTOCOL'
  /** A handshake (link or circuit) failed: bad MAC, bad key, wrong peer. */
  | 'ERR_HANDSHAKE'
  /** A signature over a document or certificate did not verify. */
  | 'ERR_BAD_SIGNATURE'
  /** A document is outside its validity window or otherwise not acceptable. */
  | 'ERR_DOCUMENT'
  /** The circuit was destroyed (locally or by a DESTROY cell). */
  | 'ERR_CIRCUIT_DESTROYED'
  /** The stream was closed by an END cell. */
  | 'ERR_STREAM_ENDED'
  /** The link (channel) closed. */
  | 'ERR_LINK_CLOSED'
  /** A bounded wait ran out. */
  | 'ERR_TIMEOUT'
  /** No relays fit the request (path selection). */
  | 'ERR_NO_PATH'
  /** Bad configuration or bad API usage. */
  | 'ERR_CONFIG'
  /** A resource limit was hit (too many circuits, streams, buffered bytes). */
  | 'ERR_RESOURCE_LIMIT';

export class AlliumError extends Error {
  readonly code: AlliumErrorCode;
  constructor(code: AlliumErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'AlliumError';
  }
}

/** Decoding failures: `ERR_TRUNCATED`, `ERR_MALFORMED` or `ERR_OVERSIZED`. */
export class DecodeError extends AlliumError {
  constructor(code: 'ERR_TRUNCATED' | 'ERR_MALFORMED' | 'ERR_OVERSIZED', message: string) {
    super(code, message);
    this.name = 'DecodeError';
  }
}

export class ProtocolError extends AlliumError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_PROTOCOL', message, options);
    this.name = 'ProtocolError';
  }
}

export class HandshakeError extends AlliumError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_HANDSHAKE', message, options);
    this.name = 'HandshakeError';
  }
}

export class DocumentError extends AlliumError {
  constructor(code: 'ERR_DOCUMENT' | 'ERR_BAD_SIGNATURE' | 'ERR_MALFORMED' | 'ERR_OVERSIZED', message: string) {
    super(code, message);
    this.name = 'DocumentError';
  }
}

/** The circuit is gone; `reason` is the DESTROY reason (src/cell/reasons.ts). */
export class CircuitDestroyedError extends AlliumError {
  readonly reason: number;
  constructor(reason: number, message: string) {
    super('ERR_CIRCUIT_DESTROYED', message);
    this.name = 'CircuitDestroyedError';
    this.reason = reason;
  }
}

/** The stream was ended; `reason` is the END reason (src/cell/reasons.ts). */
export class StreamEndedError extends AlliumError {
  readonly reason: number;
  constructor(reason: number, message: string) {
    super('ERR_STREAM_ENDED', message);
    this.name = 'StreamEndedError';
    this.reason = reason;
  }
}

export function truncated(what: string): DecodeError {
  return new DecodeError('ERR_TRUNCATED', `${what}: truncated`);
}

export function malformed(what: string): DecodeError {
  return new DecodeError('ERR_MALFORMED', what);
}

export function oversized(what: string): DecodeError {
  return new DecodeError('ERR_OVERSIZED', what);
}
