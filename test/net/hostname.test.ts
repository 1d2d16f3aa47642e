/**
 * The destination check (src/net/hostname.ts): label and name lengths at
 * their limits, empty labels, `*`, `_`, a trailing dot, punycode, a port
 * inside the name, and IP literals in every form (the strict forms of
 * src/net/address.ts are addresses; the forms resolvers read as addresses
 * but address.ts does not are refused).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_HOSTNAME_LENGTH, MAX_LABEL_LENGTH, parseDestination, type Destination } from '../../src/net/hostname.js';
import { ADDRESS_TABLE } from './address-table.js';

const label = (n: number, c = 'a') => c.repeat(n);

function verdict(text: string): Destination['type'] {
  return parseDestination(text).type;
}

function accepted(text: string, host = text.toLowerCase()): void {
  assert.deepEqual(parseDestination(text), { type: 'hostname', host }, JSON.stringify(text));
}

function refused(text: string, why: RegExp): void {
  const d = parseDestination(text);
  assert.equal(d.type, 'invalid', JSON.stringify(text));
  if (d.type === 'invalid') assert.match(d.why, why, JSON.stringify(text));
}

test('labels: 63 bytes pass, 64 do not; empty labels do not', () => {
  assert.equal(MAX_LABEL_LENGTH, 63);
  accepted(`${label(63)}.example`);
  accepted(`www.${label(63)}`);
  refused(`${label(64)}.example`, /label longer than 63/);
  refused(`www.${label(64, 'b')}`, /label longer than 63/);
  refused('a..b', /empty label/);
  refused('.example.com', /empty label/);
  refused('example.com..', /empty label/);
  refused('.', /no labels/);
  refused('', /empty/);
});

test('names: 253 bytes pass (254 with the trailing dot), 254 without it do not', () => {
  assert.equal(MAX_HOSTNAME_LENGTH, 253);
  const name253 = `${label(63)}.${label(63, 'b')}.${label(63, 'c')}.${label(61, 'd')}`;
  assert.equal(name253.length, 253);
  accepted(name253);
  accepted(`${name253}.`);
  const name254 = `${label(63)}.${label(63, 'b')}.${label(63, 'c')}.${label(62, 'd')}`;
  refused(name254, /longer than 253/);
  refused(`${name254}.`, /longer than 253/);
  refused('a.'.repeat(127) + 'ab', /longer than 253/); // 256 bytes of one-byte labels
});

test('characters: letters, digits, "-" inside a label, "_" anywhere; "*" and everything else refused', () => {
  accepted('example.com');
  accepted('EXAMPLE.Com', 'example.com'); // sent in lower case
  accepted('a-b.example');
  accepted('1password.com');
  accepted('123.example');
  accepted('a');
  accepted('localhost');
  // "_": not RFC 1123, but real names carry it and Tor's exits let it through.
  accepted('_');
  accepted('_dmarc.example.com');
  accepted('my_host.example');
  accepted('host_.example');
  refused('*', /character other than/);
  refused('*.example.com', /character other than/);
  refused('a*b.example', /character other than/);
  refused('-a.example', /starts or ends with "-"/);
  refused('a-.example', /starts or ends with "-"/);
  refused('exa mple.com', /space or control/);
  refused('tab\tname', /space or control/);
  refused('a/b.example', /character other than/);
  refused('a@b.example', /character other than/);
  refused('[example.com]', /brackets/);
});

test('a trailing dot (a fully qualified name) is kept; a port inside the name is refused', () => {
  accepted('example.com.');
  accepted('localhost.');
  refused('example.com:443', /port inside the name/);
  refused('127.0.9.1:443', /port inside the name/);
  refused('example.com:', /port inside the name/);
  refused('a:b', /character other than/);
});

test('internationalized names: punycode passes, Unicode does not', () => {
  accepted('xn--bcher-kva.example');
  accepted('xn--mnchen-3ya.de');
  accepted('XN--BCHER-KVA.example', 'xn--bcher-kva.example');
  accepted('xn--80ak6aa92e.com');
  refused('bücher.example', /non-ASCII/);
  refused('пример.испытание', /non-ASCII/);
  refused('torproject\u2122.org', /non-ASCII/);
  refused('xn--.example', /starts or ends with "-"/);
});

test('IP literals: every address of the shared table is an address, in canonical text', () => {
  for (const c of ADDRESS_TABLE) {
    const d = parseDestination(c.text);
    if (c.family !== null) {
      assert.deepEqual(d, { type: c.family === 4 ? 'ipv4' : 'ipv6', host: c.canonical ?? c.text }, c.text);
      if (c.family === 6) assert.deepEqual(parseDestination(`[${c.text}]`), d, `[${c.text}]`);
    } else if (c.text.startsWith('[') && c.text.endsWith(']')) {
      // Brackets are no part of an address (address.ts), but a destination may carry them, as a URL writes IPv6.
      assert.deepEqual(d, parseDestination(c.text.slice(1, -1)), c.text);
    } else {
      // Text that is no address is no hostname either: it carries ':', a space or a numeric last label.
      assert.equal(d.type, 'invalid', c.text);
    }
  }
});

test('IP literals: IPv4, IPv6, bracketed IPv6, IPv4-mapped, zero runs', () => {
  assert.deepEqual(parseDestination('127.0.0.1'), { type: 'ipv4', host: '127.0.0.1' });
  assert.deepEqual(parseDestination('0.0.0.0'), { type: 'ipv4', host: '0.0.0.0' });
  assert.deepEqual(parseDestination('255.255.255.255'), { type: 'ipv4', host: '255.255.255.255' });
  assert.deepEqual(parseDestination('::1'), { type: 'ipv6', host: '::1' });
  assert.deepEqual(parseDestination('[::1]'), { type: 'ipv6', host: '::1' });
  assert.deepEqual(parseDestination('2001:DB8:0:0:0:0:0:1'), { type: 'ipv6', host: '2001:db8::1' });
  assert.deepEqual(parseDestination('[2001:db8::1]'), { type: 'ipv6', host: '2001:db8::1' });
  assert.deepEqual(parseDestination('::ffff:127.0.0.1'), { type: 'ipv6', host: '::ffff:127.0.0.1' });
  assert.deepEqual(parseDestination('[::ffff:7f00:1]'), { type: 'ipv6', host: '::ffff:127.0.0.1' });
  assert.deepEqual(parseDestination('::'), { type: 'ipv6', host: '::' });
  refused('[127.0.0.1]', /brackets/);
  refused('[::1', /character other than/);
  refused('::1]', /character other than/);
  refused('fe80::1%eth0', /zone id/);
  refused('[fe80::1%25eth0]', /brackets/);
  refused('1::2::3', /character other than/);
});

test('IPv4 in the forms resolvers read but address.ts does not: refused, never guessed', () => {
  for (const text of [
    '127.1', // inet_aton: 127.0.0.1
    '127.0.1',
    '2130706433', // one 32-bit number
    '0x7f000001',
    '0x7f.0.0.1',
    '0177.0.0.1', // octal
    '010.0.0.1', // leading zero (address.ts refuses it: some resolvers read octal)
    '127.0.0.01',
    '1.2.3.4.', // a dotted quad with a trailing dot
    '256.0.0.1', // out of range: still a numeric last label
    '1.2.3.0x4',
    'example.123',
    '0x',
  ]) {
    assert.equal(verdict(text), 'invalid', text);
    refused(text, /numeric last label/);
  }
  // Numeric labels elsewhere are fine, and so is a last label that only starts with a digit.
  accepted('1.2.3.example');
  accepted('example.1a');
  accepted('0xbad.example');
});
