/**
 * The default exit policies (src/netdoc/default-policies.ts): both the exit
 * and the non-exit default refuse every private address; the testnet exit
 * reaches loopback but keeps Tor's rejected ports closed there too.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DEFAULT_EXIT_POLICY_LINES,
  LOOPBACK_EXIT_RULES,
  NON_EXIT_POLICY_LINES,
  TESTNET_EXIT_POLICY_LINES,
  withLoopbackExit,
} from '../../src/netdoc/default-policies.js';
import { exitPolicyAllows, exitPolicyAllowsPort, formatSummary, parseExitPolicy, summarizeExitPolicy } from '../../src/netdoc/exit-policy.js';
import { PRIVATE_SAMPLES } from '../net/address-table.js';

const PUBLIC_SAMPLES = ['8.8.8.8', '93.184.216.34', '2001:4860:4860::8888', '::ffff:8.8.8.8'];
const PORTS = [1, 22, 25, 80, 443, 6667, 8080, 65535];

test('the non-exit policy refuses private addresses, and everything else', () => {
  assert.equal(NON_EXIT_POLICY_LINES[0], 'reject private:*');
  const policy = parseExitPolicy(NON_EXIT_POLICY_LINES);
  for (const ip of [...PRIVATE_SAMPLES, ...PUBLIC_SAMPLES]) for (const port of PORTS) assert.equal(exitPolicyAllows(policy, ip, port), false, `${ip}:${port}`);
  // Its summary is unchanged by the private rule: no port at all.
  assert.equal(formatSummary(summarizeExitPolicy(policy)), 'reject 1-65535');
  assert.equal(formatSummary(summarizeExitPolicy(policy, { loopbackCounts: true })), 'reject 1-65535');
  assert.equal(exitPolicyAllowsPort(policy, 80), false);
});

test('the default exit policy refuses private addresses and Tor\'s rejected ports', () => {
  const policy = parseExitPolicy(DEFAULT_EXIT_POLICY_LINES);
  for (const ip of PRIVATE_SAMPLES) for (const port of PORTS) assert.equal(exitPolicyAllows(policy, ip, port), false, `${ip}:${port}`);
  for (const ip of PUBLIC_SAMPLES) {
    assert.equal(exitPolicyAllows(policy, ip, 443), true, ip);
    assert.equal(exitPolicyAllows(policy, ip, 25), false, ip);
    assert.equal(exitPolicyAllows(policy, ip, 6881), false, ip);
  }
});

test('the testnet exit policy reaches loopback, not the other private ranges, and keeps the rejected ports', () => {
  const policy = parseExitPolicy(TESTNET_EXIT_POLICY_LINES);
  for (const ip of ['127.0.0.1', '127.200.0.1', '::1', '::ffff:127.0.0.1']) {
    assert.equal(exitPolicyAllows(policy, ip, 8080), true, ip);
    assert.equal(exitPolicyAllows(policy, ip, 25), false, ip);
  }
  for (const ip of PRIVATE_SAMPLES.filter((ip) => !/^(127\.|::1$|::ffff:127\.)/.test(ip))) assert.equal(exitPolicyAllows(policy, ip, 8080), false, ip);
  assert.equal(exitPolicyAllows(policy, '8.8.8.8', 443), true);
});

test('withLoopbackExit inserts the loopback rules just before reject private', () => {
  assert.deepEqual(withLoopbackExit(['reject *:25', 'reject private:*', 'accept *:*']), ['reject *:25', ...LOOPBACK_EXIT_RULES, 'reject private:*', 'accept *:*']);
  // Without reject private: loopback only on the ports the policy allows (and the summary stays as narrow).
  assert.deepEqual(withLoopbackExit(['accept *:80', 'accept *:443', 'reject *:*']), [
    'accept 127.0.0.0/8:80', 'accept [::1]:80', 'accept 127.0.0.0/8:443', 'accept [::1]:443', 'accept *:80', 'accept *:443', 'reject *:*',
  ]);
  assert.equal(formatSummary(summarizeExitPolicy(parseExitPolicy(withLoopbackExit(['accept *:80', 'accept *:443', 'reject *:*'])), { loopbackCounts: true })), 'accept 80,443');
  assert.deepEqual(withLoopbackExit(['reject *:25', 'accept *:*']), ['accept 127.0.0.0/8:1-24', 'accept [::1]:1-24', 'accept 127.0.0.0/8:26-65535', 'accept [::1]:26-65535', 'reject *:25', 'accept *:*']);
  assert.deepEqual(withLoopbackExit(['accept *:*']), [...LOOPBACK_EXIT_RULES, 'accept *:*']);
  assert.deepEqual(withLoopbackExit(['reject *:*']), ['reject *:*']);
  assert.deepEqual(TESTNET_EXIT_POLICY_LINES, withLoopbackExit(DEFAULT_EXIT_POLICY_LINES));
});
