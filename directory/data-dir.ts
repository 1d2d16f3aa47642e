/**
 * The authority's data directory (docs/protocol.md §9.5):
 *   <dataDir>/keys/authority_identity_key   32-byte Ed25519 seed, mode 0600
 *   <dataDir>/descriptors/<identity hex>    the last accepted descriptor of each relay
 *   <dataDir>/consensus                     the last published consensus
 * Directories are created 0700; files are replaced atomically (write, rename).
 */
import { chmodSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AlliumError } from '../src/errors.js';
import { loadOrCreateSecret } from '../src/key-file.js';

export const IDENTITY_KEY_FILE = 'authority_identity_key';

export class DataDir {
  readonly root: string;
  readonly keysDir: string;
  readonly descriptorsDir: string;
  readonly consensusPath: string;

  constructor(root: string) {
    this.root = root;
    this.keysDir = join(root, 'keys');
    this.descriptorsDir = join(root, 'descriptors');
    this.consensusPath = join(root, 'consensus');
    for (const dir of [root, this.keysDir, this.descriptorsDir]) {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      if (!statSync(dir).isDirectory()) throw new AlliumError('ERR_CONFIG', `${dir} is not a directory`);
    }
    chmodSync(this.keysDir, 0o700);
  }

  /** The authority's identity seed, created (0600) if missing (src/key-file.ts). */
  loadOrCreateIdentitySeed(create: () => Uint8Array): Uint8Array {
    return loadOrCreateSecret(join(this.keysDir, IDENTITY_KEY_FILE), create);
  }

  #writeAtomic(path: string, text: string): void {
    const tmp = `${path}.tmp-${process.pid}`;
    writeFileSync(tmp, text, { mode: 0o600 });
    renameSync(tmp, path);
  }

  saveDescriptor(identityHex: string, text: string): void {
    this.#writeAtomic(join(this.descriptorsDir, identityHex), text);
  }

  removeDescriptor(identityHex: string): void {
    rmSync(join(this.descriptorsDir, identityHex), { force: true });
  }

  /** Every stored descriptor text (unchecked), by identity hex. */
  loadDescriptors(): Map<string, string> {
    const out = new Map<string, string>();
    for (const name of readdirSync(this.descriptorsDir)) {
      if (!/^[0-9a-f]{64}$/.test(name)) continue;
      try {
        out.set(name, readFileSync(join(this.descriptorsDir, name), 'utf8'));
      } catch {
        // unreadable file: skip it
      }
    }
    return out;
  }

  saveConsensus(text: string): void {
    this.#writeAtomic(this.consensusPath, text);
  }

  loadConsensus(): string | undefined {
    try {
      return readFileSync(this.consensusPath, 'utf8');
    } catch {
      return undefined;
    }
  }
}
