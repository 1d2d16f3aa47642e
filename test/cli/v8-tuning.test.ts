/**
 * cli/v8-tuning.ts: a process that called tuneV8ForCells() frees the
 * buffers a scavenge finds dead during that scavenge, so V8's count of
 * external memory (which decides when a full collection starts) holds only
 * live buffers right after it. Run in a child process: V8 flags are
 * process-wide.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import assert from 'node:assert/strict';

const TUNING = fileURLToPath(new URL('../../cli/v8-tuning.js', import.meta.url));
const COLLECT = fileURLToPath(new URL('../../src/collect-garbage.js', import.meta.url));

/**
 * 480 dead 16 KiB buffers (7.5 MiB: few enough that V8 starts no collection
 * for them on its own), one young collection; prints the ArrayBuffer bytes
 * before and right after it.
 */
const SCRIPT = `
  const { tuneV8ForCells } = await import(${JSON.stringify(TUNING)});
  await import(${JSON.stringify(COLLECT)});
  tuneV8ForCells();
  tuneV8ForCells();
  const { setFlagsFromString } = await import('node:v8');
  const { runInNewContext } = await import('node:vm');
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc');
  let made = 0;
  for (let i = 0; i < 480; i++) made += Buffer.allocUnsafeSlow(16384).length;
  const before = process.memoryUsage().arrayBuffers;
  gc({ type: 'minor' });
  const after = process.memoryUsage().arrayBuffers;
  console.log(JSON.stringify({ made, before, after }));
`;

test('tuneV8ForCells: the buffers a young collection finds dead are freed within it (idempotent)', () => {
  const run = spawnSync(process.execPath, ['--max-semi-space-size=2', '--input-type=module', '-e', SCRIPT], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(run.status, 0, run.stderr);
  const { made, before, after } = JSON.parse(run.stdout) as { made: number; before: number; after: number };
  assert.equal(made, 480 * 16384);
  assert.ok(before >= made, `only ${before} bytes of buffers before the collection`);
  assert.ok(after < 1024 * 1024, `${after} bytes of buffers still counted right after the collection`);
});
