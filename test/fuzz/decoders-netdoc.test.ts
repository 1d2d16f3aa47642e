/**
 * Fuzz the signed document parsers (src/netdoc/): relay descriptors, the
 * consensus (with its method and params lines), votes, detached signatures
 * and authority certificates. Random text, valid documents with mutations
 * (characters, numbers, times, words, duplicated / removed / swapped lines,
 * truncation at every length) must parse or throw an AlliumError
 * (DocumentError); valid documents round-trip, also with unknown lines
 * inserted where §8.1 allows them. Seeded and deterministic. Exit policies,
 * params and the text primitives: decoders-netdoc-text.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { utf8 } from '../../src/bytes.js';
import { crypto } from '../../src/crypto/crypto.js';
import { encodeDescriptor, parseDescriptor } from '../../src/netdoc/descriptor.js';
import { CONSENSUS_FLAGS, encodeConsensus, parseConsensus, verifyConsensus } from '../../src/netdoc/consensus.js';
import { decodeAuthorityCert } from '../../src/netdoc/authority-cert.js';
import { networkParams } from '../../src/netdoc/params.js';
import { Rng, describeText, expectTyped, mutate, mutateText, outcomes, randomText } from './fuzz-util.js';
import { encodeVote, MAX_VOTE_BYTES, parseVote, verifyVote, type Vote } from '../../src/netdoc/vote.js';
import { encodeDetachedSignature, parseDetachedSignature, verifyDetachedSignature } from '../../src/netdoc/detached-signature.js';
import { T0, unknownLine, badUnknownLine, insertLine, descriptorSlots, consensusSlots, signerOf, resignConsensus, resignDescriptor, relayKeys, randomDescriptor, randomConsensusBody, byIdentity } from './netdoc-gen.js';

test('fuzz relay descriptors: parseDescriptor on random and mutated text; round trip', () => {
  const rng = new Rng(0xd0c00002);
  const keys = Array.from({ length: 3 }, () => relayKeys(rng));
  const texts = Array.from({ length: 12 }, (_, i) => {
    const k = keys[i % keys.length]!;
    return encodeDescriptor(randomDescriptor(rng, k, i < 3 ? 3 : 20), k.relaySigner);
  });
  // Unknown lines where §8.1 allows them: the same descriptor, still signed, with another digest.
  for (let i = 0; i < 200; i++) {
    const j = rng.int(12);
    const k = keys[j % keys.length]!;
    const base = texts[j]!;
    let text = base;
    for (let n = rng.range(1, 3); n > 0; n--) text = insertLine(text, rng.pick(descriptorSlots(text)), unknownLine(rng));
    text = resignDescriptor(text, k.relaySigner.signingSeed);
    assert.deepEqual(parseDescriptor(text).descriptor, parseDescriptor(base).descriptor, describeText(text));
    if (i < 4) texts.push(text);
    // A malformed would-be unknown line, or a well-formed one among the rules or after the signature, is refused.
    const lines = base.split('\n');
    const e = lines.findIndex((l) => l.startsWith('exit-policy '));
    for (const bad of [
      insertLine(base, rng.pick(descriptorSlots(base)), badUnknownLine(rng)),
      insertLine(base, e + 1 + rng.int(Number(lines[e]!.split(' ')[1])), unknownLine(rng)),
    ]) {
      assert.throws(() => parseDescriptor(resignDescriptor(bad, k.relaySigner.signingSeed)), { code: 'ERR_MALFORMED' }, describeText(bad));
    }
    assert.throws(() => parseDescriptor(`${base}${unknownLine(rng)}\n`), { code: 'ERR_MALFORMED' });
  }
  const tally = outcomes();
  const parse = (text: string, kind: string) =>
    expectTyped(() => parseDescriptor(text, rng.bool() ? { now: T0 } : {}), () => `parseDescriptor on ${kind} ${describeText(text)}`, tally);
  for (let i = 0; i < 500; i++) parse(randomText(rng, 2000), 'random');
  for (let i = 0; i < 4000; i++) {
    const text = mutateText(rng, rng.pick(texts));
    // The self-signature covers every byte before the signature line, and Ed25519
    // signatures are not malleable: only a genuine descriptor can be accepted.
    if (parse(text, 'mutated') !== undefined) assert.ok(texts.includes(text), `accepted a forged descriptor ${describeText(text)}`);
  }
  // Random text shaped like a descriptor: the header line, then random lines.
  for (let i = 0; i < 500; i++) parse(`${texts[0]!.split('\n').slice(0, rng.int(14)).join('\n')}\n${randomText(rng, 300)}`, 'half-random');
  // Every truncation of the small samples (only the last one can parse).
  for (const text of texts.slice(0, 2)) for (let n = 0; n < text.length; n++) parse(text.slice(0, n), 'truncated');
  assert.ok(tally.ok > 0 && tally.rejected > 1000, JSON.stringify(tally));

  for (let i = 0; i < 150; i++) {
    const k = rng.pick(keys);
    const d = randomDescriptor(rng, k);
    const text = encodeDescriptor(d, k.relaySigner);
    const { descriptor, digest } = parseDescriptor(text, { now: d.published });
    assert.deepEqual(descriptor, d);
    assert.deepEqual(digest, crypto.sha256(utf8(text)));
    assert.equal(encodeDescriptor(descriptor, k.relaySigner), text);
  }
});

test('fuzz consensus: parseConsensus / verifyConsensus on random and mutated text; round trip', () => {
  const rng = new Rng(0xd0c00003);
  const auths = Array.from({ length: 3 }, () => relayKeys(rng));
  const trusted = auths.map((a) => a.identity);
  const pool = Array.from({ length: 8 }, () => relayKeys(rng));
  const texts = Array.from({ length: 8 }, (_, i) => {
    const signers = auths.slice(0, rng.range(1, 3));
    return encodeConsensus(randomConsensusBody(rng, auths.slice(0, rng.range(1, 3)), pool, i < 2 ? 1 : 8), signers.map(signerOf));
  });
  // Unknown lines where §8.1 allows them (header and router entries): same consensus, signatures still verify.
  const seeds = auths.map(signerOf);
  for (let i = 0; i < 150; i++) {
    const base = texts[rng.int(8)]!;
    let text = base;
    for (let n = rng.range(1, 4); n > 0; n--) text = insertLine(text, rng.pick(consensusSlots(text)), unknownLine(rng));
    text = resignConsensus(text, seeds);
    const want = parseConsensus(base);
    const got = verifyConsensus(text, trusted, want.validAfter);
    assert.deepEqual(
      [got.consensusMethod, got.rawParams, got.params, got.authorities, got.relays],
      [want.consensusMethod, want.rawParams, want.params, want.authorities, want.relays],
      describeText(text),
    );
    if (i < 4) texts.push(text);
    const bad = insertLine(base, rng.pick(consensusSlots(base)), badUnknownLine(rng));
    assert.throws(() => parseConsensus(resignConsensus(bad, seeds)), { code: 'ERR_MALFORMED' }, describeText(bad));
    // After the footer (among or after the signatures) nothing unknown may stand.
    const footer = base.split('\n').indexOf('directory-footer');
    const after = insertLine(base, rng.range(footer + 1, base.split('\n').length - 1), unknownLine(rng));
    assert.throws(() => parseConsensus(after), { code: 'ERR_MALFORMED' }, describeText(after));
  }
  const tally = outcomes();
  const bodies = texts.map((t) => parseConsensus(t).bodyText);
  const both = (text: string, kind: string) => {
    expectTyped(() => parseConsensus(text), () => `parseConsensus on ${kind} ${describeText(text)}`, tally);
    const ok = expectTyped(() => verifyConsensus(text, trusted, T0), () => `verifyConsensus on ${kind} ${describeText(text)}`, tally);
    // Signature lines may be dropped or repeated while a majority remains, but the signed body cannot change.
    if (ok !== undefined) assert.ok(bodies.includes(parseConsensus(text).bodyText), `accepted a forged consensus ${describeText(text)}`);
  };
  for (let i = 0; i < 400; i++) both(randomText(rng, 2000), 'random');
  for (let i = 0; i < 2500; i++) both(mutateText(rng, rng.pick(texts)), 'mutated');
  for (let i = 0; i < 400; i++) both(`${texts[2]!.split('\n').slice(0, rng.int(20)).join('\n')}\n${randomText(rng, 300)}`, 'half-random');
  for (const text of texts.slice(0, 2)) for (let n = 0; n < text.length; n++) both(text.slice(0, n), 'truncated');
  assert.ok(tally.ok > 0 && tally.rejected > 1000, JSON.stringify(tally));

  for (let i = 0; i < 100; i++) {
    const body = randomConsensusBody(rng, auths.slice(0, rng.range(1, 3)), pool, 8);
    const signers = auths.slice(0, rng.range(2, 3));
    const text = encodeConsensus(body, signers.map(signerOf));
    const parsed = parseConsensus(text);
    const expected = { ...body, authorities: byIdentity(body.authorities), relays: byIdentity(body.relays) };
    assert.deepEqual(
      {
        consensusMethod: parsed.consensusMethod,
        rawParams: parsed.rawParams,
        validAfter: parsed.validAfter,
        freshUntil: parsed.freshUntil,
        validUntil: parsed.validUntil,
        authorities: parsed.authorities,
        relays: parsed.relays,
      },
      { ...expected, rawParams: new Map([...body.rawParams!].sort(([a], [b]) => (a < b ? -1 : 1))) },
    );
    assert.deepEqual(parsed.params, networkParams(body.rawParams!));
    assert.deepEqual(parsed.signatures.map((s) => s.identity), signers.map((s) => s.identity));
    const verified = verifyConsensus(text, trusted, body.validAfter);
    assert.deepEqual(verified.relays, expected.relays);
  }
});

test('fuzz votes, detached signatures and authority certificates: typed errors only; round trips; a changed byte never verifies', () => {
  const rng = new Rng(0xd0c00007);
  const auths = Array.from({ length: 2 }, () => relayKeys(rng));
  const pool = Array.from({ length: 6 }, () => relayKeys(rng));
  const votes = auths.map((a) => {
    const body = randomConsensusBody(rng, [a], pool, 6);
    const vote: Vote = {
      consensusMethods: [1, 2],
      published: body.validAfter - 1000,
      validAfter: body.validAfter,
      freshUntil: body.validAfter + 1000,
      validUntil: body.validAfter + 60_000,
      knownFlags: [...CONSENSUS_FLAGS],
      rawParams: body.rawParams!,
      authority: body.authorities[0]!,
      relays: body.relays.map((r) => (rng.bool() ? { ...r, measured: rng.int(2 ** 30) } : r)),
    };
    return { vote, text: encodeVote(vote, signerOf(a)) };
  });
  const tally = outcomes();
  for (const { vote, text } of votes) {
    const back = verifyVote(text, T0, 0);
    assert.deepEqual(back.relays, byIdentity(vote.relays));
    assert.deepEqual(back.authority, vote.authority);
    for (let n = 0; n < text.length; n += 7) expectTyped(() => parseVote(text.slice(0, n)), () => `parseVote truncated at ${n}`, tally);
    for (let i = 0; i < 800; i++) {
      const mutated = mutateText(rng, text);
      const ok = expectTyped(() => verifyVote(mutated, T0, 0), () => `verifyVote on ${describeText(mutated)}`, tally);
      if (ok !== undefined) assert.equal(ok.bodyText, back.bodyText, `accepted a changed vote ${describeText(mutated)}`);
    }
  }
  for (let i = 0; i < 300; i++) expectTyped(() => parseVote(randomText(rng, 1500)), () => 'parseVote on random text', tally);
  assert.throws(() => parseVote(`${votes[0]!.text}${'x'.repeat(MAX_VOTE_BYTES)}`), { code: 'ERR_OVERSIZED' });

  const digest = rng.bytes(32);
  const sig = encodeDetachedSignature(T0, digest, signerOf(auths[0]!));
  assert.deepEqual(verifyDetachedSignature(sig, T0, 0).digest, digest);
  for (let n = 0; n < sig.length; n++) expectTyped(() => parseDetachedSignature(sig.slice(0, n)), () => `parseDetachedSignature truncated at ${n}`, tally);
  for (let i = 0; i < 1500; i++) {
    const mutated = mutateText(rng, sig);
    const ok = expectTyped(() => verifyDetachedSignature(mutated, T0, 0), () => `verifyDetachedSignature on ${describeText(mutated)}`, tally);
    if (ok !== undefined) assert.deepEqual(ok.digest, digest, `accepted a changed signature ${describeText(mutated)}`);
  }
  assert.throws(() => parseDetachedSignature(sig + 'x'.repeat(2048)), { code: 'ERR_OVERSIZED' });

  const cert = signerOf(auths[0]!).cert.bytes;
  for (let i = 0; i < 1500; i++) {
    const bytes = rng.bool(0.2) ? rng.bytes(rng.int(260)) : mutate(rng, cert);
    const ok = expectTyped(() => decodeAuthorityCert(bytes), () => `decodeAuthorityCert(${Buffer.from(bytes).toString('hex')})`, tally);
    if (ok !== undefined) assert.deepEqual(ok.bytes, cert, 'a changed certificate decoded');
  }
  assert.ok(tally.rejected > 3000, JSON.stringify(tally));
});
