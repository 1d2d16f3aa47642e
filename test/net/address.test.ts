/**
 * The address module (src/net/) against the shared table: parse verdicts,
 * canonical text, IPv4-mapped handling, prefixes and their edges, private
 * ranges, and the same-network grouping of path selection.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DecodeError } from '../../src/errors.js';
import { fromHex } from '../../src/bytes.js';
import {
  canonicalIp,
  formatIp,
  formatIPv4,
  formatIPv6,
  isIPv4Mapped,
  parseIp,
  parseIPv4,
  parseIPv6,
  unmapIPv4,
} from '../../src/net/address.js';
import {
  formatPrefix,
  isPrivateIp,
  networkKey,
  parsePrefix,
  prefixContains,
  prefixIsLoopback,
  prefixOf,
  sameNetwork,
} from '../../src/net/prefix.js';
import { ADDRESS_TABLE, PREFIX_TABLE, SAME_NETWORK_TABLE } from './address-table.js';

const ip = (text: string) => {
  const a = parseIp(text);
  assert.ok(a, `${text} parses`);
  return a;
};

test('address table: verdict, family and canonical text', () => {
  for (const c of ADDRESS_TABLE) {
    const label = `${JSON.stringify(c.text)} (${c.why})`;
    const a = parseIp(c.text);
    assert.equal(a?.family ?? null, c.family, label);
    assert.equal(parseIPv4(c.text) !== null, c.family === 4, label);
    assert.equal(parseIPv6(c.text) !== null, c.family === 6, label);
    if (a === null) {
      assert.equal(canonicalIp(c.text), null, label);
      continue;
    }
    const canonical = c.canonical ?? c.text;
    assert.equal(formatIp(a), canonical, label);
    assert.equal(canonicalIp(c.text), canonical, label);
    // Canonical text is a fixed point and parses to the same bytes.
    assert.deepEqual(parseIp(canonical), a, label);
    assert.equal(a.bytes.length, c.family === 4 ? 4 : 16, label);
  }
});

test('IPv4-mapped addresses are kept as IPv6 and unmapped on request', () => {
  const mapped = ip('::ffff:1.2.3.4');
  assert.equal(mapped.family, 6);
  assert.equal(isIPv4Mapped(mapped.bytes), true);
  assert.deepEqual(unmapIPv4(mapped), { family: 4, bytes: new Uint8Array([1, 2, 3, 4]) });
  // Not mapped: returned as is.
  for (const text of ['::1.2.3.4', '64:ff9b::1.2.3.4', '::fffe:1.2.3.4', '1.2.3.4', '::']) {
    assert.deepEqual(unmapIPv4(ip(text)), ip(text), text);
  }
  assert.equal(isIPv4Mapped(new Uint8Array(4)), false);
});

test('formatters refuse byte strings of the wrong length', () => {
  const bad = (e: unknown) => e instanceof DecodeError && e.code === 'ERR_MALFORMED';
  for (const n of [0, 3, 5, 16]) assert.throws(() => formatIPv4(new Uint8Array(n)), bad, `IPv4 ${n}`);
  for (const n of [0, 4, 15, 17]) assert.throws(() => formatIPv6(new Uint8Array(n)), bad, `IPv6 ${n}`);
  assert.equal(formatIPv6(fromHex('20010db8000000000000000000000001')), '2001:db8::1');
  assert.equal(formatIPv6(fromHex('00000000000000000000ffff7f000001')), '::ffff:127.0.0.1');
});

test('prefix table: verdicts, containment, /0 /32 /128 edges', () => {
  for (const c of PREFIX_TABLE) {
    const p = parsePrefix(c.text);
    assert.equal(p !== null, c.ok, c.text);
    if (p === null) continue;
    for (const text of c.inside ?? []) assert.equal(prefixContains(p, ip(text)), true, `${c.text} ∋ ${text}`);
    for (const text of c.outside ?? []) assert.equal(prefixContains(p, ip(text)), false, `${c.text} ∌ ${text}`);
    // Formatting and parsing again gives the same prefix.
    assert.deepEqual(parsePrefix(formatPrefix(p)), p, c.text);
    assert.deepEqual(parsePrefix(formatPrefix(p, { brackets: true })), p, c.text);
  }
  assert.equal(formatPrefix(parsePrefix('[2001:DB8::]/32')!, { brackets: true }), '[2001:db8::]/32');
  assert.equal(formatPrefix(parsePrefix('1.2.3.4')!), '1.2.3.4/32');
});

test('prefix IPv6 style: bracketed, bare or either', () => {
  assert.ok(parsePrefix('[::1]/128', { ipv6: 'bracketed' }));
  assert.equal(parsePrefix('::1/128', { ipv6: 'bracketed' }), null);
  assert.equal(parsePrefix('::1', { ipv6: 'bracketed' }), null);
  assert.ok(parsePrefix('::1/128', { ipv6: 'bare' }));
  assert.equal(parsePrefix('[::1]/128', { ipv6: 'bare' }), null);
  // IPv4 is never bracketed.
  assert.equal(parsePrefix('[1.2.3.4]', { ipv6: 'either' }), null);
  assert.ok(parsePrefix('1.2.3.4/32', { ipv6: 'bracketed' }));
});

test('prefixOf masks host bits; prefixIsLoopback', () => {
  assert.equal(formatPrefix(prefixOf(ip('10.1.2.3'), 16)), '10.1.0.0/16');
  assert.equal(formatPrefix(prefixOf(ip('10.1.2.3'), 0)), '0.0.0.0/0');
  assert.equal(formatPrefix(prefixOf(ip('10.1.2.3'), 32)), '10.1.2.3/32');
  assert.equal(formatPrefix(prefixOf(ip('2001:db8:abcd::1'), 32)), '2001:db8::/32');
  assert.equal(formatPrefix(prefixOf(ip('10.1.2.3'), 13)), '10.0.0.0/13');
  assert.throws(() => prefixOf(ip('10.1.2.3'), 33), RangeError);
  assert.equal(prefixIsLoopback(parsePrefix('127.0.0.0/8')!), true);
  assert.equal(prefixIsLoopback(parsePrefix('127.5.0.0/16')!), true);
  assert.equal(prefixIsLoopback(parsePrefix('126.0.0.0/7')!), false);
  assert.equal(prefixIsLoopback(parsePrefix('::1')!), true);
  assert.equal(prefixIsLoopback(parsePrefix('::/127')!), false);
});

test('private ranges: Tor\'s list plus 100.64/10; mapped addresses count as IPv4', () => {
  const yes = ['0.1.2.3', '10.9.8.7', '100.64.0.1', '127.0.0.1', '169.254.1.1', '172.16.0.1', '192.168.1.1', '::', '::1', '::2', 'fc00::1', 'fdff::1', 'fe80::1', 'fec0::1', 'ff02::1', '::ffff:10.0.0.1', '::ffff:127.0.0.1'];
  const no = ['8.8.8.8', '100.128.0.1', '172.32.0.1', '11.0.0.1', '224.0.0.1', '2001:db8::1', '::ffff:8.8.8.8', '100::1'];
  for (const text of yes) assert.equal(isPrivateIp(ip(text)), true, text);
  for (const text of no) assert.equal(isPrivateIp(ip(text)), false, text);
});

test('same network: IPv4 /16, IPv6 /32, mapped as IPv4', () => {
  for (const [a, b, same] of SAME_NETWORK_TABLE) {
    assert.equal(sameNetwork(ip(a), ip(b)), same, `${a} ~ ${b}`);
    assert.equal(sameNetwork(ip(b), ip(a)), same, `${b} ~ ${a}`);
  }
  assert.equal(networkKey(ip('10.1.2.3')), '10.1.0.0/16');
  assert.equal(networkKey(ip('::ffff:10.1.2.3')), '10.1.0.0/16');
  assert.equal(networkKey(ip('2001:db8:1::1')), '2001:db8::/32');
});
