import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  exitPolicyAllows,
  exitPolicyAllowsPort,
  formatExitPolicy,
  formatSummary,
  isPrivateAddress,
  parseExitPolicy,
  parseSummary,
  summarizeExitPolicy,
  summaryAllowsPort,
  summaryRejectsAll,
} from '../../src/netdoc/exit-policy.js';
import { DEFAULT_EXIT_POLICY_LINES, NON_EXIT_POLICY_LINES, TESTNET_EXIT_POLICY_LINES } from '../../src/netdoc/default-policies.js';
import { DocumentError } from '../../src/errors.js';

const isMalformed = (e: unknown) => e instanceof DocumentError && e.code === 'ERR_MALFORMED';

test('parse and format round trip, canonical forms', () => {
  const lines = ['accept 1.2.3.0/24:80-443', 'reject [2001:db8::]/32:25', 'accept [::1]:8080', 'reject private:*', 'accept *:*', 'reject 8.8.8.8:53'];
  const policy = parseExitPolicy(lines);
  assert.deepEqual(formatExitPolicy(policy), lines);
  assert.deepEqual(formatExitPolicy(parseExitPolicy(['accept *:1-65535', 'reject [2001:0DB8:0:0:0:0:0:1]:1'])), ['accept *:*', 'reject [2001:db8::1]:1']);
});

test('bad rules are typed errors', () => {
  for (const bad of [
    '',
    'accept',
    'accept *',
    'allow *:*',
    'accept  *:*',
    'accept *:* ',
    'accept *:0',
    'accept *:65536',
    'accept *:80-79',
    'accept *:080',
    'accept 1.2.3:80',
    'accept 1.2.3.256:80',
    'accept 01.2.3.4:80',
    'accept 1.2.3.4/33:80',
    'accept 1.2.3.4/24:80',
    'accept ::1:80',
    'accept [::1:80',
    'accept [1:2:3:4:5:6:7:8:9]:80',
    'accept [::1]/129:80',
    'accept [fe80::1%eth0]:80',
    'accept *:-',
    'ACCEPT *:*',
  ]) {
    assert.throws(() => parseExitPolicy([bad]), isMalformed, bad);
  }
});

test('first match wins; no match rejects', () => {
  const p = parseExitPolicy(['reject 1.2.3.4:*', 'accept 1.2.3.0/24:80', 'reject *:*']);
  assert.equal(exitPolicyAllows(p, '1.2.3.4', 80), false);
  assert.equal(exitPolicyAllows(p, '1.2.3.5', 80), true);
  assert.equal(exitPolicyAllows(p, '1.2.3.5', 81), false);
  assert.equal(exitPolicyAllows(parseExitPolicy(['accept 9.9.9.9:80']), '8.8.8.8', 80), false);
  assert.equal(exitPolicyAllows(parseExitPolicy([]), '8.8.8.8', 80), false);
  assert.equal(exitPolicyAllows(p, 'not-an-ip', 80), false);
  assert.equal(exitPolicyAllows(p, '1.2.3.5', 0), false);
  assert.equal(exitPolicyAllows(p, '1.2.3.5', 70000), false);
});

test('private ranges, IPv4 and IPv6, and v4-mapped addresses', () => {
  const exit = parseExitPolicy(DEFAULT_EXIT_POLICY_LINES);
  // Tor's `private` list (fec0::/10 site-local and ff00::/8 multicast included), plus 100.64/10.
  for (const ip of ['0.1.2.3', '10.9.8.7', '127.0.0.1', '127.255.255.254', '169.254.1.1', '172.16.0.1', '172.31.255.255', '192.168.1.1', '100.64.0.1', '100.127.255.255', '::1', '::', '::2', 'fc00::1', 'fdff::1', 'fe80::1', 'febf::1', 'fec0::1', 'ff02::1', '::ffff:10.0.0.1', '::ffff:127.0.0.1', '::ffff:7f00:1']) {
    assert.equal(isPrivateAddress(ip), true, ip);
    assert.equal(exitPolicyAllows(exit, ip, 80), false, ip);
  }
  for (const ip of ['8.8.8.8', '172.32.0.1', '172.15.255.255', '100.128.0.1', '11.0.0.1', '2001:db8::1', 'ff0::1', '::ffff:8.8.8.8']) {
    assert.equal(isPrivateAddress(ip), false, ip);
    assert.equal(exitPolicyAllows(exit, ip, 443), true, ip);
  }
  // Not an address (brackets, zone ids, leading zeros): counted private, never allowed.
  for (const text of ['[2001:db8::2]', 'fe80::1%eth0', '010.0.0.1', '8.8.8.08', '']) {
    assert.equal(isPrivateAddress(text), true, text);
    assert.equal(exitPolicyAllows(parseExitPolicy(['accept *:*']), text, 443), false, text);
  }
  const v6 = parseExitPolicy(['reject [2001:db8::]/32:*', 'accept [2001:db9::]/32:443', 'accept 8.8.8.8:443', 'reject *:*']);
  assert.equal(exitPolicyAllows(v6, '2001:db8:1::1', 443), false);
  assert.equal(exitPolicyAllows(v6, '2001:db9:1::1', 443), true);
  assert.equal(exitPolicyAllows(v6, '2001:db9:1::1', 80), false);
  // IPv4 rules apply to the v4-mapped form, IPv6 rules do not match IPv4.
  assert.equal(exitPolicyAllows(v6, '::ffff:8.8.8.8', 443), true);
  assert.equal(exitPolicyAllows(parseExitPolicy(['accept [::]/0:*']), '8.8.8.8', 443), false);
});

test('testnet exit policy allows loopback first, then refuses other private ranges', () => {
  const p = parseExitPolicy(TESTNET_EXIT_POLICY_LINES);
  assert.equal(exitPolicyAllows(p, '127.0.0.1', 8080), true);
  assert.equal(exitPolicyAllows(p, '10.0.0.1', 8080), false);
  assert.equal(exitPolicyAllows(p, '93.184.216.34', 80), true);
});

test('exitPolicyAllowsPort: could some address be allowed', () => {
  assert.equal(exitPolicyAllowsPort(parseExitPolicy(NON_EXIT_POLICY_LINES), 80), false);
  assert.equal(exitPolicyAllowsPort(parseExitPolicy(DEFAULT_EXIT_POLICY_LINES), 80), true);
  const p = parseExitPolicy(['reject 1.2.3.4:*', 'accept 5.6.7.8:22', 'accept *:80', 'reject *:*', 'accept *:443']);
  assert.equal(exitPolicyAllowsPort(p, 80), true);
  assert.equal(exitPolicyAllowsPort(p, 22), true);
  assert.equal(exitPolicyAllowsPort(p, 443), false);
  assert.equal(exitPolicyAllowsPort(p, 0), false);
});

test('summaries', () => {
  const all = summarizeExitPolicy(parseExitPolicy(['reject private:*', 'accept *:*']));
  assert.equal(formatSummary(all), 'accept 1-65535');
  const TOR_PORTS = 'reject 25,119,135-139,445,563,1214,4661-4666,6346-6429,6699,6881-6999';
  assert.equal(formatSummary(summarizeExitPolicy(parseExitPolicy(DEFAULT_EXIT_POLICY_LINES))), TOR_PORTS);
  const none = summarizeExitPolicy(parseExitPolicy(NON_EXIT_POLICY_LINES));
  assert.equal(formatSummary(none), 'reject 1-65535');
  assert.equal(summaryRejectsAll(none), true);
  assert.equal(summaryRejectsAll(all), false);
  assert.equal(formatSummary(summarizeExitPolicy(parseExitPolicy(['reject private:*']))), 'reject 1-65535');
  const web = summarizeExitPolicy(parseExitPolicy(['reject private:*', 'reject 1.2.3.4:443', 'accept *:80', 'accept *:443', 'accept *:8000-8100', 'reject *:*']));
  assert.equal(formatSummary(web), 'accept 80,443,8000-8100');
  assert.equal(summaryAllowsPort(web, 443), true);
  assert.equal(summaryAllowsPort(web, 8101), false);
  const mostly = summarizeExitPolicy(parseExitPolicy(['reject *:25', 'reject *:119', 'accept *:*']));
  assert.equal(formatSummary(mostly), 'reject 25,119');
  assert.equal(summaryAllowsPort(mostly, 25), false);
  assert.equal(summaryAllowsPort(mostly, 26), true);
  // Loopback-only exits: nothing for ordinary clients, unless loopback counts (testnet).
  const loop = parseExitPolicy(['accept 127.0.0.0/8:*', 'reject *:*']);
  assert.equal(formatSummary(summarizeExitPolicy(loop)), 'reject 1-65535');
  assert.equal(formatSummary(summarizeExitPolicy(loop, { loopbackCounts: true })), 'accept 1-65535');
  assert.equal(formatSummary(summarizeExitPolicy(parseExitPolicy(TESTNET_EXIT_POLICY_LINES))), TOR_PORTS);
  assert.equal(formatSummary(summarizeExitPolicy(parseExitPolicy(TESTNET_EXIT_POLICY_LINES), { loopbackCounts: true })), TOR_PORTS);
});

test('summary parsing is strict', () => {
  for (const good of ['accept 1-65535', 'reject 25,119', 'accept 80,443,8000-8100', 'accept 1,3']) {
    assert.equal(formatSummary(parseSummary(good)), good);
  }
  for (const bad of ['accept', 'accept ', 'allow 80', 'accept 80,80', 'accept 443,80', 'accept 80,81', 'accept 1-2,3', 'accept 5-5', 'accept 0', 'accept 65536', 'accept 80,', 'accept ,80', 'accept 080', 'accept 1-65535 ', 'accept 80-']) {
    assert.throws(() => parseSummary(bad), isMalformed, bad);
  }
});

test('summaries agree with a port-by-port reference on random policies', () => {
  let state = 12345;
  const rand = (n: number) => {
    state = (state * 1103515245 + 12345) & 0x7fffffff;
    return state % n;
  };
  const addrs = ['*', '*', 'private', '10.0.0.0/8', '127.0.0.0/8', '[::1]', '8.8.8.8'];
  for (let round = 0; round < 200; round++) {
    const lines: string[] = [];
    const count = 1 + rand(8);
    for (let i = 0; i < count; i++) {
      const a = 1 + rand(200);
      const b = a + rand(50);
      const port = rand(5) === 0 ? '*' : a === b ? String(a) : `${a}-${b}`;
      lines.push(`${rand(2) === 0 ? 'accept' : 'reject'} ${addrs[rand(addrs.length)]}:${port}`);
    }
    const policy = parseExitPolicy(lines);
    for (const loopbackCounts of [false, true]) {
      const summary = summarizeExitPolicy(policy, { loopbackCounts });
      assert.equal(formatSummary(parseSummary(formatSummary(summary))), formatSummary(summary));
      for (const port of [1, 2, 49, 50, 51, 100, 199, 200, 201, 249, 250, 251, 252, 1000, 65535]) {
        let want = false;
        for (const rule of policy) {
          if (port < rule.portMin || port > rule.portMax) continue;
          const loop = loopbackCounts && rule.action === 'accept' && (formatExitPolicy([rule])[0]!.includes('127.0.0.0/8') || formatExitPolicy([rule])[0]!.includes('[::1]'));
          if (rule.address.kind === 'any' || loop) {
            want = rule.action === 'accept';
            break;
          }
        }
        assert.equal(summaryAllowsPort(summary, port), want, `${lines.join(', ')} port ${port}`);
      }
    }
  }
});

test('summarizing a large policy is fast', () => {
  const lines = Array.from({ length: 256 }, (_, i) => (i % 2 === 0 ? `accept *:${i * 200 + 1}-${i * 200 + 100}` : `reject *:*`));
  const policy = parseExitPolicy(lines);
  const started = process.hrtime.bigint();
  for (let i = 0; i < 1000; i++) summarizeExitPolicy(policy);
  assert.ok(Number(process.hrtime.bigint() - started) / 1e6 < 2000);
});
