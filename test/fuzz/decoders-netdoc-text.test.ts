/**
 * Fuzz the line-level document parsers (src/netdoc/): exit policies and
 * summaries, params lines, and the text primitives (times, numbers, ports,
 * addresses, nicknames, base64, line splitting). Random and mutated input
 * must parse or throw an AlliumError; valid input round-trips. Seeded and
 * deterministic. The signed documents: decoders-netdoc.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeDescriptor, parseDescriptor } from '../../src/netdoc/descriptor.js';
import { encodeConsensus, parseConsensus } from '../../src/netdoc/consensus.js';
import { formatParams, INT32_MAX, INT32_MIN, networkParams, PARAM_TABLE, parseParams } from '../../src/netdoc/params.js';
import { exitPolicyAllows, exitPolicyAllowsPort, formatExitRule, formatSummary, isPrivateAddress, parseExitPolicy, parseExitRule, parseSummary, summarizeExitPolicy } from '../../src/netdoc/exit-policy.js';
import { parseAddress, parseNickname, parsePortNumber, parseTime, parseUint, splitDocument, unb64, b64, formatTime } from '../../src/netdoc/text.js';
import { formatIPv6, parseIPv4, parseIPv6 } from '../../src/net/address.js';
import { Rng, describeText, expectTyped, mutateText, outcomes, randomText } from './fuzz-util.js';
import { KNOWN_PARAMS, signerOf, randomParams, ipv4, randomRule, randomSummary, relayKeys, randomDescriptor, randomConsensusBody } from './netdoc-gen.js';

test('fuzz exit policies: parseExitRule / parseExitPolicy / parseSummary / address parsers; round trips', () => {
  const rng = new Rng(0xd0c00001);
  const tally = outcomes();
  const ruleLines = Array.from({ length: 40 }, () => formatExitRule(randomRule(rng)));
  ruleLines.push('reject private:*', 'accept *:*', 'accept [::]/0:1-65535', 'reject 0.0.0.0/0:80');
  const summaries = Array.from({ length: 30 }, () => formatSummary(randomSummary(rng)));
  const v6 = ['::', '::1', '1::', 'a:b:c:d:e:f:1:2', '::ffff:1.2.3.4', '1:2:3:4:5:6:1.2.3.4', 'fe80::1:2'];
  for (let i = 0; i < 4000; i++) {
    const line = rng.bool(0.15) ? randomText(rng, 60).replace(/\n/g, '') : mutateText(rng, rng.pick(ruleLines));
    expectTyped(() => parseExitRule(line), () => `parseExitRule(${describeText(line)})`, tally);
    const sum = rng.bool(0.15) ? randomText(rng, 60) : mutateText(rng, rng.pick(summaries));
    expectTyped(() => parseSummary(sum), () => `parseSummary(${describeText(sum)})`, tally);
    // Address text as an exit sees it from a client: total functions, never throw.
    const addr = rng.bool(0.3) ? randomText(rng, 45).replace(/\n/g, '') : mutateText(rng, rng.pick([...v6, ipv4(rng), `[${rng.pick(v6)}]`]));
    const v6bytes = expectTyped(() => parseIPv6(addr), () => `parseIPv6(${describeText(addr)})`);
    if (v6bytes) assert.deepEqual(parseIPv6(formatIPv6(v6bytes)), v6bytes);
    assert.equal(typeof isPrivateAddress(addr), 'boolean');
  }
  assert.ok(tally.ok > 500 && tally.rejected > 500, JSON.stringify(tally));
  // Whole policies: mutated line lists (duplicated, dropped, too many lines).
  for (let i = 0; i < 300; i++) {
    const lines = Array.from({ length: rng.pick([0, 1, 5, 256, 257]) }, () => rng.pick(ruleLines));
    if (lines.length > 0 && rng.bool()) lines[rng.int(lines.length)] = mutateText(rng, lines[0]!);
    const policy = expectTyped(() => parseExitPolicy(lines), () => `parseExitPolicy(${describeText(lines.join('|'))})`);
    if (policy !== undefined) {
      const ip = rng.bool() ? ipv4(rng) : mutateText(rng, rng.pick(v6));
      const port = rng.pick([0, 1, 80, 65535, 65536, -1, 1.5, NaN, rng.int(70000)]);
      assert.equal(typeof exitPolicyAllows(policy, ip, port), 'boolean');
      assert.equal(typeof exitPolicyAllowsPort(policy, port), 'boolean');
      // A summary is always a well-formed one.
      const s = summarizeExitPolicy(policy, { loopbackCounts: rng.bool() });
      assert.deepEqual(parseSummary(formatSummary(s)), s);
    }
  }
  // Round trips.
  for (let i = 0; i < 2000; i++) {
    const rule = randomRule(rng);
    assert.deepEqual(parseExitRule(formatExitRule(rule)), rule, formatExitRule(rule));
    const s = randomSummary(rng);
    assert.deepEqual(parseSummary(formatSummary(s)), s, formatSummary(s));
  }
});

test('fuzz document primitives (src/netdoc/text.ts): times, numbers, ports, addresses, nicknames, base64, line splitting', () => {
  const rng = new Rng(0xd0c00005);
  const tally = outcomes();
  const words = ['2030-01-02 03:04:05', '9999-12-31 23:59:59', '1970-01-01 00:00:00', '65535', '0', '1099511627776', '127.0.0.1', 'relay1', 'AAAA', 'AA', 'AAE', '+/+/'];
  const timeChars = [...'0123456789-: ', '9999', '99', '00', '60', '24', '31', '02-29'];
  for (let i = 0; i < 3000; i++) {
    const w = rng.bool(0.3) ? randomText(rng, 30).replace(/\n/g, '') : mutateText(rng, rng.pick(words));
    const time = rng.bool(0.5) ? w : Array.from({ length: rng.range(1, 12) }, () => rng.pick(timeChars)).join('');
    const t = expectTyped(() => parseTime(time, 'fuzz'), () => `parseTime(${describeText(time)})`, tally);
    if (t !== undefined) assert.equal(formatTime(t), time);
    expectTyped(() => parseUint(w, 2 ** 40, 'fuzz'), () => `parseUint(${describeText(w)})`, tally);
    expectTyped(() => parsePortNumber(w, 'fuzz'), () => `parsePortNumber(${describeText(w)})`, tally);
    expectTyped(() => parseAddress(w, 'fuzz'), () => `parseAddress(${describeText(w)})`, tally);
    expectTyped(() => parseNickname(w, 'fuzz'), () => `parseNickname(${describeText(w)})`, tally);
    const bytes = expectTyped(() => unb64(w, 'fuzz', rng.bool() ? undefined : rng.int(40)), () => `unb64(${describeText(w)})`, tally);
    if (bytes !== undefined) assert.equal(b64(bytes), w);
    assert.ok(parseIPv4(w) === null || parseIPv4(w)!.length === 4);
    const doc = randomText(rng, 200);
    expectTyped(() => splitDocument(doc, 'fuzz', rng.pick([10, 100, 1000]), rng.pick([5, 50, 500])), () => `splitDocument(${describeText(doc)})`, tally);
  }
  assert.ok(tally.ok > 1000 && tally.rejected > 1000, JSON.stringify(tally));
  // Round trips over the whole range of times and of byte strings.
  for (let i = 0; i < 2000; i++) {
    const ms = rng.int(253402300800) * 1000;
    assert.equal(parseTime(formatTime(ms), 'fuzz'), ms);
    const b = rng.bytes(rng.int(100));
    assert.deepEqual(unb64(b64(b), 'fuzz', b.length), b);
  }
});

test('regression: times past 9999-12-31 23:59:59 are a DocumentError, not a RangeError', () => {
  // Date.UTC rolls 23:59:60 on the last day of 9999 (or month 99) over into
  // year 10000, which formatTime refused with a RangeError.
  for (const t of ['9999-12-31 23:59:60', '9999-99-99 99:99:99', '9999-12-32 00:00:00']) {
    assert.throws(() => parseTime(t, 'test'), { name: 'DocumentError', code: 'ERR_MALFORMED' }, t);
  }
  assert.equal(parseTime('9999-12-31 23:59:59', 'test'), 253402300799000);
  const rng = new Rng(0xd0c00004);
  const k = relayKeys(rng);
  const text = encodeDescriptor(randomDescriptor(rng, k, 1), k.relaySigner).replace(/^published .*$/m, 'published 9999-12-31 23:59:60');
  assert.throws(() => parseDescriptor(text), { name: 'DocumentError', code: 'ERR_MALFORMED' });
  const auth = relayKeys(rng);
  const c = encodeConsensus(randomConsensusBody(rng, [auth], [], 0), [signerOf(auth)]).replace(/^valid-until .*$/m, 'valid-until 9999-99-99 99:99:99');
  assert.throws(() => parseConsensus(c), { name: 'DocumentError', code: 'ERR_MALFORMED' });
});

test('fuzz params lines: parseParams on random and mutated pairs; clamped values stay in bounds; canonical round trip', () => {
  const rng = new Rng(0xd0c00006);
  const tally = outcomes();
  const lines = Array.from({ length: 30 }, () => ['params', ...formatParams(randomParams(rng), 'fuzz')].join(' '));
  lines.push('params', 'params circwindow=1000', `params a=${INT32_MIN} b=${INT32_MAX}`);
  for (let i = 0; i < 4000; i++) {
    const line = rng.bool(0.1) ? `params ${randomText(rng, 80).replace(/\n/g, '')}` : mutateText(rng, rng.pick(lines)).split('\n')[0]!;
    const args = line.split(' ').slice(1);
    const raw = expectTyped(() => parseParams(args, 'fuzz'), () => `parseParams(${describeText(line)})`, tally);
    if (raw === undefined) continue;
    // Accepted lines are canonical: writing them again gives the same pairs.
    assert.deepEqual(formatParams(raw, 'fuzz'), args, line);
    const params = networkParams(raw);
    for (const key of KNOWN_PARAMS) {
      const spec = PARAM_TABLE[key];
      assert.ok(params[key] >= spec.min && params[key] <= spec.max, `${key}=${params[key]} from ${line}`);
      if (!raw.has(key)) assert.equal(params[key], spec.default);
    }
  }
  assert.ok(tally.ok > 500 && tally.rejected > 500, JSON.stringify(tally));
});
