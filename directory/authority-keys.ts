/**
 * An authority's keys on disk (docs/protocol.md §9.1):
 *
 *   keys/authority_identity_key   32-byte Ed25519 identity seed, 0600 — may be
 *                                 absent while the authority runs (kept offline)
 *   keys/authority_signing_key    32-byte Ed25519 signing seed followed by its
 *                                 201-byte certificate (§8.6), 0600
 *
 * The signing key file is replaced atomically (write, rename), so a running
 * authority that re-reads it always sees a matching seed and certificate.
 * `AuthorityKeys` gives the signer for each document: it re-reads the file
 * when it changed (an operator ran `allium authority new-signing-key`), and,
 * when the identity key is online, makes a new signing key itself before the
 * current one would expire during the document's validity.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { debuglog } from 'node:util';
import { equalBytes, hex } from '../src/bytes.js';
import { crypto } from '../src/crypto/crypto.js';
import { AlliumError } from '../src/errors.js';
import { loadOrCreateSecret, loadSignerFile, saveSignerFile } from '../src/key-file.js';
import { makeAuthorityCert, type AuthoritySigner } from '../src/netdoc/authority-cert.js';
import { formatTime } from '../src/netdoc/text.js';

const log = debuglog('allium:directory');

export const IDENTITY_KEY_FILE = 'authority_identity_key';
export const SIGNING_KEY_FILE = 'authority_signing_key';
/** Default lifetime of a signing-key certificate: 30 days. */
export const DEFAULT_SIGNING_KEY_LIFETIME_MS = 30 * 24 * 3600_000;

/** Path of the identity seed file in `dataDir`. */
export function identityKeyPath(dataDir: string): string {
  return join(dataDir, 'keys', IDENTITY_KEY_FILE);
}

/** Path of the signing key file in `dataDir`. */
export function signingKeyPath(dataDir: string): string {
  return join(dataDir, 'keys', SIGNING_KEY_FILE);
}

/** Reads a 32-byte identity seed file. Throws AlliumError ERR_CONFIG if it is missing or not 32 bytes. */
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

/** The identity seed in `dataDir`, created (0600) if missing. */
export function loadOrCreateIdentitySeed(dataDir: string, random: (n: number) => Uint8Array = crypto.randomBytes): Uint8Array {
  return loadOrCreateSecret(identityKeyPath(dataDir), () => random(32));
}

/**
 * A new signing key certified by `identitySeed` from `now` (rounded down to
 * the second) for `lifetimeMs` (rounded up to the second).
 */
export function newSigner(identitySeed: Uint8Array, now: number, lifetimeMs: number, random: (n: number) => Uint8Array = crypto.randomBytes): AuthoritySigner {
  const published = Math.floor(now / 1000) * 1000;
  const expires = published + Math.max(1000, Math.ceil(lifetimeMs / 1000) * 1000);
  const signingSeed = random(32);
  return { signingSeed, cert: makeAuthorityCert(identitySeed, signingSeed, published, expires) };
}

/** Writes the signing key file atomically (mode 0600, keys directory 0700). */
export function saveSigner(dataDir: string, signer: AuthoritySigner): void {
  saveSignerFile(signingKeyPath(dataDir), signer);
}

/**
 * The signing key file's seed and certificate, checked (the certificate
 * verifies and certifies this seed's key), or undefined if the file does not
 * exist. Throws AlliumError ERR_CONFIG for a file that is not a valid one.
 */
export function loadSigner(dataDir: string): AuthoritySigner | undefined {
  return loadSignerFile(signingKeyPath(dataDir), 'authority');
}

export interface AuthorityKeysOptions {
  dataDir: string;
  now: () => number;
  /** Lifetime of signing keys this authority makes itself; default 30 days. */
  signingKeyLifetimeMs?: number;
  random?: (n: number) => Uint8Array;
}

/**
 * The keys of a running authority. The identity comes from the identity key
 * file if present, else from the signing key's certificate (identity kept
 * offline). With neither file, a new identity and signing key are made.
 */
export class AuthorityKeys {
  readonly identity: Uint8Array;
  readonly #opts: AuthorityKeysOptions;
  readonly #lifetimeMs: number;
  readonly #identitySeed: Uint8Array | undefined;
  #signer: AuthoritySigner | undefined;
  /** The key in use before the file last changed: still used while the new one is not yet usable. */
  #previous: AuthoritySigner | undefined;
  #fileStamp = '';

  /** Throws AlliumError ERR_CONFIG when the files on disk cannot be used. */
  constructor(opts: AuthorityKeysOptions) {
    this.#opts = opts;
    this.#lifetimeMs = opts.signingKeyLifetimeMs ?? DEFAULT_SIGNING_KEY_LIFETIME_MS;
    if (!(this.#lifetimeMs >= 1000)) throw new AlliumError('ERR_CONFIG', 'signing key lifetime must be at least 1 s');
    const idPath = identityKeyPath(opts.dataDir);
    const signer = loadSigner(opts.dataDir);
    if (existsSync(idPath) || signer === undefined) {
      this.#identitySeed = loadOrCreateIdentitySeed(opts.dataDir, opts.random);
      this.identity = crypto.ed25519PublicKey(this.#identitySeed);
    } else {
      this.#identitySeed = undefined;
      this.identity = signer.cert.identity;
    }
    this.#fileStamp = this.#stamp();
    if (signer !== undefined && equalBytes(signer.cert.identity, this.identity)) this.#signer = signer;
    else if (signer !== undefined) log('signing key file is for another identity; replacing it');
    if (this.#signer === undefined) this.#roll();
  }

  /** Whether the identity key is on disk (so signing keys can be made without the operator). */
  get identityOnline(): boolean {
    return this.#identitySeed !== undefined;
  }

  /** The signing key in use now (may be about to be replaced by `signerFor`). */
  get current(): AuthoritySigner {
    return this.#signer!;
  }

  /**
   * The signer for a document valid until `validUntil` (ms): the signing key
   * file's key, re-read if it changed, provided its certificate is already
   * published and does not expire before `validUntil` (so every signature
   * stays verifiable for the document's whole life, §9.1). Otherwise, with
   * the identity key online, a new signing key is made and saved first.
   * Throws AlliumError ERR_CONFIG when no usable key exists (identity
   * offline and the certificate too old: run `allium authority new-signing-key`).
   */
  signerFor(validUntil: number): AuthoritySigner {
    this.#reloadIfChanged();
    const now = this.#opts.now();
    const usable = (s: AuthoritySigner | undefined): s is AuthoritySigner => s !== undefined && s.cert.published <= now && s.cert.expires >= validUntil;
    if (usable(this.#signer)) return this.#signer;
    if (usable(this.#previous)) return this.#previous;
    if (this.#identitySeed === undefined) {
      throw new AlliumError(
        'ERR_CONFIG',
        `the signing key certificate (expires ${formatTime(this.#signer!.cert.expires)}) does not cover a document valid until ${formatTime(validUntil)}; ` +
          'the identity key is offline: run `allium authority new-signing-key`',
      );
    }
    this.#roll(Math.max(this.#lifetimeMs, validUntil - now + 1000));
    return this.#signer!;
  }

  #roll(lifetimeMs = this.#lifetimeMs): void {
    const signer = newSigner(this.#identitySeed!, this.#opts.now(), lifetimeMs, this.#opts.random);
    saveSigner(this.#opts.dataDir, signer);
    this.#previous = undefined;
    this.#signer = signer;
    this.#fileStamp = this.#stamp();
    log('new signing key %s, certified until %s', hex(signer.cert.signingKey).slice(0, 16), formatTime(signer.cert.expires));
  }

  #stamp(): string {
    try {
      const st = statSync(signingKeyPath(this.#opts.dataDir));
      return `${st.ino}:${st.mtimeMs}:${st.size}`;
    } catch {
      return '';
    }
  }

  #reloadIfChanged(): void {
    const stamp = this.#stamp();
    if (stamp === this.#fileStamp) return;
    this.#fileStamp = stamp;
    try {
      const signer = loadSigner(this.#opts.dataDir);
      if (signer === undefined) return;
      if (!equalBytes(signer.cert.identity, this.identity)) {
        log('ignoring a signing key file for another identity');
        return;
      }
      if (equalBytes(signer.cert.signingKey, this.#signer!.cert.signingKey)) return;
      log('loaded signing key %s, certified until %s', hex(signer.cert.signingKey).slice(0, 16), formatTime(signer.cert.expires));
      this.#previous = this.#signer;
      this.#signer = signer;
    } catch (error) {
      log('ignoring an unusable signing key file: %s', (error as Error).message);
    }
  }
}
