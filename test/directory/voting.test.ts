/**
 * Authorities voting over real HTTP (docs/protocol.md §9.5-§9.8), in this
 * process, with a 2 s voting interval: identical consensuses with every
 * signature; a minority cannot add a relay; with one of three down the
 * consensus still forms with two signatures; with two down none forms; a
 * split brain never gives clients two different consensuses for one period;
 * malformed, forged, unknown and late votes and signatures get a 4xx and
 * change nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hex } from '../../src/bytes.js';
import { encodeVote, type Vote } from '../../src/netdoc/vote.js';
import { encodeDetachedSignature } from '../../src/netdoc/detached-signature.js';
import { parseSummary } from '../../src/netdoc/exit-policy.js';
import { CONSENSUS_METHOD, verifyConsensus, type VerifiedConsensus } from '../../src/netdoc/consensus.js';
import { formatTime } from '../../src/netdoc/text.js';
import { makeAuthorityCert } from '../../src/netdoc/authority-cert.js';
import { crypto } from '../../src/crypto/crypto.js';
import { bodyOf, CLUSTER_INTERVAL_MS as I, CLUSTER_LIFETIME_MS as LIFETIME, fakeRelay, http, startCluster, type Cluster } from '../support/authority-cluster.js';
import { relayKeys, seedOf } from '../netdoc/helpers.js';

/** Bound on waiting for something that takes a round or two (generous: a loaded machine slows every round). */
const ROUND_WAIT_MS = 10 * I;
/** Long enough for two whole rounds to pass. */
const TWO_ROUNDS_MS = 2 * I + I / 2;
const names = (c: VerifiedConsensus) => c.relays.map((r) => r.nickname).sort();

/** Waits until every listed authority serves the same verified consensus (same valid-after) satisfying `ok`; returns the texts. */
async function sameConsensus(cluster: Cluster, which: number[], ok: (c: VerifiedConsensus) => boolean, what: string): Promise<string[]> {
  const deadline = Date.now() + ROUND_WAIT_MS;
  let seen = '';
  while (Date.now() < deadline) {
    const all = await Promise.all(which.map((i) => cluster.consensus(i)));
    if (all.every((x) => x !== null && ok(x.consensus)) && new Set(all.map((x) => x!.consensus.validAfter)).size === 1) return all.map((x) => x!.text);
    seen = all.map((x) => (x === null ? 'none' : `${formatTime(x.consensus.validAfter)}/${x.consensus.signatures.length} sigs`)).join(', ');
    await new Promise((r) => setTimeout(r, 100));
  }
  // Each authority's last round says why it has nothing new (votes, signatures, a catch-up), for a failure seen only under load.
  const rounds = which.map((i) => `auth${i + 1} ${JSON.stringify(cluster.authorities[i]!.lastRound())}`).join('; ');
  throw new Error(`timed out waiting for ${what}; last seen ${seen}; last rounds: ${rounds}`);
}

test('three authorities: byte-identical consensuses with three signatures; a relay only one of them lists is left out', { timeout: 120_000 }, async (t) => {
  const cluster = await startCluster(t, 3);
  const [r1, r2, r3] = await Promise.all([fakeRelay(t, 101), fakeRelay(t, 102), fakeRelay(t, 103)]);
  assert.deepEqual(await cluster.upload(r1.descriptor()), [200, 200, 200]);
  assert.deepEqual(await cluster.upload(r2.descriptor()), [200, 200, 200]);
  // Only auth1 knows relay103: its vote alone cannot put it in the consensus.
  assert.deepEqual(await cluster.upload(r3.descriptor(), [0]), [200]);
  const texts = await sameConsensus(cluster, [0, 1, 2], (c) => c.relays.length >= 2 && c.signatures.length === 3, 'three identical consensuses');
  assert.equal(texts[0], texts[1]);
  assert.equal(texts[1], texts[2]);
  const c = verifyConsensus(texts[0]!, cluster.identities, Date.now());
  assert.deepEqual(names(c), ['relay101', 'relay102']);
  assert.equal(c.verifiedSigners.length, 3);
  assert.equal(c.authorities.length, 3);
  assert.deepEqual(c.authorities.map((a) => a.nickname).sort(), ['auth1', 'auth2', 'auth3']);
  assert.equal(c.consensusMethod, CONSENSUS_METHOD);
  assert.ok(c.bandwidthWeights !== undefined);
  // The votes are served to anyone who asks, by round and voter.
  const va = c.validAfter / 1000;
  const vote = await http(`${cluster.authorities[1]!.url}/allium/v1/vote/${va}/${hex(cluster.authorities[0]!.identity)}`);
  assert.equal(vote.status, 200);
  assert.match(vote.body, /^@type allium-vote 1\n/);
  assert.ok(vote.body.includes('r relay103 '), 'auth1 voted for relay103');
  assert.equal((await http(`${cluster.authorities[1]!.url}/allium/v1/signature/${va}`)).status, 200);

  // The status page (§9.10) of each authority: relays, flags, weights, uptime, times and signers.
  for (const a of cluster.authorities) {
    const page = await http(`${a.url}/`);
    assert.equal(page.status, 200);
    assert.match(page.body, /^<!doctype html>/);
    assert.match(page.body, /signatures that count<\/th><td>3 of 3 authorities<\/td>/);
    for (const nick of ['auth1', 'auth2', 'auth3']) assert.match(page.body, new RegExp(`<tr><td>${nick}</td><td>[0-9a-f]{16}</td><td>counts</td>`));
    assert.match(page.body, /<td>relay101<\/td><td>[0-9a-f]{16}<\/td><td>127\.0\.0\.1:\d+<\/td><td>[A-Za-z ]*Running Stable Valid<\/td><td>[0-9.]+ [kM]?B\/s \(unmeasured\)<\/td>/);
    // relay103 is known to auth1 alone, which shows it outside the consensus.
    if (a === cluster.authorities[0]) assert.match(page.body, /<td>relay103<\/td>.*<td>\(not in the consensus\)<\/td>/);
    else assert.ok(!page.body.includes('relay103'));
    assert.match(page.body, /<th>valid-after<\/th><td>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d<\/td>/);
    assert.match(page.body, /<td>up \d+ s<\/td>/);
    // Each authority published a round itself, or (a loaded machine) fetched what the others published (§9.5).
    assert.match(page.body, /<td>(published|fetched from the other authorities \(here: [^<]*\))<\/td>/);
  }
  assert.equal((await http(`${cluster.authorities[0]!.url}/`, { method: 'POST', body: 'x' })).status, 405);
});

test('one of three down: the consensus forms with two signatures; two of three down: no new consensus', { timeout: 120_000 }, async (t) => {
  const cluster = await startCluster(t, 3);
  const r1 = await fakeRelay(t, 111);
  await cluster.upload(r1.descriptor());
  await sameConsensus(cluster, [0, 1, 2], (c) => c.relays.length === 1 && c.signatures.length === 3, 'a first consensus');
  await cluster.stop(2);
  const stopped = Date.now();
  const two = await cluster.waitFor(0, (c) => c.signatures.length === 2 && c.validAfter > stopped, ROUND_WAIT_MS, 'a consensus with two signatures');
  assert.deepEqual(names(two.consensus), ['relay111']);
  // A client trusting all three accepts it: 2 of 3.
  assert.equal(verifyConsensus(two.text, cluster.identities, Date.now()).verifiedSigners.length, 2);
  assert.deepEqual(bodyOf((await cluster.waitFor(1, (c) => c.validAfter === two.consensus.validAfter, ROUND_WAIT_MS, 'the same round')).text), bodyOf(two.text));

  await cluster.stop(1);
  const lastBefore = (await cluster.consensus(0))!.consensus.validAfter;
  // Two rounds later auth1 still serves a consensus no newer than the one before (it cannot form one alone).
  await new Promise((r) => setTimeout(r, TWO_ROUNDS_MS));
  const now = await cluster.consensus(0);
  assert.ok(now === null || now.consensus.validAfter <= lastBefore + I, `auth1 published alone: ${now?.consensus.validAfter} > ${lastBefore}`);
  const report = cluster.authorities[0]!.lastRound()!;
  assert.equal(report.published, false);
  assert.match(report.problem!, /only 1 of 3 votes/);
});

test('split brain: a minority never publishes a consensus clients accept; 2|2 publishes nothing; for each period at most one body is accepted', { timeout: 180_000 }, async (t) => {
  const cluster = await startCluster(t, 4);
  const r1 = await fakeRelay(t, 121);
  await cluster.upload(r1.descriptor());
  await sameConsensus(cluster, [0, 1, 2, 3], (c) => c.relays.length === 1 && c.signatures.length === 4, 'a first consensus');

  // Watch every authority: every consensus a client would accept, by period.
  const accepted = new Map<number, Set<string>>();
  let watching = true;
  t.after(() => {
    watching = false;
  });
  const watcher = (async () => {
    while (watching) {
      for (let i = 0; i < 4; i++) {
        const got = await cluster.consensus(i);
        if (got === null) continue;
        const bodies = accepted.get(got.consensus.validAfter) ?? new Set();
        bodies.add(bodyOf(got.text));
        accepted.set(got.consensus.validAfter, bodies);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  })();

  // 1 | 3: the three keep publishing (3 of 4); auth1 alone cannot.
  cluster.partition([0], [1, 2, 3]);
  const cut = Date.now();
  // The relay changes its descriptor during the partition: only the majority side sees it.
  await cluster.upload(r1.descriptor({ bandwidth: 2_000_000, published: Math.floor(Date.now() / 1000) * 1000 + 1000 }), [1, 2, 3]);
  await cluster.waitFor(1, (c) => c.signatures.length === 3 && c.validAfter > cut + I, ROUND_WAIT_MS, 'the majority side to publish');
  const minority = await cluster.consensus(0);
  assert.ok(minority === null || minority.consensus.validAfter <= cut + I, 'the minority published a consensus clients accept');
  assert.match(cluster.authorities[0]!.lastRound()!.problem!, /only 1 of 4 votes/);

  // 2 | 2: nobody has a majority; nothing new is accepted anywhere.
  cluster.heal();
  cluster.partition([0, 1], [2, 3]);
  const split = Date.now();
  await new Promise((r) => setTimeout(r, TWO_ROUNDS_MS));
  for (let i = 0; i < 4; i++) {
    const got = await cluster.consensus(i);
    assert.ok(got === null || got.consensus.validAfter <= split + I, `auth${i + 1} published during a 2|2 split`);
  }

  // Healed: one consensus again, everywhere.
  cluster.heal();
  const healed = Date.now();
  // Agreement means one body everywhere, signed by a majority. All four signatures are usual, but a signature
  // that reaches an authority after it published (a loaded machine, 2 s rounds) legitimately leaves it out (§9.8).
  const healedTexts = await sameConsensus(cluster, [0, 1, 2, 3], (c) => c.validAfter > healed && c.signatures.length >= 3, 'agreement after healing');
  assert.equal(new Set(healedTexts.map((text) => bodyOf(text))).size, 1, 'one body at every authority after healing');
  watching = false;
  await watcher;
  for (const [va, bodies] of accepted) assert.equal(bodies.size, 1, `two different accepted consensuses for ${formatTime(va)}`);
});

test('an authority whose own rounds publish nothing serves the consensus the others published, from the next round on', { timeout: 120_000 }, async (t) => {
  const cluster = await startCluster(t, 3);
  const r1 = await fakeRelay(t, 151);
  await cluster.upload(r1.descriptor());
  await sameConsensus(cluster, [0, 1, 2], (c) => c.relays.length === 1 && c.signatures.length === 3, 'a first consensus');
  // auth1 holds signing records (§9.8) for another body in every coming round: it computes, signs and publishes
  // nothing of its own, though it reaches the others and they reach it. (Records from the round after next:
  // the next one may be under way.)
  const from = (Math.floor(Date.now() / I) + 2) * I;
  for (let k = 0; k < 30; k++) writeFileSync(join(cluster.dataDir(0), 'signed', String((from + k * I) / 1000)), 'not-the-body-it-computes\n');
  const own = cluster.identities[0]!;
  const caughtUp = await cluster.waitFor(0, (c) => c.validAfter >= from, ROUND_WAIT_MS, "auth1 serving the others' consensus");
  assert.equal(caughtUp.consensus.signatures.length, 2);
  assert.ok(!caughtUp.consensus.verifiedSigners.some((id) => hex(id) === hex(own)), 'auth1 signed nothing');
  const report = cluster.authorities[0]!.lastRound()!;
  assert.equal(report.published, false);
  assert.match(report.problem!, /already signed another consensus|no consensus computed/);
  const fetched = cluster.authorities[0]!.recentRounds().find((r) => r.validAfter === caughtUp.consensus.validAfter);
  assert.equal(fetched?.fetched, true, 'the round it caught up on is reported as fetched');
  // And it keeps up, round after round: one body, the others' two signatures, at all three.
  const texts = await sameConsensus(cluster, [0, 1, 2], (c) => c.validAfter >= caughtUp.consensus.validAfter + 2 * I && c.signatures.length === 2, 'all three on a later round');
  assert.equal(new Set(texts).size, 1);
});

test('non-transitive reachability (A–B, B–C, not A–C): votes travel through B, so all compute the same consensus', { timeout: 120_000 }, async (t) => {
  const cluster = await startCluster(t, 3);
  const r1 = await fakeRelay(t, 131);
  await cluster.upload(r1.descriptor());
  cluster.partition([0], [2]);
  const cut = Date.now();
  const texts = await sameConsensus(cluster, [0, 1, 2], (c) => c.validAfter > cut + I && c.relays.length === 1, 'one consensus for all three');
  assert.equal(bodyOf(texts[0]!), bodyOf(texts[2]!));
  for (const text of texts) assert.ok(verifyConsensus(text, cluster.identities, Date.now()).verifiedSigners.length >= 2);
});

test('malformed, forged, unknown, late and conflicting votes and signatures get a 4xx and change nothing', { timeout: 120_000 }, async (t) => {
  // The test holds the keys of a third configured authority ("auth3"), which it does not run.
  const seed3 = seedOf(141);
  const signing3 = crypto.sha256(new TextEncoder().encode('auth3 signing'));
  const now = Math.floor(Date.now() / 1000) * 1000;
  const signer3 = { signingSeed: signing3, cert: makeAuthorityCert(seed3, signing3, now - 3_600_000, now + 3_600_000) };
  const id3 = signer3.cert.identity;
  const cluster = await startCluster(t, 2, { extraIdentities: [{ url: 'http://127.0.0.1:9', identity: id3 }] });
  const a = cluster.authorities[0]!;
  const relayA = await fakeRelay(t, 142);
  const lonely = await fakeRelay(t, 143);
  await cluster.upload(relayA.descriptor());
  // relay143 is known to auth1 only: with one more vote for it, it would be listed.
  await cluster.upload(lonely.descriptor(), [0]);
  const first = await sameConsensus(cluster, [0, 1], (c) => c.relays.length === 1 && c.signatures.length === 2, 'a consensus of auth1 and auth2');
  const base = verifyConsensus(first[0]!, cluster.identities, Date.now());
  assert.deepEqual(names(base), ['relay142']);

  const post = (path: string, body: string) => http(`${a.url}${path}`, { method: 'POST', body });
  // Votes for the round after next, as auth3 would make them.
  const nextVa = Math.ceil((Date.now() + 2 * I) / I) * I;
  const voteBy = (signer: typeof signer3, identity: Uint8Array, over: Partial<Vote> = {}): string => {
    const k = relayKeys(143);
    const v: Vote = {
      consensusMethods: [1, 2],
      published: nextVa - 1000,
      validAfter: nextVa,
      freshUntil: nextVa + I,
      validUntil: nextVa + LIFETIME,
      knownFlags: ['Running', 'Valid'],
      rawParams: new Map(),
      authority: { nickname: 'auth3', identity, address: '127.0.0.1', dirPort: 9 },
      relays: [
        {
          nickname: 'relay143',
          identity: k.identity,
          address: '127.0.0.1',
          orPort: lonely.port,
          linkKey: k.linkKey,
          ntorOnionKey: k.ntorOnionKey,
          descriptorDigest: new Uint8Array(32).fill(1),
          flags: ['Running', 'Valid'],
          bandwidth: 1000,
          exitSummary: parseSummary('reject 1-65535'),
        },
      ],
      ...over,
    };
    return encodeVote(v, signer);
  };
  const good = voteBy(signer3, id3);
  // Malformed.
  assert.equal((await post('/allium/v1/vote', 'not a vote\n')).status, 400);
  assert.equal((await post('/allium/v1/vote', good.slice(0, -20))).status, 400);
  assert.equal((await post('/allium/v1/vote', good.replace('known-flags Running Valid', 'known-flags Valid Running'))).status, 400);
  // Forged: the body changed after signing; a certificate by another identity; an unknown voter.
  assert.equal((await post('/allium/v1/vote', good.replace('bandwidth=1000', 'bandwidth=1001'))).status, 403);
  const strangerSeed = seedOf(144);
  const strangerSigning = seedOf(145);
  const stranger = { signingSeed: strangerSigning, cert: makeAuthorityCert(strangerSeed, strangerSigning, now - 3_600_000, now + 3_600_000) };
  const unknown = await post('/allium/v1/vote', voteBy(stranger, stranger.cert.identity));
  assert.equal(unknown.status, 403);
  assert.match(unknown.body, /not a configured authority/);
  const expired = { ...signer3, cert: makeAuthorityCert(seed3, signing3, now - 7_200_000, now - 3_600_000) };
  const old = await post('/allium/v1/vote', voteBy(expired, id3));
  assert.equal(old.status, 403);
  assert.match(old.body, /certificate expired/);
  // Not the round being voted on: one in the past, one too far ahead, one whose times do not follow the timetable.
  assert.equal((await post('/allium/v1/vote', voteBy(signer3, id3, { validAfter: now - 10_000, published: now - 11_000, freshUntil: now - 9000, validUntil: now - 4000 }))).status, 409);
  assert.equal((await post('/allium/v1/vote', voteBy(signer3, id3, { validAfter: nextVa + 60_000, freshUntil: nextVa + 61_000, validUntil: nextVa + 66_000 }))).status, 409);
  assert.equal((await post('/allium/v1/vote', voteBy(signer3, id3, { validUntil: nextVa + 60_000 }))).status, 409);
  // Oversized: refused by length before anything is read.
  assert.equal((await post('/allium/v1/vote', 'x'.repeat(9 * 1024 * 1024))).status, 413);
  // Methods and paths.
  assert.equal((await http(`${a.url}/allium/v1/vote`)).status, 405);
  assert.equal((await http(`${a.url}/allium/v1/vote/123/${hex(id3)}`)).status, 404);
  assert.equal((await http(`${a.url}/allium/v1/signature/123`)).status, 404);
  assert.equal((await http(`${a.url}/allium/v1/vote/x/y`)).status, 404);

  // Signatures: malformed, over nothing computed here, over another consensus, by an unknown authority.
  assert.equal((await post('/allium/v1/signature', 'garbage\n')).status, 400);
  const digest = crypto.sha256(new TextEncoder().encode('some other consensus'));
  assert.equal((await post('/allium/v1/signature', encodeDetachedSignature(now - 60_000, digest, signer3))).status, 409);
  assert.equal((await post('/allium/v1/signature', encodeDetachedSignature(now, digest, stranger))).status, 403);
  const sigDoc = encodeDetachedSignature(base.validAfter, digest, signer3);
  assert.equal((await post('/allium/v1/signature', sigDoc)).status, 409);
  const tampered = sigDoc.replace(/consensus-digest (\S)/, (_m, c: string) => `consensus-digest ${c === 'A' ? 'B' : 'A'}`);
  assert.equal((await post('/allium/v1/signature', tampered)).status, 403);
  assert.equal((await post('/allium/v1/signature', 'x'.repeat(4096))).status, 413);

  // Nothing changed: the next consensuses still list relay142 alone, with two signatures.
  const after = Date.now();
  const later = await cluster.waitFor(0, (c) => c.validAfter > after + I, ROUND_WAIT_MS, 'a later consensus');
  assert.deepEqual(names(later.consensus), ['relay142']);
  assert.equal(later.consensus.signatures.length, 2);
  assert.equal((await cluster.consensus(1))!.consensus.signatures.length, 2);
});

test('a configured authority sending two different votes for one round: the first counts, the second is refused', { timeout: 120_000 }, async (t) => {
  const seed3 = seedOf(151);
  const signing3 = seedOf(152);
  const now = Math.floor(Date.now() / 1000) * 1000;
  const signer3 = { signingSeed: signing3, cert: makeAuthorityCert(seed3, signing3, now - 3_600_000, now + 3_600_000) };
  const cluster = await startCluster(t, 2, { extraIdentities: [{ url: 'http://127.0.0.1:9', identity: signer3.cert.identity }] });
  const relay = await fakeRelay(t, 153);
  await cluster.upload(relay.descriptor(), [0]);
  // Aim at a round whose votes are accepted now: from 1.5 intervals before valid-after until 3/8 of one before it.
  let va = Math.ceil((Date.now() + (3 * I) / 8 + 200) / I) * I;
  const make = (bandwidth: number) => {
    const k = relayKeys(153);
    return encodeVote(
      {
        consensusMethods: [1, 2],
        published: va - 1000,
        validAfter: va,
        freshUntil: va + I,
        validUntil: va + LIFETIME,
        knownFlags: ['Running', 'Valid'],
        rawParams: new Map(),
        authority: { nickname: 'auth3', identity: signer3.cert.identity, address: '127.0.0.1', dirPort: 9 },
        relays: [
          {
            nickname: 'relay153',
            identity: k.identity,
            address: '127.0.0.1',
            orPort: relay.port,
            linkKey: k.linkKey,
            ntorOnionKey: k.ntorOnionKey,
            descriptorDigest: new Uint8Array(32).fill(3),
            flags: ['Running', 'Valid'],
            bandwidth,
            exitSummary: parseSummary('reject 1-65535'),
          },
        ],
      },
      signer3,
    );
  };
  const post = (body: string) => http(`${cluster.authorities[0]!.url}/allium/v1/vote`, { method: 'POST', body });
  let first = await post(make(1000));
  for (let tries = 0; first.status === 409 && tries < 3; tries++) {
    // The machine was slow: aim at the round now open.
    va = Math.ceil((Date.now() + (3 * I) / 8 + 200) / I) * I;
    first = await post(make(1000));
  }
  assert.equal(first.status, 200, first.body);
  assert.equal((await post(make(1000))).status, 200, 'the same bytes again: duplicate');
  const second = await post(make(2000));
  assert.equal(second.status, 409);
  assert.match(second.body, /a different vote by this authority is already held/);
  // auth1 and the test's auth3 list relay153 (2 of 3 votes): it is in auth1's computation for that round.
  const held = await http(`${cluster.authorities[0]!.url}/allium/v1/vote/${va / 1000}/${hex(signer3.cert.identity)}`);
  assert.equal(held.status, 200);
  assert.match(held.body, /w bandwidth=1000\n/);
  // The round auth3 voted in counted its (first) vote: 3 votes, and relay153 (auth1 + auth3) is in the consensus.
  await cluster.waitFor(0, (c) => c.validAfter > va, ROUND_WAIT_MS, 'a later round');
  const report = cluster.authorities[0]!.recentRounds().find((r) => r.validAfter === va)!;
  assert.equal(report.votes, 3);
  assert.equal(report.relays, 1);
  const later = cluster.authorities[0]!.recentRounds().find((r) => r.validAfter > va)!;
  assert.equal(later.votes, 2);
  assert.equal(later.relays, 0);
});
