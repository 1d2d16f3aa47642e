/**
 * src/collect-garbage.ts, used by the relay's memory cap and the client's
 * quiet collection: a requested collection frees dead buffers that were
 * promoted to the old generation, and it is an ordinary full collection, not
 * a forced one (V8's --trace-gc names forced ones "testing"): only an ordinary
 * one may keep the object shapes that no live object uses at that moment, and
 * with them the optimized code that embeds them. Run in child processes:
 * V8 flags are process-wide.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { collectGarbage } from '../../src/collect-garbage.js';

const COLLECT = fileURLToPath(new URL('../../src/collect-garbage.js', import.meta.url));
const WAIT_MS = 10_000;

/**
 * 12 MiB of buffers promoted (two young collections) and then dropped; then
 * one collection, `collectGarbage()` or, with the argument `forced`, gc().
 * Prints the ArrayBuffer bytes before it and once they fell under 1 MiB (or
 * after WAIT_MS).
 */
const SCRIPT = `
  const { collectGarbage } = await import(${JSON.stringify(COLLECT)});
  let held = [];
  for (let i = 0; i < 192; i++) held.push(new Uint8Array(65536));
  gc({ type: 'minor' });
  gc({ type: 'minor' });
  held = null;
  const before = process.memoryUsage().arrayBuffers;
  if (process.argv[1] === 'forced') await gc({ type: 'major', execution: 'async' });
  else if (!collectGarbage()) throw new Error('no collection offered');
  const deadline = Date.now() + ${WAIT_MS};
  while (process.memoryUsage().arrayBuffers >= 1024 * 1024 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  console.log(JSON.stringify({ before, after: process.memoryUsage().arrayBuffers }));
`;

interface Run {
  before: number;
  after: number;
  /** The full collections --trace-gc printed. */
  fullCollections: string[];
}

function run(mode: 'collectGarbage' | 'forced'): Run {
  const child = spawnSync(process.execPath, ['--expose-gc', '--trace-gc', '--input-type=module', '-e', SCRIPT, mode], {
    encoding: 'utf8',
    timeout: WAIT_MS + 20_000,
  });
  assert.equal(child.status, 0, child.stderr);
  const lines = child.stdout.trim().split('\n');
  const result = JSON.parse(lines[lines.length - 1]!) as { before: number; after: number };
  return { ...result, fullCollections: lines.filter((line) => line.includes('Mark-Compact')) };
}

test('collectGarbage: promoted dead buffers are freed by an ordinary full collection, not a forced one', { timeout: 2 * (WAIT_MS + 20_000) }, () => {
  const asked = run('collectGarbage');
  assert.ok(asked.before >= 12 * 1024 * 1024, `only ${asked.before} bytes of buffers before the collection`);
  assert.ok(asked.after < 1024 * 1024, `${asked.after} bytes of buffers still counted after the collection`);
  assert.ok(asked.fullCollections.length >= 1, 'no full collection ran');
  assert.deepEqual(asked.fullCollections.filter((line) => line.includes('testing')), [], 'a forced collection ran');

  // The control: gc() frees them too, and --trace-gc calls it "testing".
  const forced = run('forced');
  assert.ok(forced.after < 1024 * 1024, `${forced.after} bytes of buffers still counted after gc()`);
  assert.ok(forced.fullCollections.some((line) => line.includes('testing')), forced.fullCollections.join('\n'));
});

test('a collection can be asked for in this runtime without --expose-gc', () => {
  assert.equal(typeof (globalThis as { gc?: unknown }).gc, 'undefined', 'this test runs without --expose-gc');
  assert.equal(collectGarbage(), true);
  assert.equal(collectGarbage(), true);
});
