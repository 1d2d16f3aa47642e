/**
 * Protocol numbers. docs/protocol.md defines each of them first; this file
 * mirrors the spec and holds no logic.
 */

/** §2 Cells. */
export const CELL_LENGTH = 514;
export const CIRCUIT_ID_LENGTH = 4;
export const CELL_PAYLOAD_LENGTH = 509;

/** §6 Relay cells: command 1, recognized 2, stream id 2, digest 4, length 2. */
export const RELAY_HEADER_LENGTH = 11;
export const RELAY_DATA_LENGTH = CELL_PAYLOAD_LENGTH - RELAY_HEADER_LENGTH; // 498

/** §7 Flow control (Tor's fixed windows). */
export const CIRCUIT_WINDOW_START = 1000;
export const CIRCUIT_SENDME_INCREMENT = 100;
export const STREAM_WINDOW_START = 500;
export const STREAM_SENDME_INCREMENT = 50;

/** §5 Circuit handshake type for ntor v3 in CREATE2/EXTEND2. */
export const HANDSHAKE_TYPE_NTOR_V3 = 3;

/** §4 tor1 key material: Df (20) | Db (20) | Kf (16) | Kb (16). */
export const TOR1_KEY_MATERIAL_LENGTH = 72;
