/**
 * Fuzz target for consensus diffs (src/netdoc/consensus-diff.ts, docs/protocol.md
 * §8.9), which a client applies to the consensus it holds when a directory
 * cache sends one (client/dir-via-relay.ts): the diff text is the input, and
 * the bases are a few fixed consensuses (signed with the fixed keys of
 * netdoc.ts). Generated inputs are real diffs from a base to another
 * consensus; mutated ones mostly keep their `from` line, so they reach
 * applyConsensusDiff on the base they name.
 *
 * Laws: a parsed diff's commands are in strictly decreasing order without
 * overlap; a diff that applies yields a text whose SHA-256 is its `to`; and
 * when that text has the consensus layout, the diff makeConsensusDiff computes
 * from the base to it parses and applies to the same text.
 */
import fc from 'fast-check';
import { applyConsensusDiff, consensusDigest, makeConsensusDiff, parseConsensusDiff } from '../../src/netdoc/consensus-diff.js';
import { compareBytes } from '../../src/netdoc/text.js';
import { loadCorpus } from '../corpus.js';
import { check, law, type FuzzInput, type FuzzTarget } from '../engine.js';
import { consensusDoc } from './netdoc.js';

let bases: string[] | undefined;

/** The fixed base consensuses (made on first use: signing takes a few ms each). */
function baseConsensuses(): string[] {
  bases ??= fc.sample(consensusDoc, { seed: 71, numRuns: 4 });
  return bases;
}

/** A diff from one of the bases to another consensus (or to a base, possibly itself). */
const diffDoc: fc.Arbitrary<string> = fc
  .record({ base: fc.integer({ min: 0, max: 3 }), to: fc.oneof(consensusDoc, fc.integer({ min: 0, max: 3 }).map((i) => baseConsensuses()[i]!)) })
  .map(({ base, to }) => makeConsensusDiff(baseConsensuses()[base]!, to));

export const consensusDiffTarget: FuzzTarget<string> = {
  name: 'consensus-diff',
  // Each generated diff signs a consensus: fewer distinct ones per batch, reused (mutation is what explores).
  generatedPerBatch: 20,
  description: 'parseConsensusDiff, then applyConsensusDiff to the fixed base it names; the result hashes to "to", and a recomputed diff from the base reproduces it',
  kind: 'text',
  modules: ['src/netdoc/consensus-diff.ts'],
  maxRandomLength: 4000,
  arbitrary: () => diffDoc,
  corpus: () => loadCorpus('consensus-diff', 'text'),
  run(input) {
    const diff = parseConsensusDiff(input);
    let limit = Infinity;
    for (const c of diff.commands) {
      const first = c.op === 'a' ? c.start + 1 : c.start;
      const last = c.op === 'a' ? c.start : c.end;
      check(last < limit && first <= last + 1, () => `commands not strictly decreasing: ${c.start},${c.end}${c.op}`);
      check((c.op === 'd') === (c.lines.length === 0), () => `command ${c.start}${c.op} with ${c.lines.length} lines`);
      limit = first;
    }
    const base = baseConsensuses().find((b) => compareBytes(consensusDigest(b), diff.from) === 0);
    if (base === undefined) return; // parsed, but made for a consensus this target does not hold
    const result = applyConsensusDiff(base, input);
    check(compareBytes(consensusDigest(result), diff.to) === 0, () => 'the result does not hash to "to"');
    let again: string;
    try {
      again = makeConsensusDiff(base, result);
    } catch {
      return; // the result is not laid out as a consensus: nothing more to compare
    }
    law('recomputed diff', () => check(applyConsensusDiff(base, again) === result, () => 'a recomputed diff gives another text'));
  },
};

/** The seed corpus: diffs between the bases and a few other consensuses (deterministic). */
export function makeConsensusDiffCorpus(): Record<string, FuzzInput[]> {
  const b = baseConsensuses();
  const others = fc.sample(consensusDoc, { seed: 72, numRuns: 4 });
  return {
    'consensus-diff': [makeConsensusDiff(b[0]!, b[0]!), makeConsensusDiff(b[0]!, b[1]!), makeConsensusDiff(b[1]!, b[0]!), makeConsensusDiff(b[2]!, b[3]!), ...others.map((o, i) => makeConsensusDiff(b[i]!, o))],
  };
}
