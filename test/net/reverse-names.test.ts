import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatIp, parseIp, parseReversePointerName, reversePointerName } from '../../src/net/address.js';
import { exitPolicyAllowsAddress, parseExitPolicy } from '../../src/netdoc/exit-policy.js';
import { Rng } from '../fuzz/fuzz-util.js';

test('PTR names: RFC 1035 and RFC 3596 examples, round trips, and names that are not one address', () => {
  assert.equal(reversePointerName(parseIp('192.0.2.5')!), '5.2.0.192.in-addr.arpa');
  assert.equal(
    reversePointerName(parseIp('2001:db8::567:89ab')!),
    'b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa',
  );
  assert.equal(formatIp(parseReversePointerName('5.2.0.192.IN-ADDR.ARPA.')!), '192.0.2.5');
  assert.equal(formatIp(parseReversePointerName('B.A.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.B.D.0.1.0.0.2.ip6.arpa')!), '2001:db8::567:89ab');
  for (const bad of ['2.0.192.in-addr.arpa', '256.2.0.192.in-addr.arpa', '05.2.0.192.in-addr.arpa', 'a.b.c.d.in-addr.arpa', '1.ip6.arpa', 'example.com', 'in-addr.arpa', `${'g.'.repeat(32)}ip6.arpa`]) {
    assert.equal(parseReversePointerName(bad), null, bad);
  }
  const rng = new Rng(0x9e7);
  for (let i = 0; i < 500; i++) {
    const bytes = rng.bytes(rng.bool() ? 4 : 16);
    const ip = { family: bytes.length === 4 ? 4 : 6, bytes } as const;
    assert.deepEqual(parseReversePointerName(reversePointerName(ip)), ip);
  }
});

test('exitPolicyAllowsAddress: some port of the address is accepted, first match deciding per port', () => {
  const loopback = parseExitPolicy(['accept 127.0.0.0/8:*', 'reject private:*', 'accept *:80', 'reject *:*']);
  assert.equal(exitPolicyAllowsAddress(loopback, '127.0.0.1'), true);
  assert.equal(exitPolicyAllowsAddress(loopback, '10.0.0.1'), false);
  assert.equal(exitPolicyAllowsAddress(loopback, '192.0.2.1'), true);
  const split = parseExitPolicy(['reject 10.0.0.1:1-100', 'reject 10.0.0.1:101-65535', 'accept *:*']);
  assert.equal(exitPolicyAllowsAddress(split, '10.0.0.1'), false);
  const partly = parseExitPolicy(['reject 10.0.0.1:1-100', 'accept 10.0.0.0/8:50-200', 'reject *:*']);
  assert.equal(exitPolicyAllowsAddress(partly, '10.0.0.1'), true);
  assert.equal(exitPolicyAllowsAddress(partly, '::ffff:10.0.0.1'), true);
  assert.equal(exitPolicyAllowsAddress(partly, 'not an address'), false);
  assert.equal(exitPolicyAllowsAddress([], '192.0.2.1'), false);
});
