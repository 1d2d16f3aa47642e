/**
 * The namespace testnet's plan (cli/netns-plan.ts): with up to 9 authorities
 * and 50 relays every node gets its own slot, hence its own address and /16,
 * and out-of-range counts are refused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { netnsAuthoritySlot, netnsNodes, NETNS_MAX_AUTHORITIES } from '../../cli/netns-plan.js';
import { netnsAddress } from '../../cli/netns.js';

test('9 authorities, 50 relays, the client and the destination each get a slot of their own', () => {
  const nodes = netnsNodes(50, NETNS_MAX_AUTHORITIES);
  assert.equal(nodes.size, 1 + 9 + 50 + 1);
  const slots = [...nodes.values()].map((n) => n.slot);
  assert.equal(new Set(slots).size, slots.length, `slots repeat: ${slots.join(',')}`);
  for (const slot of slots) assert.ok(slot >= 0 && slot <= 63);
  assert.equal(netnsAddress(nodes.get('auth1')!.slot), '10.64.0.1');
  assert.equal(netnsAddress(nodes.get('auth2')!.slot), '10.115.0.1');
  assert.equal(netnsAddress(nodes.get('auth9')!.slot), '10.122.0.1');
  assert.equal(netnsAddress(nodes.get('relay1')!.slot), '10.65.0.1');
  assert.equal(netnsAddress(nodes.get('client')!.slot), '10.124.0.1');
  assert.equal(netnsAddress(nodes.get('dest')!.slot), '10.127.0.1');
});

test('the default plan has one authority; three authorities are auth1..auth3', () => {
  assert.deepEqual([...netnsNodes(5).keys()].filter((k) => k.startsWith('auth')), ['auth1']);
  assert.deepEqual([...netnsNodes(5, 3).keys()].filter((k) => k.startsWith('auth')), ['auth1', 'auth2', 'auth3']);
});

test('counts out of range are refused', () => {
  assert.throws(() => netnsAuthoritySlot(0), RangeError);
  assert.throws(() => netnsAuthoritySlot(10), RangeError);
  assert.throws(() => netnsNodes(51, 3), RangeError);
  assert.throws(() => netnsNodes(5, 10), RangeError);
});
