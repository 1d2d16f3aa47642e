/**
 * The authority's data directory (docs/protocol.md §9.5):
 *   <dataDir>/keys/                         the authority's keys (authority-keys.ts)
 *   <dataDir>/descriptors/<identity hex>    the last accepted descriptor of each relay
 *   <dataDir>/consensus                     the last published consensus
 * Directories are created 0700; files are replaced atomically (write, rename).
 */
import { chmodSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AlliumError } from '../src/errors.js';

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
