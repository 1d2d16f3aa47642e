/**
 * The committed seed corpus (fuzz/corpus/<target>/): valid messages the
 * mutators start from. Bytes are stored as one hex file per message
 * (NNN.hex), text as NNN.txt. `npm run fuzz -- --make-corpus` rewrites it from
 * each target's `makeCorpus()`, which is deterministic (fixed keys, fixed
 * seeds), so the files only change when a format does.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FuzzInput } from './engine.js';

/** The repository root: this file runs as dist/fuzz/corpus.js. */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CORPUS_DIR = join(REPO_ROOT, 'fuzz', 'corpus');

/** The committed corpus of `target` (empty if there is none yet). */
export function loadCorpus<I extends FuzzInput>(target: string, kind: 'bytes' | 'text'): I[] {
  const dir = join(CORPUS_DIR, target);
  if (!existsSync(dir)) return [];
  const files = readdirSync(dir).sort();
  if (kind === 'text') return files.filter((f) => f.endsWith('.txt')).map((f) => readFileSync(join(dir, f), 'utf8') as I);
  return files.filter((f) => f.endsWith('.hex')).map((f) => new Uint8Array(Buffer.from(readFileSync(join(dir, f), 'utf8').trim(), 'hex')) as I);
}

/** Replace the committed corpus of `target` with `items`. */
export function writeCorpus(target: string, items: readonly FuzzInput[]): void {
  const dir = join(CORPUS_DIR, target);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  items.forEach((item, i) => {
    const name = String(i).padStart(3, '0');
    if (typeof item === 'string') writeFileSync(join(dir, `${name}.txt`), item);
    else writeFileSync(join(dir, `${name}.hex`), `${Buffer.from(item).toString('hex')}\n`);
  });
}

/** A 32-byte secret derived from a label: the corpus keys are fixed, so the corpus is reproducible. */
export function fixedSecret(label: string): Uint8Array {
  return new Uint8Array(createHash('sha256').update(`allium-fuzz/${label}`).digest());
}
