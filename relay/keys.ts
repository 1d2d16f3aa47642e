/**
 * A relay's keys, kept in <dataDir>/keys with mode 0600 (docs/protocol.md
 * §8.2.3):
 *
 *   identity_ed25519   32-byte Ed25519 identity seed — absent in offline mode
 *   signing_ed25519    32-byte Ed25519 signing seed followed by its 201-byte
 *                      relay signing-key certificate (§8.6), replaced atomically
 *   link_x25519        X25519 link (Noise static) key
 *   ntor_x25519        X25519 ntor onion key (onion-keys.ts rotates it)
 *
 * Online mode (the identity seed is in the data directory, Tor's default):
 * the relay certifies a new signing key itself whenever the current one is
 * missing or near its expiry. Offline mode (the identity seed kept elsewhere):
 * the relay runs on the signing key and certificate that `allium keys sign`
 * made, warns from SIGNING_KEY_WARN_MS before expiry, and refuses to start
 * once the certificate has expired.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { equalBytes } from '../src/bytes.js';
import { crypto } from '../src/crypto/crypto.js';
import { AlliumError } from '../src/errors.js';
import { loadOrCreateSecret, loadSignerFile, saveSignerFile } from '../src/key-file.js';
import type { LinkIdentity, StaticKey } from '../src/link/channel.js';
import type { NtorV3RelaySecret } from '../src/crypto/ntor-v3.js';
import { makeSigningKeyCert, type SigningKeySigner } from '../src/netdoc/signing-key-cert.js';
import { formatTime } from '../src/netdoc/text.js';

export const IDENTITY_KEY_FILE = 'identity_ed25519';
export const SIGNING_KEY_FILE = 'signing_ed25519';
/** Default lifetime of a relay signing-key certificate: 30 days (torrc SigningKeyLifetime). */
export const DEFAULT_SIGNING_KEY_LIFETIME_MS = 30 * 86_400_000;
/** An offline relay warns this long before its signing-key certificate expires: 7 days. */
export const SIGNING_KEY_WARN_MS = 7 * 86_400_000;

export interface RelayKeys {
  /** The identity and the signing key that speaks for it; `identity.signer` is replaced when the signing key is renewed. */
  identity: LinkIdentity;
  linkKey: StaticKey;
  ntor: NtorV3RelaySecret;
  /** The identity seed in online mode; undefined when the identity key is kept offline. */
  identitySeed: Uint8Array | undefined;
}

export interface LoadRelayKeysOptions {
  /** The time, ms since the epoch; default Date.now(). */
  now?: number;
  /** Lifetime of signing keys certified in online mode; default DEFAULT_SIGNING_KEY_LIFETIME_MS. */
  signingKeyLifetimeMs?: number;
  /** Use the keys as they are on disk: make and renew nothing except missing link/onion keys (a relay's worker processes, after the main process loaded them). */
  readOnly?: boolean;
}

/** Path of the identity seed in `dataDir`. */
export function identityKeyPath(dataDir: string): string {
  return join(dataDir, 'keys', IDENTITY_KEY_FILE);
}

/** Path of the signing key file in `dataDir`. */
export function signingKeyPath(dataDir: string): string {
  return join(dataDir, 'keys', SIGNING_KEY_FILE);
}

/** Reads a 32-byte Ed25519 identity seed. Throws AlliumError ERR_CONFIG if it cannot be read or is not 32 bytes. */
export function readIdentitySeed(path: string): Uint8Array {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(readFileSync(path));
  } catch (cause) {
    throw new AlliumError('ERR_CONFIG', `cannot read identity key ${path}: ${(cause as Error).message}`, { cause });
  }
  if (bytes.length !== 32) throw new AlliumError('ERR_CONFIG', `identity key ${path}: expected 32 bytes, found ${bytes.length}`);
  return bytes;
}

/**
 * A new signing key certified by `identitySeed` from `now` (rounded down to
 * the second) for `lifetimeMs` (rounded up to the second, at least 1 s).
 * Throws DocumentError ERR_MALFORMED for a lifetime over 400 days.
 */
export function newRelaySigner(identitySeed: Uint8Array, now: number, lifetimeMs: number, random: (n: number) => Uint8Array = crypto.randomBytes): SigningKeySigner {
  const published = Math.floor(now / 1000) * 1000;
  const expires = published + Math.max(1000, Math.ceil(lifetimeMs / 1000) * 1000);
  const signingSeed = random(32);
  return { signingSeed, cert: makeSigningKeyCert('relay', identitySeed, signingSeed, published, expires) };
}

/** Writes the signing key file atomically (seed ‖ certificate, mode 0600, keys directory 0700). */
export function saveRelaySigner(dataDir: string, signer: SigningKeySigner): void {
  saveSignerFile(signingKeyPath(dataDir), signer);
}

/**
 * The signing key file's seed and certificate, checked (the certificate is a
 * genuine relay certificate for this seed's key), or undefined if there is no
 * file. Does not look at the clock. Throws AlliumError ERR_CONFIG for a file
 * that is not a valid one.
 */
export function loadRelaySigner(dataDir: string): SigningKeySigner | undefined {
  return loadSignerFile(signingKeyPath(dataDir), 'relay');
}

/**
 * Whether an online relay should certify a new signing key at `now`: when the
 * certificate is not yet valid, or has less than min(SIGNING_KEY_WARN_MS, half
 * its lifetime) left (a 30-day key is replaced 7 days before it expires).
 */
export function signingKeyDue(signer: SigningKeySigner, now: number): boolean {
  const { published, expires } = signer.cert;
  if (now < published) return true;
  return expires - now < Math.min(SIGNING_KEY_WARN_MS, (expires - published) / 2);
}

/** 'expired', 'expiring' (within SIGNING_KEY_WARN_MS of its expiry) or 'ok' at `now`. */
export function signingKeyState(signer: SigningKeySigner, now: number): 'ok' | 'expiring' | 'expired' {
  if (now >= signer.cert.expires) return 'expired';
  return signer.cert.expires - now <= SIGNING_KEY_WARN_MS ? 'expiring' : 'ok';
}

/** The command an operator runs to certify a new signing key for `dataDir`. */
export function signCommandHint(dataDir: string): string {
  return `allium keys sign --identity <the identity key file, ${IDENTITY_KEY_FILE}> --data-dir ${dataDir}`;
}

/**
 * Loads the relay's keys, making the missing link and onion keys. With the
 * identity seed in the data directory (online mode) — or with no identity and
 * no signing key at all, when a new identity is made — a missing, foreign or
 * due (signingKeyDue) signing key is replaced by a new one certified for
 * `signingKeyLifetimeMs`. Without the identity seed (offline mode) the signing
 * key file names the identity.
 * Throws AlliumError ERR_CONFIG for unusable key files and, in offline mode,
 * for a certificate that has expired or is not yet valid (naming the command
 * that certifies a new one).
 */
export function loadRelayKeys(dataDir: string, opts: LoadRelayKeysOptions = {}): RelayKeys {
  const dir = join(dataDir, 'keys');
  const now = opts.now ?? Date.now();
  const idPath = identityKeyPath(dataDir);
  let signer = loadRelaySigner(dataDir);
  let identitySeed: Uint8Array | undefined;
  if (existsSync(idPath)) identitySeed = readIdentitySeed(idPath);
  else if (signer === undefined) {
    if (opts.readOnly === true) throw new AlliumError('ERR_CONFIG', `no relay keys in ${dir}`);
    identitySeed = loadOrCreateSecret(idPath, () => crypto.randomBytes(32));
  }
  const identity = identitySeed !== undefined ? crypto.ed25519PublicKey(identitySeed) : signer!.cert.identity;
  if (identitySeed !== undefined && opts.readOnly !== true) {
    if (signer === undefined || !equalBytes(signer.cert.identity, identity) || signingKeyDue(signer, now)) {
      signer = newRelaySigner(identitySeed, now, opts.signingKeyLifetimeMs ?? DEFAULT_SIGNING_KEY_LIFETIME_MS);
      saveRelaySigner(dataDir, signer);
    }
  } else {
    if (signer === undefined) throw new AlliumError('ERR_CONFIG', `no signing key in ${dir}: ${signCommandHint(dataDir)}`);
    if (!equalBytes(signer.cert.identity, identity)) throw new AlliumError('ERR_CONFIG', `signing key file ${signingKeyPath(dataDir)} is certified for another identity than ${idPath}`);
    if (opts.readOnly !== true) {
      if (signingKeyState(signer, now) === 'expired') {
        throw new AlliumError(
          'ERR_CONFIG',
          `the relay's signing key certificate expired at ${formatTime(signer.cert.expires)} and the identity key is offline (no ${idPath}); ` +
            `certify a new signing key: ${signCommandHint(dataDir)}`,
        );
      }
      if (now < signer.cert.published) {
        throw new AlliumError('ERR_CONFIG', `the relay's signing key certificate is not valid before ${formatTime(signer.cert.published)} (is the clock right?)`);
      }
    }
  }
  const linkSecret = loadOrCreateSecret(join(dir, 'link_x25519'), () => crypto.randomBytes(32));
  const ntorSecret = loadOrCreateSecret(join(dir, 'ntor_x25519'), () => crypto.randomBytes(32));
  return {
    identity: { identity, signer: signer! },
    linkKey: { secret: linkSecret, public: crypto.x25519PublicKey(linkSecret) },
    ntor: { identity, onionKey: crypto.x25519PublicKey(ntorSecret), onionSecret: ntorSecret },
    identitySeed,
  };
}

/** What refreshSigningKey did: nothing, made a new key (online), or took the operator's new file (offline). */
export type SigningKeyRefresh = 'renewed' | 'reloaded' | null;

/**
 * A running relay's periodic look at its signing key (at `now`, ms). Online:
 * certify and save a new key when due. Either mode: take a signing key file
 * an operator replaced (`allium keys sign`) when it is for this identity and
 * expires later than the one in use. Replaces `keys.identity.signer` when it
 * changes. Never throws for a bad file (it keeps the key in use).
 */
export function refreshSigningKey(dataDir: string, keys: RelayKeys, now: number, lifetimeMs: number = DEFAULT_SIGNING_KEY_LIFETIME_MS): SigningKeyRefresh {
  const current = keys.identity.signer;
  let onDisk: SigningKeySigner | undefined;
  try {
    onDisk = loadRelaySigner(dataDir);
  } catch {
    onDisk = undefined;
  }
  if (
    onDisk !== undefined &&
    equalBytes(onDisk.cert.identity, keys.identity.identity) &&
    !equalBytes(onDisk.cert.signingKey, current.cert.signingKey) &&
    onDisk.cert.expires > current.cert.expires &&
    onDisk.cert.published <= now
  ) {
    keys.identity.signer = onDisk;
    return 'reloaded';
  }
  if (keys.identitySeed !== undefined && signingKeyDue(current, now)) {
    const signer = newRelaySigner(keys.identitySeed, now, lifetimeMs);
    saveRelaySigner(dataDir, signer);
    keys.identity.signer = signer;
    return 'renewed';
  }
  return null;
}
