/**
 * A relay's ntor onion keys over time (docs/protocol.md §8.2.2): the current
 * key, which the descriptor advertises, and the previous one, still accepted
 * for a grace period after a rotation so that clients holding an older
 * consensus can still extend to the relay. Kept in <dataDir>/keys as
 * `ntor_x25519` (current) and `ntor_x25519.previous` (mode 0600); a key's age
 * is its file's modification time. CREATE2 finds its key by the onion key the
 * client named (KEYID(B) in the ntor-v3 onionskin).
 */
import { existsSync, renameSync, rmSync, statSync, writeFileSync, chmodSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { equalBytes } from '../src/bytes.js';
import { crypto } from '../src/crypto/crypto.js';
import type { NtorV3RelaySecret } from '../src/crypto/ntor-v3.js';
import { AlliumError } from '../src/errors.js';

export const CURRENT_FILE = 'ntor_x25519';
export const PREVIOUS_FILE = 'ntor_x25519.previous';

/** Finds the relay's ntor secret for the onion key a CREATE2 names (undefined: none we accept). */
export interface OnionKeySource {
  find(onionKey: Uint8Array): NtorV3RelaySecret | undefined;
}

interface Held {
  secret: NtorV3RelaySecret;
  /** ms since the epoch when it became current. */
  since: number;
}

function readSecret(path: string): Uint8Array {
  const bytes = new Uint8Array(readFileSync(path));
  if (bytes.length !== 32) throw new AlliumError('ERR_CONFIG', `key file ${path}: expected 32 bytes, found ${bytes.length}`);
  return bytes;
}

export class OnionKeyRing implements OnionKeySource {
  readonly #dir: string;
  readonly #identity: Uint8Array;
  #current: Held;
  #previous: Held | null;

  /** The ring of the keys in `keysDir` (the current key must exist: loadRelayKeys creates it). */
  constructor(keysDir: string, identity: Uint8Array) {
    this.#dir = keysDir;
    this.#identity = identity;
    this.#current = this.#load(join(keysDir, CURRENT_FILE))!;
    this.#previous = this.#load(join(keysDir, PREVIOUS_FILE));
  }

  #load(path: string): Held | null {
    if (!existsSync(path)) return null;
    const secret = readSecret(path);
    return { secret: { identity: this.#identity, onionKey: crypto.x25519PublicKey(secret), onionSecret: secret }, since: statSync(path).mtimeMs };
  }

  get current(): NtorV3RelaySecret {
    return this.#current.secret;
  }

  /** When the current key became current, ms since the epoch. */
  get currentSince(): number {
    return this.#current.since;
  }

  /** The previous key and when it was replaced, or null. */
  get previous(): { secret: NtorV3RelaySecret; replacedAt: number } | null {
    return this.#previous === null ? null : { secret: this.#previous.secret, replacedAt: this.#current.since };
  }

  find(onionKey: Uint8Array): NtorV3RelaySecret | undefined {
    if (equalBytes(onionKey, this.#current.secret.onionKey)) return this.#current.secret;
    if (this.#previous !== null && equalBytes(onionKey, this.#previous.secret.onionKey)) return this.#previous.secret;
    return undefined;
  }

  /** Make a new current key; the current one becomes the previous (files updated, 0600). `now` is the rotation time. */
  rotate(now: number = Date.now(), secret: Uint8Array = crypto.randomBytes(32)): void {
    const currentPath = join(this.#dir, CURRENT_FILE);
    const previousPath = join(this.#dir, PREVIOUS_FILE);
    const fresh = `${currentPath}.new`;
    writeFileSync(fresh, secret, { mode: 0o600 });
    chmodSync(fresh, 0o600);
    renameSync(currentPath, previousPath);
    renameSync(fresh, currentPath);
    this.#previous = this.#current;
    this.#current = { secret: { identity: this.#identity, onionKey: crypto.x25519PublicKey(secret), onionSecret: secret }, since: now };
  }

  /** Forget the previous key (its grace period is over). */
  dropPrevious(): void {
    if (this.#previous === null) return;
    this.#previous.secret.onionSecret.fill(0);
    this.#previous = null;
    rmSync(join(this.#dir, PREVIOUS_FILE), { force: true });
  }
}

/**
 * What a rotation schedule says to do now: rotate when the current key is
 * `lifetimeMs` old, drop the previous key `graceMs` after it was replaced.
 */
export function onionKeyDue(ring: OnionKeyRing, now: number, lifetimeMs: number, graceMs: number): 'rotate' | 'drop-previous' | null {
  if (now - ring.currentSince >= lifetimeMs) return 'rotate';
  const previous = ring.previous;
  if (previous !== null && now - previous.replacedAt >= graceMs) return 'drop-previous';
  return null;
}
