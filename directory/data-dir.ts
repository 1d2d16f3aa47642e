/**
 * The authority's data directory (docs/protocol.md §9.5):
 *   <dataDir>/keys/                         the authority's keys (authority-keys.ts)
 *   <dataDir>/descriptors/<identity hex>    the last accepted descriptor of each relay
 *   <dataDir>/consensus                     the last published consensus
 *   <dataDir>/votes/<round>/<identity hex>  the votes held for a round (this authority's own included)
 *   <dataDir>/signed/<round>                the SHA-256 (base64) of the consensus body this authority signed for a round
 *   <dataDir>/history.json                  uptime and bandwidth history of the relays (relay-history.ts)
 * A round is named by its valid-after time in seconds since the epoch.
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
  readonly votesDir: string;
  readonly signedDir: string;
  readonly historyPath: string;

  constructor(root: string) {
    this.root = root;
    this.keysDir = join(root, 'keys');
    this.descriptorsDir = join(root, 'descriptors');
    this.consensusPath = join(root, 'consensus');
    this.votesDir = join(root, 'votes');
    this.signedDir = join(root, 'signed');
    this.historyPath = join(root, 'history.json');
    for (const dir of [root, this.keysDir, this.descriptorsDir, this.votesDir, this.signedDir]) {
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

  /** Stores a vote for round `validAfter` (ms) by the authority `identityHex`. */
  saveVote(validAfter: number, identityHex: string, text: string): void {
    const dir = join(this.votesDir, String(validAfter / 1000));
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    this.#writeAtomic(join(dir, identityHex), text);
  }

  /** The stored votes of round `validAfter` (unchecked), by identity hex. */
  loadVotes(validAfter: number): Map<string, string> {
    const out = new Map<string, string>();
    const dir = join(this.votesDir, String(validAfter / 1000));
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return out;
    }
    for (const name of names) {
      if (!/^[0-9a-f]{64}$/.test(name)) continue;
      try {
        out.set(name, readFileSync(join(dir, name), 'utf8'));
      } catch {
        // unreadable: skip it
      }
    }
    return out;
  }

  /** Records, durably, that this authority signed the consensus body with SHA-256 `digestB64` for round `validAfter`. */
  saveSigned(validAfter: number, digestB64: string): void {
    this.#writeAtomic(join(this.signedDir, String(validAfter / 1000)), `${digestB64}\n`);
  }

  /** The digest this authority signed for round `validAfter`, if any. */
  loadSigned(validAfter: number): string | undefined {
    try {
      return readFileSync(join(this.signedDir, String(validAfter / 1000)), 'utf8').trim();
    } catch {
      return undefined;
    }
  }

  /** Removes stored votes and signing records of rounds before `validAfter` (ms). */
  pruneRounds(validAfter: number): void {
    for (const dir of [this.votesDir, this.signedDir]) {
      let names: string[];
      try {
        names = readdirSync(dir);
      } catch {
        continue;
      }
      for (const name of names) {
        if (/^[0-9]{1,12}$/.test(name) && Number(name) * 1000 < validAfter) rmSync(join(dir, name), { recursive: true, force: true });
      }
    }
  }

  /** Stores the relays' history (JSON). */
  saveHistory(json: unknown): void {
    this.#writeAtomic(this.historyPath, `${JSON.stringify(json)}\n`);
  }

  /** The stored history, parsed, or undefined if there is none or it is not JSON. */
  loadHistory(): unknown {
    try {
      return JSON.parse(readFileSync(this.historyPath, 'utf8')) as unknown;
    } catch {
      return undefined;
    }
  }
}
