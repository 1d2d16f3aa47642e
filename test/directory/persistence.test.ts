/**
 * Authorities resume after a restart (docs/protocol.md §9.1, §9.8, §9.9):
 * the relays' measurement history, the votes it made, and its record of
 * what it signed all survive, and a restarted authority never signs a
 * second, different consensus for a round, nor makes a second vote.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hex } from '../../src/bytes.js';
import { verifyConsensus } from '../../src/netdoc/consensus.js';
import { encodeDescriptor } from '../../src/netdoc/descriptor.js';
import { encodeVote } from '../../src/netdoc/vote.js';
import { startAuthority } from '../../directory/authority.js';
import { loadSigner } from '../../directory/authority-keys.js';
import { CLUSTER_INTERVAL_MS as I, CLUSTER_LIFETIME_MS as LIFETIME, fakeRelay, http, startCluster } from '../support/authority-cluster.js';
import { makeDescriptor, relayKeys } from '../netdoc/helpers.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

test('the relays\' history is stored and restored: a bandwidth measured before a restart is voted after it', async () => {
  const root = mkdtempSync(join(tmpdir(), 'allium-persist-'));
  dirs.push(root);
  const dataDir = join(root, 'auth');
  const listener = createServer((s) => s.destroy());
  await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
  const port = (listener.address() as { port: number }).port;
  const keys = relayKeys(81, Date.now());
  const text = encodeDescriptor(makeDescriptor(keys, { nickname: 'relay81', orPort: port, published: Math.floor(Date.now() / 1000) * 1000 }), keys.signer);
  const config = { nickname: 'auth1', dataDir, host: '127.0.0.1', port: 0, votingIntervalMs: 60_000, consensusLifetimeMs: 180_000, probe: async () => true };
  try {
    let a = await startAuthority(config);
    assert.equal((await http(`${a.url}/allium/v1/descriptor`, { method: 'POST', body: text })).status, 200);
    await a.publishNow();
    await a.close();
    const id = hex(keys.identity);
    const stored = JSON.parse(readFileSync(join(dataDir, 'history.json'), 'utf8')) as { version: number; relays: Record<string, { firstSeen: number; bandwidth: [number, number][] }> };
    assert.equal(stored.version, 1);
    const entry = stored.relays[id]!;
    assert.ok(entry.firstSeen <= Date.now());
    // A measurement taken before the restart (as the measurer would have recorded it, §9.4).
    entry.bandwidth.push([Date.now(), 123_456]);
    writeFileSync(join(dataDir, 'history.json'), JSON.stringify(stored));

    a = await startAuthority(config);
    try {
      await a.publishNow();
      const c = verifyConsensus((await http(`${a.url}/allium/v1/consensus`)).body, [a.identity], Date.now());
      const relay = c.relays.find((r) => r.nickname === 'relay81')!;
      assert.equal(relay.bandwidth, 123_456);
      assert.equal(relay.unmeasured, undefined);
      const again = JSON.parse(readFileSync(join(dataDir, 'history.json'), 'utf8')) as typeof stored;
      assert.equal(again.relays[id]!.firstSeen, entry.firstSeen, 'the first sighting is kept across the restart');
    } finally {
      await a.close();
    }
  } finally {
    await new Promise<void>((r) => listener.close(() => r()));
  }
});

test('a restarted authority honours what it signed before: no second, different consensus for those rounds', { timeout: 120_000 }, async (t) => {
  const cluster = await startCluster(t, 3);
  const relay = await fakeRelay(t, 82);
  await cluster.upload(relay.descriptor());
  await cluster.waitFor(0, (c) => c.signatures.length === 3 && c.relays.length === 1, 10 * I, 'a first consensus');
  await cluster.stop(0);
  // Before it went down it had (say) signed other bodies for the next rounds: records say so.
  const next = Math.ceil(Date.now() / I) * I;
  const marked: number[] = [];
  mkdirSync(join(cluster.dataDir(0), 'signed'), { recursive: true });
  for (let va = next; va < next + 5 * I; va += I) {
    writeFileSync(join(cluster.dataDir(0), 'signed', String(va / 1000)), 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n');
    marked.push(va);
  }
  await cluster.restart(0);
  // Those rounds form without it (2 of 3), and it reports refusing to sign.
  const during = await cluster.waitFor(1, (c) => marked.includes(c.validAfter), 10 * I, 'a consensus in a marked round');
  assert.equal(during.consensus.signatures.length, 2);
  assert.ok(!during.consensus.verifiedSigners.some((s) => hex(s) === hex(cluster.authorities[0]!.identity)));
  // A marked round can also fail for another reason first: the restarted authority may miss the
  // others' votes for the round it comes back in ("only 1 of 3 votes"). The refusal is looked for
  // in every marked round, and it must come in one of them.
  const refused = /already signed another consensus for this round/;
  const marks = () => cluster.authorities[0]!.recentRounds().filter((x) => marked.includes(x.validAfter));
  const refusal = await (async () => {
    const deadline = Date.now() + 10 * I;
    while (Date.now() < deadline) {
      const r = marks().find((x) => x.problem !== undefined && refused.test(x.problem));
      if (r !== undefined) return r;
      await new Promise((res) => setTimeout(res, 100));
    }
    return undefined;
  })();
  assert.ok(refusal !== undefined, `no marked round refused; their problems: ${JSON.stringify(marks().map((x) => x.problem ?? null))}`);
  // Afterwards it signs again.
  const last = marked[marked.length - 1]!;
  await cluster.waitFor(1, (c) => c.validAfter > last && c.signatures.length === 3, 10 * I, 'three signatures again');
});

test('a restarted authority reuses the vote it stored for a round instead of making a second one', { timeout: 120_000 }, async (t) => {
  const cluster = await startCluster(t, 3);
  const relay = await fakeRelay(t, 83);
  await cluster.upload(relay.descriptor());
  await cluster.waitFor(0, (c) => c.signatures.length === 3, 10 * I, 'a first consensus');
  await cluster.stop(0);
  // Votes it made for the coming rounds before going down (each with a marker parameter).
  const signer = loadSigner(cluster.dataDir(0))!;
  const identity = cluster.authorities[0]!.identity;
  const first = Math.ceil((Date.now() + I) / I) * I;
  const stored = new Map<number, string>();
  for (let va = first; va < first + 5 * I; va += I) {
    const text = encodeVote(
      {
        consensusMethods: [1, 2],
        published: va - I,
        validAfter: va,
        freshUntil: va + I,
        validUntil: va + LIFETIME,
        knownFlags: ['Running', 'Valid'],
        rawParams: new Map([['stored', va / 1000]]),
        authority: { nickname: 'auth1', identity, address: '127.0.0.1', dirPort: 9 },
        relays: [],
      },
      signer,
    );
    mkdirSync(join(cluster.dataDir(0), 'votes', String(va / 1000)), { recursive: true });
    writeFileSync(join(cluster.dataDir(0), 'votes', String(va / 1000), hex(identity)), text);
    stored.set(va, text);
  }
  await cluster.restart(0);
  // auth2 receives, for such a round, exactly the stored vote.
  const deadline = Date.now() + 10 * I;
  let seen: { va: number; text: string } | undefined;
  while (Date.now() < deadline && seen === undefined) {
    for (const va of stored.keys()) {
      const r = await http(`${cluster.authorities[1]!.url}/allium/v1/vote/${va / 1000}/${hex(identity)}`);
      if (r.status === 200) {
        seen = { va, text: r.body };
        break;
      }
    }
    await new Promise((res) => setTimeout(res, 100));
  }
  assert.ok(seen !== undefined, 'auth2 never held a vote of the restarted auth1 for those rounds');
  assert.equal(seen.text, stored.get(seen.va));
});
