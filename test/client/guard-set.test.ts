/**
 * Guards: sampled by guard-position bandwidth, primary guards first, a dead
 * guard skipped and retried on its schedule, the log line when the client
 * moves off its primary guards, and the set surviving a restart through the
 * state file (mode 0600). Time and randomness are injected.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GuardSet, MIN_FILTERED_SAMPLE, PRIMARY_RETRY, REMOVE_UNLISTED_MS, type GuardSetOptions } from '../../client/guard-set.js';
import { StateFile, parseClientState, formatClientState, MAX_STATE_BYTES } from '../../client/state-file.js';
import { computePositionWeights, classTotals } from '../../client/position-weights.js';
import type { PathRelay } from '../../client/path-selection.js';
import { hex } from '../../src/bytes.js';
import { AlliumError } from '../../src/errors.js';
import { consensusRelay } from '../support/consensus-relay.js';
import { sfc32 } from '../support/seeded-random.js';

const RV = ['Running', 'Valid'];

function network(guards = 30): PathRelay[] {
  const rs: PathRelay[] = [];
  for (let i = 1; i <= guards; i++) rs.push(consensusRelay(`guard${i}`, `10.${i}.0.1`, [...RV, 'Guard'], 1000 + 100 * i));
  for (let i = 1; i <= 5; i++) rs.push(consensusRelay(`middle${i}`, `20.${i}.0.1`, RV, 5000));
  return rs;
}

function clock(start = 1_700_000_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

function make(relays: PathRelay[], opts: GuardSetOptions & { state?: ConstructorParameters<typeof GuardSet>[0] } = {}) {
  const logs: string[] = [];
  const set = new GuardSet(opts.state ?? null, { random: sfc32(1), log: (m) => logs.push(m), ...opts });
  set.onConsensus(relays, computePositionWeights(classTotals(relays)));
  return { set, logs };
}

const byId = (relays: PathRelay[], id: string) => relays.find((r) => hex(r.identity) === id)!;

test('the sample: Guard-flagged relays only, at most the sample size, drawn by bandwidth', () => {
  const relays = network(40);
  const { set } = make(relays);
  const status = set.status();
  assert.equal(status.length, MIN_FILTERED_SAMPLE);
  for (const g of status) assert.match(g.nickname, /^guard\d+$/);
  assert.equal(new Set(status.map((g) => g.identity)).size, status.length);
  assert.equal(set.primary().length, 3);
  assert.deepEqual(
    set.primary().map((g) => g.identity),
    status.slice(0, 3).map((g) => g.identity),
    'before any is confirmed, the primary guards are the first sampled',
  );
  // Over many independent samples, heavier guards are sampled first more often.
  const firsts = new Map<string, number>();
  for (let seed = 0; seed < 400; seed++) {
    const s = new GuardSet(null, { random: sfc32(seed) });
    s.onConsensus(relays, computePositionWeights(classTotals(relays)));
    const first = s.status()[0]!.nickname;
    firsts.set(first, (firsts.get(first) ?? 0) + 1);
  }
  const light = (firsts.get('guard1') ?? 0) + (firsts.get('guard2') ?? 0) + (firsts.get('guard3') ?? 0);
  const heavy = (firsts.get('guard38') ?? 0) + (firsts.get('guard39') ?? 0) + (firsts.get('guard40') ?? 0);
  assert.ok(heavy > light, `heavy guards first ${heavy} times, light ones ${light}`);
});

test('every circuit uses the first primary guard; a success confirms it', () => {
  const relays = network();
  const { set } = make(relays);
  const first = set.primary()[0]!;
  for (let i = 0; i < 10; i++) assert.equal(hex(set.choose()!.identity), first.identity);
  set.markSucceeded(byId(relays, first.identity));
  const status = set.status().find((g) => g.identity === first.identity)!;
  assert.equal(status.confirmed, true);
  assert.equal(status.reachable, 'yes');
  assert.ok(status.confirmedOn !== null);
  // A guard that does not fit the path is passed over for the next primary one.
  const second = set.primary()[1]!;
  assert.equal(hex(set.choose((r) => hex(r.identity) !== first.identity)!.identity), second.identity);
});

test('a dead guard is skipped and retried on its schedule; off and back on the primary guards with a log line', () => {
  const relays = network();
  const c = clock();
  const { set, logs } = make(relays, { now: c.now });
  const [p1, p2, p3] = set.primary();
  set.markSucceeded(byId(relays, p1!.identity));

  // p1 dies: the next circuits use p2.
  const delay1 = set.markFailed(byId(relays, p1!.identity), 'link refused')!;
  assert.equal(delay1, PRIMARY_RETRY.baseMs, 'the first retry of a primary guard comes after the base delay');
  assert.match(logs.at(-1)!, /guard guard\d+ \([0-9a-f]{8}\) failed \(link refused\); retrying it in 30 s/);
  assert.equal(hex(set.choose()!.identity), p2!.identity);
  c.advance(delay1 - 1);
  assert.equal(hex(set.choose()!.identity), p2!.identity, 'not before its retry time');
  c.advance(1);
  assert.equal(hex(set.choose()!.identity), p1!.identity, 'tried again at its retry time');

  // It fails again: the delay grows (decorrelated jitter: between the base and 3x the last delay).
  const delay2 = set.markFailed(byId(relays, p1!.identity), 'link refused')!;
  assert.ok(delay2 >= PRIMARY_RETRY.baseMs && delay2 < 3 * delay1, `second delay ${delay2}`);
  assert.equal(set.status().find((g) => g.identity === p1!.identity)!.retryAt, c.now() + delay2);

  // All primary guards down: a non-primary guard, and the log says so once.
  set.markFailed(byId(relays, p2!.identity), 'link lost');
  set.markFailed(byId(relays, p3!.identity), 'link lost');
  const before = logs.length;
  const other = set.choose()!;
  assert.ok(![p1, p2, p3].some((p) => p!.identity === hex(other.identity)));
  const moved = logs.slice(before).join('\n');
  assert.match(moved, /all primary guards are unreachable or unusable \(guard\d+ .*, guard\d+ .*, guard\d+ .*\); using guard guard\d+/);
  set.choose();
  assert.equal(logs.filter((l) => l.startsWith('all primary guards')).length, 1, 'said once, not per circuit');

  // p2's retry time comes first (its delay is the base): back on a primary guard.
  c.advance(PRIMARY_RETRY.baseMs);
  const back = set.choose()!;
  assert.equal(hex(back.identity), p2!.identity);
  assert.match(logs.at(-1)!, /^back on primary guard guard\d+/);

  // A non-primary guard that is confirmed while primary guards are unconfirmed takes an unconfirmed one's place.
  set.markSucceeded(other);
  assert.deepEqual(
    set.primary().map((g) => g.identity),
    [p1!.identity, hex(other.identity), p2!.identity],
    'confirmed guards first, in confirmation order, then the sample order',
  );
});

test('when every sampled guard failed, all are tried again', () => {
  const relays = network(4);
  const { set, logs } = make(relays);
  for (const g of set.status()) set.markFailed(byId(relays, g.identity), 'down');
  const pick = set.choose();
  assert.ok(pick !== null);
  assert.ok(logs.some((l) => /every sampled guard failed recently; trying them all again/.test(l)));
  assert.equal(hex(pick.identity), set.primary()[0]!.identity);
});

test('an unlisted guard is not used, and leaves the sample after REMOVE_UNLISTED_MS', () => {
  const relays = network(25);
  const c = clock();
  const { set } = make(relays, { now: c.now });
  const p1 = set.primary()[0]!;
  const without = relays.filter((r) => hex(r.identity) !== p1.identity);
  const weights = computePositionWeights(classTotals(without));
  set.onConsensus(without, weights);
  assert.notEqual(hex(set.choose()!.identity), p1.identity);
  assert.equal(set.status().find((g) => g.identity === p1.identity)!.listed, false);
  c.advance(REMOVE_UNLISTED_MS + 1);
  set.onConsensus(without, weights);
  assert.equal(set.status().find((g) => g.identity === p1.identity), undefined);
  // Listed again later: it may be sampled again, but as a new guard.
  set.onConsensus(relays, computePositionWeights(classTotals(relays)));
});

test('guards persist across a restart: the state file (0600) keeps sample order and confirmed guards', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'allium-guards-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const relays = network();
  const file = new StateFile(join(dir, 'client'));
  let saves = 0;
  const { set } = make(relays, { onChange: () => saves++ });
  assert.ok(saves > 0, 'sampling changes the state');
  const first = set.choose()!;
  set.markSucceeded(first);
  const second = byId(relays, set.primary()[1]!.identity);
  set.markSucceeded(second);
  file.save({ ...set.state(), buildTimesMs: [12, 15.4, 30] });
  assert.equal(statSync(file.path).mode & 0o777, 0o600);
  assert.equal(statSync(join(dir, 'client')).mode & 0o777, 0o700);

  const loaded = file.load();
  assert.equal(loaded.problem, undefined);
  assert.deepEqual(loaded.state.buildTimesMs, [12, 15, 30]);
  const { set: again } = make(relays, { state: loaded.state, random: sfc32(999) });
  assert.deepEqual(again.state(), set.state(), 'a different random source changes nothing: nothing new is sampled');
  assert.deepEqual(again.primary(), set.primary());
  assert.equal(hex(again.choose()!.identity), hex(first.identity));
  assert.deepEqual(
    again.status().filter((g) => g.confirmed).map((g) => g.nickname),
    [first.nickname, second.nickname],
  );
});

test('state file: a missing file is empty; a damaged one is reported and ignored', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'allium-state-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = new StateFile(dir);
  assert.deepEqual(file.load(), { state: { guards: [], confirmed: [], buildTimesMs: [] } });
  writeFileSync(file.path, '{"version":1,"guards":[{"identity":"zz"}]}');
  const damaged = file.load();
  assert.match(damaged.problem!, /ignoring .*state: state file: guard 0: bad identity/);
  assert.deepEqual(damaged.state.guards, []);
  file.save({ guards: [], confirmed: [], buildTimesMs: [] });
  assert.match(readFileSync(file.path, 'utf8'), /^\{"version":1,/);
});

test('state file parser: truncated, oversized and malformed input are refused with a clear error', () => {
  const good = formatClientState({
    guards: [
      { identity: 'a'.repeat(64), nickname: 'g1', addedOn: 1, confirmedOn: 2, unlistedSince: null },
      { identity: 'b'.repeat(64), nickname: 'g2', addedOn: 3, confirmedOn: null, unlistedSince: 4 },
    ],
    confirmed: ['a'.repeat(64)],
    buildTimesMs: [10, 20],
  });
  assert.deepEqual(parseClientState(good).confirmed, ['a'.repeat(64)]);
  const refused = (text: string, code = 'ERR_MALFORMED') =>
    assert.throws(() => parseClientState(text), (e: unknown) => e instanceof AlliumError && e.code === code, text.slice(0, 60));
  for (let cut = 1; cut < good.length - 2; cut += 7) refused(good.slice(0, cut));
  refused(' '.repeat(MAX_STATE_BYTES + 1), 'ERR_OVERSIZED');
  refused('[]');
  refused('null');
  refused('{"version":2}');
  refused(good.replace('"confirmed":["a', '"confirmed":["c'));
  refused(good.replace('"g2"', '"g 2"'));
  refused(good.replace('"addedOn":3', '"addedOn":-3'));
  refused(good.replace('"addedOn":3', '"addedOn":"3"'));
  refused(good.replace('"buildTimesMs":[10,20]', '"buildTimesMs":[10,-1]'));
  refused(good.replace('"b'.padEnd(65, 'b'), '"' + 'a'.repeat(64)));
  refused(`{"version":1,"buildTimesMs":[${Array(1001).fill(1).join(',')}]}`);
  // Unknown fields are ignored: a later version may add some.
  assert.equal(parseClientState(good.replace('{"version":1,', '{"version":1,"later":{"x":1},')).guards.length, 2);
});
