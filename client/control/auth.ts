/**
 * Control-port authentication (Tor's control-spec §3.5, §3.24, §5.1;
 * docs/control-port.md): hashed passwords as `tor --hash-password` writes
 * them (RFC 2440 iterated and salted S2K with SHA-1, `16:` + hex), the
 * 32-byte cookie file (mode 0600), and SAFECOOKIE's HMAC-SHA256 challenge.
 * Pure functions over bytes, plus the one function that writes the cookie.
 */
import { chmodSync, writeFileSync } from 'node:fs';
import { crypto } from '../../src/crypto/crypto.js';
import { AlliumError } from '../../src/errors.js';
import { fromHex, hex } from '../../src/bytes.js';

/** Cookie length (bytes), as Tor requires. */
export const COOKIE_BYTES = 32;
/** SAFECOOKIE nonces are 32 bytes. */
export const SAFECOOKIE_NONCE_BYTES = 32;

const SERVER_TO_CONTROLLER = new TextEncoder().encode('Tor safe cookie authentication server-to-controller hash');
const CONTROLLER_TO_SERVER = new TextEncoder().encode('Tor safe cookie authentication controller-to-server hash');

/** S2K: salt (8 bytes) then the count byte. */
const S2K_SPECIFIER_BYTES = 9;
/** The count byte `tor --hash-password` uses: 65536 bytes hashed. */
export const S2K_DEFAULT_COUNT_BYTE = 0x60;

/** Bytes an RFC 2440 count byte asks to hash: (16 + low nibble) << (high nibble + 6). */
function s2kCount(c: number): number {
  return (16 + (c & 15)) << ((c >> 4) + 6);
}

/**
 * RFC 2440 §3.6.1.3 iterated and salted S2K with SHA-1, as Tor computes it:
 * `salt || secret`, repeated (the last copy cut short) until `count` bytes,
 * hashed once. Returns the 20-byte digest.
 */
export function s2kDigest(salt: Uint8Array, countByte: number, secret: Uint8Array): Uint8Array {
  const unit = new Uint8Array(salt.length + secret.length);
  unit.set(salt);
  unit.set(secret, salt.length);
  const count = Math.max(s2kCount(countByte), unit.length);
  const all = new Uint8Array(count);
  for (let at = 0; at < count; at += unit.length) all.set(unit.subarray(0, Math.min(unit.length, count - at)), at);
  return crypto.sha1(all);
}

/** `16:` + 60 hex digits: a hashed password for `secret` with `salt` (8 random bytes by default). */
export function hashPassword(secret: string, salt: Uint8Array = crypto.randomBytes(8), countByte = S2K_DEFAULT_COUNT_BYTE): string {
  if (salt.length !== 8) throw new AlliumError('ERR_CONFIG', 'the S2K salt is 8 bytes');
  const digest = s2kDigest(salt, countByte, new TextEncoder().encode(secret));
  return `16:${hex(Uint8Array.of(...salt, countByte, ...digest)).toUpperCase()}`;
}

/** A hashed password, decoded. */
export interface HashedPassword {
  salt: Uint8Array;
  countByte: number;
  digest: Uint8Array;
}

/** Parse `16:` + 58 hex digits (Tor's HashedControlPassword). Throws AlliumError ERR_CONFIG otherwise. */
export function parseHashedPassword(text: string): HashedPassword {
  const m = /^16:([0-9A-Fa-f]{58})$/.exec(text.trim());
  if (m === null) throw new AlliumError('ERR_CONFIG', 'a hashed control password is "16:" and 58 hex digits, as `tor --hash-password` prints');
  const bytes = fromHex(m[1]!);
  return { salt: bytes.slice(0, 8), countByte: bytes[8]!, digest: bytes.slice(S2K_SPECIFIER_BYTES) };
}

/** Whether `secret` hashes to `hashed`, compared in constant time. */
export function passwordMatches(hashed: HashedPassword, secret: Uint8Array): boolean {
  return constantTimeEqual(s2kDigest(hashed.salt, hashed.countByte, secret), hashed.digest);
}

/** SAFECOOKIE's server hash: HMAC-SHA256(server-to-controller key, cookie | clientNonce | serverNonce). */
export function safeCookieServerHash(cookie: Uint8Array, clientNonce: Uint8Array, serverNonce: Uint8Array): Uint8Array {
  return crypto.hmacSha256(SERVER_TO_CONTROLLER, Uint8Array.of(...cookie, ...clientNonce, ...serverNonce));
}

/** SAFECOOKIE's controller hash, the only AUTHENTICATE string accepted after AUTHCHALLENGE. */
export function safeCookieClientHash(cookie: Uint8Array, clientNonce: Uint8Array, serverNonce: Uint8Array): Uint8Array {
  return crypto.hmacSha256(CONTROLLER_TO_SERVER, Uint8Array.of(...cookie, ...clientNonce, ...serverNonce));
}

/** Equal length and equal bytes, in time that depends only on the length. */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/** Make a fresh cookie and write it to `path` with mode 0600 (replacing any old one). Returns the cookie. */
export function writeCookieFile(path: string, cookie: Uint8Array = crypto.randomBytes(COOKIE_BYTES)): Uint8Array {
  writeFileSync(path, cookie, { mode: 0o600 });
  chmodSync(path, 0o600); // an existing file keeps its mode through writeFileSync
  return cookie;
}
