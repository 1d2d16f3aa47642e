/**
 * The bandwidth-test document (docs/protocol.md §6.5, §9.4): every relay
 * serves it on BEGIN_DIR streams so authorities can measure how fast data
 * comes through a one-hop circuit from it. Its body is a fixed number of
 * bytes whose content means nothing (cells are encrypted anyway).
 */

/** The path of the document on a relay's directory streams. */
export const BANDWIDTH_TEST_PATH = '/allium/v1/bandwidth-test';
/** The size of its body, bytes. */
export const BANDWIDTH_TEST_BYTES = 256 * 1024;
