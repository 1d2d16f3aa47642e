/**
 * Secret key files: raw 32-byte secrets, written once with mode 0600 in a
 * 0700 directory, read back on restart.
 */
import { mkdirSync, readFileSync, writeFileSync, chmodSync, existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { AlliumError } from './errors.js';

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
