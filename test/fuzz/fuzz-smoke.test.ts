/**
 * The short form of `npm run fuzz` inside `npm test`: every fuzz target
 * (fuzz/targets/) on FUZZ_SMOKE_RUNS inputs (default 2000), same engine, a
 * fixed seed. No crash, both outcomes exercised where the format allows, and
 * every message of the committed seed corpus accepted (the corpus is valid
 * and still matches the formats).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runTarget } from '../../fuzz/engine.js';
import { TARGETS } from '../../fuzz/targets/index.js';

const RUNS = Number(process.env.FUZZ_SMOKE_RUNS ?? 2000);

/** Targets whose every input is accepted by design (total functions). */
const ALWAYS_ACCEPTS = new Set(['address']);

for (const target of TARGETS) {
  test(`fuzz smoke: ${target.name} (${RUNS} inputs)`, () => {
    const corpus = target.corpus();
    assert.ok(corpus.length > 0, `the corpus of ${target.name} is empty`);
    // The authority keeps state (an older descriptor for a known relay is refused), so its corpus check is the descriptor's.
    if (target.name !== 'authority-upload') {
      for (const [i, item] of corpus.entries()) assert.doesNotThrow(() => target.run(item), `corpus message ${i} of ${target.name} is refused`);
    }
    const result = runTarget(target, { runs: RUNS, seed: 0x5eed });
    const first = result.crashList[0];
    assert.equal(result.crashes, 0, first === undefined ? '' : `${first.error}\n  input ${first.input.slice(0, 600)}`);
    assert.equal(result.inputs, RUNS);
    assert.ok(result.accepted > 0, `${target.name}: nothing accepted`);
    if (!ALWAYS_ACCEPTS.has(target.name)) assert.ok(result.refused > 0, `${target.name}: nothing refused`);
  });
}
