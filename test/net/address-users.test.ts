/**
 * The shared address table through every user of the address module: exit
 * policies (rules and destinations), SOCKS5 requests, EXTEND2 link
 * specifiers, BEGIN and CONNECTED bodies, document addresses, CLI options
 * and path selection. Each must give the table's verdict, and write the
 * table's canonical text.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidArgumentError } from 'commander';
import { AlliumError, DecodeError, DocumentError } from '../../src/errors.js';
import { crypto } from '../../src/crypto/crypto.js';
import { exitPolicyAllows, formatExitRule, parseExitPolicy, parseExitRule } from '../../src/netdoc/exit-policy.js';
import { parseAddress } from '../../src/netdoc/text.js';
import { decodeRequest, encodeRequest } from '../../client/socks/messages.js';
import { decodeExtend2, encodeExtend2, specifiersToTarget, targetToSpecifiers } from '../../src/cell/extend2.js';
import { decodeBegin, decodeConnected, encodeBegin, encodeConnected } from '../../src/cell/stream-messages.js';
import { parseIPv4 as parseIPv4Option } from '../../cli/options.js';
import { choosePath } from '../../client/path-selection.js';
import { ALL_PORTS, consensusRelay } from '../support/consensus-relay.js';
import { formatIp, parseIp, unmapIPv4 } from '../../src/net/address.js';
import { ADDRESS_TABLE, SAME_NETWORK_TABLE, type AddressCase } from './address-table.js';

const label = (c: AddressCase) => `${JSON.stringify(c.text)} (${c.why})`;
const canonical = (c: AddressCase) => c.canonical ?? c.text;
const malformed = (e: unknown) => e instanceof AlliumError && e.code === 'ERR_MALFORMED';

test('exit policies: rule addresses and destinations', () => {
  const acceptAll = parseExitPolicy(['accept *:*']);
  for (const c of ADDRESS_TABLE) {
    // A destination is matched only when it is an address.
    assert.equal(exitPolicyAllows(acceptAll, c.text, 80), c.family !== null, label(c));
    // In a rule, IPv4 is bare and IPv6 bracketed; the rule is written canonically.
    const bare = `accept ${c.text}:80`;
    const bracketed = `accept [${c.text}]:80`;
    if (c.family === 4) {
      assert.equal(formatExitRule(parseExitRule(bare)), `accept ${canonical(c)}:80`, label(c));
      assert.throws(() => parseExitRule(bracketed), malformed, label(c));
    } else if (c.family === 6) {
      assert.equal(formatExitRule(parseExitRule(bracketed)), `accept [${canonical(c)}]:80`, label(c));
      assert.throws(() => parseExitRule(bare), malformed, label(c));
    } else {
      // ("[::1]" in a rule is the bracketed form of ::1: valid there, and checked above as ::1.)
      if (!c.text.startsWith('[')) assert.throws(() => parseExitRule(bare), (e: unknown) => e instanceof DocumentError, label(c));
      assert.throws(() => parseExitRule(bracketed), (e: unknown) => e instanceof DocumentError, label(c));
    }
    if (c.family === null) continue;
    // The destination is matched as its unmapped address: an IPv4 reject catches its mapped form.
    const dest = unmapIPv4(parseIp(c.text)!);
    const rule = dest.family === 4 ? formatIp(dest) : `[${formatIp(dest)}]`;
    const policy = parseExitPolicy([`reject ${rule}:*`, 'accept *:*']);
    assert.equal(exitPolicyAllows(policy, c.text, 80), false, label(c));
    assert.equal(exitPolicyAllows(policy, canonical(c), 80), false, label(c));
  }
});

test('SOCKS5 requests: IPv4 and IPv6 address types', () => {
  for (const c of ADDRESS_TABLE) {
    for (const addressType of ['ipv4', 'ipv6'] as const) {
      const request = { command: 1, addressType, host: c.text, port: 443 };
      const fits = c.family === (addressType === 'ipv4' ? 4 : 6);
      if (!fits) {
        assert.throws(() => encodeRequest(request), (e: unknown) => e instanceof DecodeError && e.code === 'ERR_MALFORMED', `${addressType} ${label(c)}`);
        continue;
      }
      const bytes = encodeRequest(request);
      assert.equal(bytes.length, 4 + (addressType === 'ipv4' ? 4 : 16) + 2, label(c));
      assert.deepEqual(decodeRequest(bytes)?.value, { ...request, host: canonical(c) }, label(c));
    }
  }
});

test('EXTEND2 link specifiers: IPv4 only, round trip in canonical form', () => {
  const identity = crypto.randomBytes(32);
  const linkKey = crypto.randomBytes(32);
  for (const c of ADDRESS_TABLE) {
    const target = { address: c.text, port: 9001, identity, linkKey };
    if (c.family !== 4) {
      assert.throws(() => targetToSpecifiers(target), label(c));
      continue;
    }
    const body = encodeExtend2({ specifiers: targetToSpecifiers(target), handshakeType: 3, handshakeData: new Uint8Array(10) });
    const back = specifiersToTarget(decodeExtend2(body).specifiers);
    assert.deepEqual(back, { ...target, address: canonical(c) }, label(c));
  }
});

test('BEGIN (bracketed IPv6 hosts) and CONNECTED (IPv4 and IPv6)', () => {
  const enc = (text: string) => new TextEncoder().encode(`${text}\0`);
  for (const c of ADDRESS_TABLE) {
    if (c.family === 6) {
      assert.equal(decodeBegin(enc(`[${c.text}]:80`)).host, c.text, label(c));
      // encodeBegin brackets exactly the IPv6 addresses.
      assert.equal(decodeBegin(encodeBegin({ host: c.text, port: 80, flags: 0 })).host, c.text, label(c));
    } else {
      assert.throws(() => decodeBegin(enc(`[${c.text}]:80`)), malformed, label(c));
    }
    // CONNECTED carries IPv4 and IPv6; 0.0.0.0 cannot be sent (a zero field announces the IPv6 form).
    if (c.family === null || c.text === '0.0.0.0') assert.throws(() => encodeConnected(c.text), RangeError, label(c));
    else assert.equal(decodeConnected(encodeConnected(c.text)).address, canonical(c), label(c));
  }
});

test('document addresses and CLI options: IPv4 only', () => {
  for (const c of ADDRESS_TABLE) {
    if (c.family === 4) {
      assert.equal(parseAddress(c.text, 'test'), canonical(c), label(c));
      assert.equal(parseIPv4Option(c.text), canonical(c), label(c));
    } else {
      assert.throws(() => parseAddress(c.text, 'test'), malformed, label(c));
      assert.throws(() => parseIPv4Option(c.text), InvalidArgumentError, label(c));
    }
  }
});

test('path selection: no two hops in the same network', () => {
  const RV = ['Running', 'Valid'];
  for (const [a, b, same] of SAME_NETWORK_TABLE) {
    const guard = consensusRelay('guard', a, ['Guard', ...RV]);
    const exit = consensusRelay('exit', b, ['Exit', ...RV], 1000, ALL_PORTS);
    const middle = consensusRelay('middle', '192.0.2.1', RV);
    if (same) {
      assert.throws(() => choosePath([guard, exit, middle], 80), (e: unknown) => e instanceof AlliumError && e.code === 'ERR_NO_PATH', `${a} ~ ${b}`);
    } else {
      assert.deepEqual(choosePath([guard, exit, middle], 80).map((r) => r.nickname), ['guard', 'middle', 'exit'], `${a} ~ ${b}`);
    }
  }
});
