/**
 * LinkAffinity (relay/link-affinity.ts), exactly, with an injected clock:
 * every link of one address goes to one worker while it has links, and for
 * retainMs after its last link closed; then the address is free to go
 * anywhere. Remembered addresses are bounded; a dead worker is forgotten.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LinkAffinity } from '../../relay/link-affinity.js';

test('LinkAffinity: one worker per address while it has links and for retainMs after; counts links relay-wide', () => {
  let now = 0;
  const a = new LinkAffinity<string>({ retainMs: 1000, now: () => now });
  assert.equal(a.workerOf('x'), undefined);
  a.add('x', 'w1');
  a.add('x', 'w1');
  a.add('y', 'w2');
  assert.deepEqual([a.workerOf('x'), a.workerOf('y'), a.links('x'), a.links('y'), a.size], ['w1', 'w2', 2, 1, 2]);
  a.remove('x');
  assert.deepEqual([a.workerOf('x'), a.links('x')], ['w1', 1]);
  a.remove('x');
  assert.deepEqual([a.links('x'), a.size], [0, 1]);
  // Idle: still w1's for retainMs (its drained bucket has not refilled yet).
  now = 999;
  assert.equal(a.workerOf('x'), 'w1');
  a.add('x', 'w1');
  a.remove('x');
  now = 999 + 999;
  assert.equal(a.workerOf('x'), 'w1', 'the retention restarts when the last link closes again');
  now = 999 + 1000;
  assert.equal(a.workerOf('x'), undefined);
  a.add('x', 'w2');
  assert.deepEqual([a.workerOf('x'), a.links('x')], ['w2', 1]);
  a.remove('nobody'); // nothing to release: no effect
  assert.equal(a.size, 2);
});

test('LinkAffinity: at most maxIdle addresses remembered (oldest first); a dead worker is forgotten', () => {
  const now = 0;
  const a = new LinkAffinity<string>({ retainMs: 60_000, maxIdle: 2, now: () => now });
  for (const address of ['p', 'q', 'r']) {
    a.add(address, 'w1');
    a.remove(address);
  }
  assert.deepEqual(['p', 'q', 'r'].map((x) => a.workerOf(x)), [undefined, 'w1', 'w1']);
  a.add('s', 'w2');
  a.add('t', 'w1');
  a.dropWorker('w1');
  assert.deepEqual(['q', 'r', 's', 't'].map((x) => a.workerOf(x)), [undefined, undefined, 'w2', undefined]);
  assert.deepEqual([a.size, a.links('t')], [1, 0]);
});
