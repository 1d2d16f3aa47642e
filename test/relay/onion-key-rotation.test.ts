/**
 * Onion-key rotation (docs/protocol.md §8.2.2) over real links and ntor-v3 in
 * memory: a circuit built before a rotation keeps carrying data; a client
 * that still holds the previous onion key (an older consensus) builds a
 * circuit through the relay during the grace period; once the previous key is
 * dropped, such a CREATE2 is refused and the new key works. The key files
 * stay 0600 and the schedule rotates and drops on time.
 */
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { equalBytes } from '../../src/bytes.js';
import { loadRelayKeys } from '../../relay/keys.js';
import { OnionKeyRing, PREVIOUS_FILE, CURRENT_FILE, onionKeyDue } from '../../relay/onion-keys.js';
import { memoryCircuit, memoryNetwork } from '../support/memory-network.js';
import { echoServer } from '../support/echo-server.js';

describe('onion key ring', () => {
  it('rotates on schedule, keeps the previous key for the grace period, then drops it (files 0600)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'allium-onion-'));
    try {
      const keys = loadRelayKeys(dir);
      const ring = new OnionKeyRing(join(dir, 'keys'), keys.identity.identity);
      const first = ring.current.onionKey;
      const t0 = ring.currentSince;
      assert.equal(onionKeyDue(ring, t0 + 999, 1000, 500), null);
      assert.equal(onionKeyDue(ring, t0 + 1000, 1000, 500), 'rotate');
      ring.rotate(t0 + 1000);
      assert.ok(!equalBytes(ring.current.onionKey, first));
      assert.ok(equalBytes(ring.find(first)!.onionKey, first), 'the previous key is still found');
      assert.equal(statSync(join(dir, 'keys', CURRENT_FILE)).mode & 0o777, 0o600);
      assert.equal(statSync(join(dir, 'keys', PREVIOUS_FILE)).mode & 0o777, 0o600);
      assert.equal(onionKeyDue(ring, t0 + 1499, 1000, 500), null);
      assert.equal(onionKeyDue(ring, t0 + 1500, 1000, 500), 'drop-previous');
      ring.dropPrevious();
      assert.equal(ring.find(first), undefined);
      assert.equal(existsSync(join(dir, 'keys', PREVIOUS_FILE)), false);
      // A restart reads both files back.
      const second = ring.current.onionKey;
      ring.rotate(t0 + 2000);
      const reread = new OnionKeyRing(join(dir, 'keys'), keys.identity.identity);
      assert.ok(equalBytes(reread.current.onionKey, ring.current.onionKey));
      assert.ok(reread.find(second) !== undefined);
      writeFileSync(join(dir, 'keys', PREVIOUS_FILE), new Uint8Array(31));
      assert.throws(() => new OnionKeyRing(join(dir, 'keys'), keys.identity.identity), /expected 32 bytes/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('rotation on a running network', () => {
  it('old circuits keep working, the previous key builds circuits in its grace period, and not after', async (t) => {
    const net = memoryNetwork(3, { onionKeyRings: true });
    t.after(() => net.cleanup());
    const echoPort = await echoServer(t);
    const [guard, middle, exit] = net.relays as [typeof net.relays[0], typeof net.relays[0], typeof net.relays[0]];

    // A circuit built before the middle relay rotates its onion key.
    const before = await memoryCircuit(net.relays);
    t.after(() => before.links.destroy());
    const oldInfo = { ...middle.info };
    middle.onionKeys!.rotate();

    const roundTrip = async (circuit: typeof before.circuit, text: string) => {
      const stream = await circuit.openStream('127.0.0.1', echoPort, 5000);
      stream.write(text);
      let got = '';
      for await (const chunk of stream) {
        got += String(chunk);
        if (got.length >= text.length) break;
      }
      stream.destroy();
      return got;
    };
    assert.equal(await roundTrip(before.circuit, 'built before the rotation'), 'built before the rotation');

    // A client that still has the previous consensus (the old onion key) during the grace period.
    const stale = await memoryCircuit([guard, { ...middle, info: oldInfo }, exit]);
    t.after(() => stale.links.destroy());
    assert.equal(await roundTrip(stale.circuit, 'previous key, in grace'), 'previous key, in grace');

    // The new key works; after the grace period the previous one is refused.
    const fresh = await memoryCircuit([guard, { ...middle, info: { ...middle.info, ntorOnionKey: middle.onionKeys!.current.onionKey } }, exit]);
    t.after(() => fresh.links.destroy());
    assert.equal(await roundTrip(fresh.circuit, 'new key'), 'new key');
    middle.onionKeys!.dropPrevious();
    await assert.rejects(memoryCircuit([guard, { ...middle, info: oldInfo }, exit]), 'a CREATE2 for a dropped key is refused');
  });
});
