/**
 * The client's consensus cache on disk (docs/protocol.md §11): the last
 * accepted consensus, exactly as received, in `<dir>/cached-consensus`
 * (directory 0700, file 0600, replaced atomically), so a restarted client
 * can work while it is still valid even if no authority answers.
 */
import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const CACHE_FILE = 'cached-consensus';

export class ConsensusCache {
  readonly path: string;
  readonly #dir: string;

  constructor(dir: string) {
    this.#dir = dir;
    this.path = join(dir, CACHE_FILE);
  }

  /** The cached text, or undefined if there is none (or it cannot be read). */
  load(): string | undefined {
    try {
      return readFileSync(this.path, 'utf8');
    } catch {
      return undefined;
    }
  }

  /** Replaces the cached consensus (write to a temporary file, then rename). Throws the fs error. */
  save(text: string): void {
    mkdirSync(this.#dir, { recursive: true, mode: 0o700 });
    const tmp = `${this.path}.tmp-${process.pid}`;
    writeFileSync(tmp, text, { mode: 0o600 });
    chmodSync(tmp, 0o600);
    renameSync(tmp, this.path);
  }
}
