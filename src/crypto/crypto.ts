/**
 * The backend the running code uses. Code that wants a primitive imports
 * `crypto` from here; tests may pass `nobleCrypto` where a function takes a backend.
 */
import { nodeCrypto } from './node-backend.js';

export type { CryptoBackend, RunningDigest, StreamCipher } from './backend.js';
export { nobleCrypto } from './noble-backend.js';
export { nodeCrypto } from './node-backend.js';

export const crypto = nodeCrypto;
