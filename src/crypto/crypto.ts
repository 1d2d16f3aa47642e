/**
 * The backend the running code uses. Code that wants a primitive imports
 * `crypto` from here; tests may pass `nobleCrypto` (imported from
 * noble-backend.ts itself) where a function takes a backend. This module does
 * not load the noble backend: a running node never uses it, and its modules
 * cost about 2 MiB of V8 heap (sources and code) in every process.
 */
import { nodeCrypto } from './node-backend.js';

export type { CryptoBackend, RunningDigest, StreamCipher } from './backend.js';
export { nodeCrypto } from './node-backend.js';

export const crypto = nodeCrypto;
