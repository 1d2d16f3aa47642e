import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildConsensusBody, checkParamsConfig, policyAllowsLoopback } from '../../directory/consensus-builder.js';
import { parseExitPolicy, formatSummary } from '../../src/netdoc/exit-policy.js';
import { TESTNET_EXIT_POLICY_LINES, DEFAULT_EXIT_POLICY_LINES } from '../../src/netdoc/default-policies.js';
import { encodeConsensus, verifyConsensus } from '../../src/netdoc/consensus.js';
import { AlliumError } from '../../src/errors.js';
import { authoritySigner, makeDescriptor, relayKeys, T0 } from '../netdoc/helpers.js';

const auth = { nickname: 'a', identity: authoritySigner(250).cert.identity, address: '127.0.0.1', dirPort: 80 };

function build(relays: { n: number; bw: number; policy: readonly string[] }[], exitsAllowLoopback = false) {
  return buildConsensusBody({
    now: T0 + 123,
    freshMs: 1500,
    lifetimeMs: 60_000,
    authorities: [auth],
    exitsAllowLoopback,
    running: relays.map(({ n, bw, policy }) => ({
      descriptor: makeDescriptor(relayKeys(n), { nickname: `r${n}`, bandwidth: bw, exitPolicy: parseExitPolicy(policy) }),
      digest: new Uint8Array(32).fill(n),
    })),
  });
}

test('times are whole seconds: fresh after one interval, valid for the lifetime', () => {
  const body = build([]);
  assert.equal(body.validAfter, T0);
  assert.equal(body.freshUntil, T0 + 2000);
  assert.equal(body.validUntil, T0 + 60_000);
  assert.ok(verifyConsensus(encodeConsensus(body, [authoritySigner(250)]), [auth.identity], T0 + 1000));
});

test('flags: Exit, Guard by median in a larger network, Fast', () => {
  const relays = Array.from({ length: 10 }, (_, i) => ({ n: i + 1, bw: (i + 1) * 20_000, policy: i < 3 ? DEFAULT_EXIT_POLICY_LINES : ['reject *:*'] }));
  const body = build(relays);
  const flags = new Map(body.relays.map((r) => [r.nickname, r.flags.join(' ')]));
  assert.equal(flags.get('r1'), 'Exit Running Valid'); // 20 kB/s: below the median, not Fast
  assert.equal(flags.get('r3'), 'Exit Fast Running Valid');
  assert.equal(flags.get('r4'), 'Fast Running Valid');
  assert.equal(flags.get('r5'), 'Fast Guard Running Valid'); // lower median of 20k..200k is 100k
  assert.equal(flags.get('r10'), 'Fast Guard Running Valid');
});

test('loopback exits get the Exit flag only when the authority allows it', () => {
  const loopOnly = ['accept 127.0.0.0/8:*', 'reject *:*'];
  assert.equal(policyAllowsLoopback(parseExitPolicy(loopOnly)), true);
  assert.equal(policyAllowsLoopback(parseExitPolicy(TESTNET_EXIT_POLICY_LINES)), true);
  assert.equal(policyAllowsLoopback(parseExitPolicy(['accept 127.0.0.5:8080', 'reject *:*'])), true);
  assert.equal(policyAllowsLoopback(parseExitPolicy(DEFAULT_EXIT_POLICY_LINES)), false);
  assert.equal(policyAllowsLoopback(parseExitPolicy(['accept *:*'])), true);

  const strict = build([{ n: 1, bw: 1e6, policy: TESTNET_EXIT_POLICY_LINES }, { n: 2, bw: 1e6, policy: loopOnly }]);
  assert.deepEqual(strict.relays.map((r) => r.flags.includes('Exit')), [false, false]);
  const testnet = build([{ n: 1, bw: 1e6, policy: TESTNET_EXIT_POLICY_LINES }, { n: 2, bw: 1e6, policy: loopOnly }], true);
  assert.deepEqual(testnet.relays.map((r) => r.flags.includes('Exit')), [true, true]);
  // The testnet default keeps Tor's rejected ports closed, loopback included.
  const torPorts = 'reject 25,119,135-139,445,563,1214,4661-4666,6346-6429,6699,6881-6999';
  assert.deepEqual(testnet.relays.map((r) => formatSummary(r.exitSummary)), [torPorts, 'accept 1-65535']);
});

test('method and params: method 1, configured params written as given, none by default; bad config refused', () => {
  const plain = build([]);
  assert.equal(plain.consensusMethod, 1);
  assert.equal(plain.rawParams?.size, 0);
  const params = new Map([['circwindow', 5], ['future-knob', 9]]);
  const body = buildConsensusBody({ now: T0, freshMs: 1000, lifetimeMs: 60_000, authorities: [auth], exitsAllowLoopback: false, running: [], params });
  const text = encodeConsensus(body, [authoritySigner(250)]);
  assert.match(text, /\nconsensus-method 1\n/);
  assert.match(text, /\nparams circwindow=5 future-knob=9\n/);
  const c = verifyConsensus(text, [auth.identity], T0);
  assert.equal(c.params.circwindow, 100); // clamped by the reader, not the writer
  assert.equal(c.rawParams.get('future-knob'), 9);
  checkParamsConfig(undefined);
  checkParamsConfig(params);
  for (const bad of [new Map([['bad key', 1]]), new Map([['circwindow', 0.5]]), new Map(Array.from({ length: 600 }, (_, i) => [`key${i}`, i]))]) {
    assert.throws(() => checkParamsConfig(bad), (e: unknown) => e instanceof AlliumError && e.code === 'ERR_CONFIG');
  }
});
