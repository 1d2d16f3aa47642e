/**
 * Fixed inputs of Allium's ntor-v3 circuit handshake (docs/protocol.md §5).
 */
import { utf8 } from '../bytes.js';

/** The ntor-v3 verification string: binds handshakes to Allium circuits. */
export const CIRCUIT_VERIFICATION = utf8('allium-circuit-v1');

/** An ntor-v3 message with no extensions (N_EXTENSIONS = 0). */
export const EMPTY_NTOR_MESSAGE = new Uint8Array([0]);
