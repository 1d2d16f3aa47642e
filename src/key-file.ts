/**
 * Secret key files: raw 32-byte secrets, written once with mode 0600 in a
 * 0700 directory, read back on restart; and signing key files (a signing
 * seed and its certificate, docs/protocol.md §8.2.3, §9.1), replaced
 * atomically. Relays and authorities share both.
 */
import { mkdirSync, readFileSync, writeFileSync, chmodSync, existsSync, renameSync } from 'node:fs';
import { dirname } from 'node:path';
import { concat, equalBytes } from './bytes.js';
import { crypto } from './crypto/crypto.js';
import { AlliumError } from './errors.js';
import { decodeSigningKeyCert, SIGNING_KEY_CERT_LENGTH, type CertPurpose, type SigningKeySigner } from './netdoc/signing-key-cert.js';

/**
 * The 32-byte secret at `path`, or a new one from `create()` written there
 * (mode 0600, parent directories 0700) when the file does not exist. The one
 * key-file loader of relays and authorities. Throws AlliumError ERR_CONFIG
 * for a file of another length; fs errors (permissions, a racing creator) pass through.
 */
export function loadOrCreateSecret(path: string, create: () => Uint8Array): Uint8Array {
  if (existsSync(path)) {
    const bytes = new Uint8Array(readFileSync(path));
    if (bytes.length !== 32) throw new AlliumError('ERR_CONFIG', `key file ${path}: expected 32 bytes, found ${bytes.length}`);
    return bytes;
  }
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const secret = create();
  writeFileSync(path, secret, { mode: 0o600, flag: 'wx' });
  chmodSync(path, 0o600);
  return secret;
}

/** Writes a signing key file at `path` atomically: seed ‖ certificate, mode 0600, parent directory 0700. */
export function saveSignerFile(path: string, signer: SigningKeySigner): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, concat(signer.signingSeed, signer.cert.bytes), { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
}

/**
 * The signing key file at `path`, checked: its certificate is a genuine
 * `purpose` certificate for this seed's key. Undefined if there is no file.
 * Does not look at the clock. Throws AlliumError ERR_CONFIG for a file that
 * is not a valid one.
 */
export function loadSignerFile(path: string, purpose: CertPurpose): SigningKeySigner | undefined {
  if (!existsSync(path)) return undefined;
  const bytes = new Uint8Array(readFileSync(path));
  if (bytes.length !== 32 + SIGNING_KEY_CERT_LENGTH) throw new AlliumError('ERR_CONFIG', `signing key file ${path}: expected ${32 + SIGNING_KEY_CERT_LENGTH} bytes, found ${bytes.length}`);
  const signingSeed = bytes.slice(0, 32);
  let cert;
  try {
    cert = decodeSigningKeyCert(purpose, bytes.subarray(32));
  } catch (cause) {
    throw new AlliumError('ERR_CONFIG', `signing key file ${path}: ${(cause as Error).message}`, { cause });
  }
  if (!equalBytes(crypto.ed25519PublicKey(signingSeed), cert.signingKey)) {
    throw new AlliumError('ERR_CONFIG', `signing key file ${path}: the certificate is not for this signing key`);
  }
  return { signingSeed, cert };
}
