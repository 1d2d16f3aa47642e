/**
 * This authority's vote (docs/protocol.md §9.4): the flags it assigns from
 * its own tests, the loopback-exit rule, and the params it writes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildVote, checkParamsConfig, policyAllowsLoopback, type RelayStatus } from '../../directory/vote-builder.js';
import { parseExitPolicy, formatSummary } from '../../src/netdoc/exit-policy.js';
import { TESTNET_EXIT_POLICY_LINES, DEFAULT_EXIT_POLICY_LINES } from '../../src/netdoc/default-policies.js';
import { encodeVote, parseVote } from '../../src/netdoc/vote.js';
import { AlliumError } from '../../src/errors.js';
import { authoritySigner, makeDescriptor, relayKeys, T0 } from '../netdoc/helpers.js';

const signer = authoritySigner(250);
const auth = { nickname: 'a', identity: signer.cert.identity, address: '127.0.0.1', dirPort: 80 };

function vote(relays: { n: number; bw: number; policy: readonly string[]; running?: boolean; measured?: number }[], exitsAllowLoopback = false, params?: Map<string, number>) {
  const statuses: RelayStatus[] = relays.map(({ n, bw, policy, running, measured }) => ({
    descriptor: makeDescriptor(relayKeys(n), { nickname: `r${n}`, bandwidth: bw, exitPolicy: parseExitPolicy(policy) }),
    digest: new Uint8Array(32).fill(n),
    running: running ?? true,
    ...(measured !== undefined ? { measured } : {}),
  }));
  return buildVote({
    authority: auth,
    published: T0 - 5000,
    validAfter: T0,
    freshUntil: T0 + 1000,
    validUntil: T0 + 60_000,
    relays: statuses,
    exitsAllowLoopback,
    methods: [1, 2],
    ...(params !== undefined ? { params } : {}),
  });
}

test('times, methods and known flags; the vote encodes, signs and parses back', () => {
  const v = vote([{ n: 1, bw: 1e6, policy: ['reject *:*'] }]);
  assert.equal(v.validAfter, T0);
  assert.equal(v.freshUntil, T0 + 1000);
  assert.deepEqual(v.consensusMethods, [1, 2]);
  assert.deepEqual(v.knownFlags, ['Exit', 'Fast', 'Guard', 'HSDir', 'Running', 'Stable', 'Valid']);
  const parsed = parseVote(encodeVote(v, signer));
  assert.deepEqual(parsed.relays.map((r) => r.flags), [['Fast', 'Guard', 'Running', 'Valid']]);
});

test('flags: Exit, Fast in the top 7/8; no Guard or Stable without uptime history; not Running: listed with Valid only', () => {
  const relays = Array.from({ length: 10 }, (_, i) => ({ n: i + 1, bw: (i + 1) * 20_000, policy: i < 3 ? DEFAULT_EXIT_POLICY_LINES : ['reject *:*'] }));
  const v = vote([...relays, { n: 11, bw: 1e9, policy: DEFAULT_EXIT_POLICY_LINES, running: false }]);
  const flags = new Map(v.relays.map((r) => [r.nickname, r.flags.join(' ')]));
  assert.equal(flags.get('r1'), 'Exit Running Valid'); // 20 kB/s: the slowest eighth, not Fast
  assert.equal(flags.get('r2'), 'Exit Fast Running Valid'); // 40 kB/s is the 1/8 quantile of 20k..200k
  assert.equal(flags.get('r4'), 'Fast Running Valid');
  assert.equal(flags.get('r10'), 'Fast Running Valid');
  assert.equal(flags.get('r11'), 'Valid');
});

test('a measured bandwidth replaces the advertised one for the thresholds and is written as Measured', () => {
  const v = vote([
    { n: 1, bw: 1e6, policy: ['reject *:*'], measured: 2000 },
    { n: 2, bw: 2000, policy: ['reject *:*'], measured: 900_000 },
  ]);
  const byNick = new Map(v.relays.map((r) => [r.nickname, r]));
  assert.equal(byNick.get('r1')!.flags.includes('Fast'), false); // measured below 4 kB/s: not even active
  assert.equal(byNick.get('r2')!.flags.includes('Fast'), true);
  assert.equal(byNick.get('r1')!.measured, 2000);
  assert.equal(byNick.get('r1')!.bandwidth, 1e6);
  assert.match(encodeVote(v, signer), /\nw bandwidth=1000000 Measured=2000\n/);
});

test('loopback exits get the Exit flag only when the authority allows it', () => {
  const loopOnly = ['accept 127.0.0.0/8:*', 'reject *:*'];
  assert.equal(policyAllowsLoopback(parseExitPolicy(loopOnly)), true);
  assert.equal(policyAllowsLoopback(parseExitPolicy(TESTNET_EXIT_POLICY_LINES)), true);
  assert.equal(policyAllowsLoopback(parseExitPolicy(['accept 127.0.0.5:8080', 'reject *:*'])), true);
  assert.equal(policyAllowsLoopback(parseExitPolicy(DEFAULT_EXIT_POLICY_LINES)), false);
  assert.equal(policyAllowsLoopback(parseExitPolicy(['accept *:*'])), true);

  const strict = vote([{ n: 1, bw: 1e6, policy: TESTNET_EXIT_POLICY_LINES }, { n: 2, bw: 1e6, policy: loopOnly }]);
  assert.deepEqual(strict.relays.map((r) => r.flags.includes('Exit')), [false, false]);
  const testnet = vote([{ n: 1, bw: 1e6, policy: TESTNET_EXIT_POLICY_LINES }, { n: 2, bw: 1e6, policy: loopOnly }], true);
  assert.deepEqual(testnet.relays.map((r) => r.flags.includes('Exit')), [true, true]);
  // The testnet default keeps Tor's rejected ports closed, loopback included.
  const torPorts = 'reject 25,119,135-139,445,563,1214,4661-4666,6346-6429,6699,6881-6999';
  const summaries = new Map(testnet.relays.map((r) => [r.nickname, formatSummary(r.exitSummary)]));
  assert.deepEqual([summaries.get('r1'), summaries.get('r2')], [torPorts, 'accept 1-65535']);
});

test('params: written as configured, none by default; bad config refused', () => {
  assert.equal(vote([]).rawParams.size, 0);
  const params = new Map([['circwindow', 5], ['future-knob', 9]]);
  const text = encodeVote(vote([], false, params), signer);
  assert.match(text, /\nparams circwindow=5 future-knob=9\n/);
  checkParamsConfig(undefined);
  checkParamsConfig(params);
  for (const bad of [new Map([['bad key', 1]]), new Map([['circwindow', 0.5]]), new Map(Array.from({ length: 600 }, (_, i) => [`key${i}`, i]))]) {
    assert.throws(() => checkParamsConfig(bad), (e: unknown) => e instanceof AlliumError && e.code === 'ERR_CONFIG');
  }
});
