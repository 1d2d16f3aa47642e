/**
 * Fuzz the link layer's network-facing parsers (src/link/): the streaming
 * Deframer under random chunkings, FrameOpener on random and tampered
 * ciphertexts, the link handshake machines fed random and mutated messages,
 * and link certificates. Every call returns or throws an AlliumError; valid
 * input round-trips whatever the chunking. Seeded and deterministic: fixed
 * keys and fixed Noise ephemerals come from the PRNG.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { crypto } from '../../src/crypto/crypto.js';
import { AlliumError } from '../../src/errors.js';
import { CELL_LENGTH } from '../../src/constants.js';
import {
  Deframer,
  FrameOpener,
  FrameSealer,
  MAX_FRAME_CIPHERTEXT_USED,
  MIN_FRAME_CIPHERTEXT,
  encodeFrame,
} from '../../src/link/frame.js';
import { CipherState, type KeyPair } from '../../src/link/noise.js';
import {
  LINK_CERT_LENGTH,
  LinkInitiator,
  LinkResponder,
  decodeLinkCertificate,
  encodeLinkCertificate,
  signLinkCertificate,
  verifyLinkCertificate,
  type InitiatorOptions,
  type LinkHandshakeMachine,
  type ResponderOptions,
} from '../../src/link/link-handshake.js';
import { makeSigningKeyCert } from '../../src/netdoc/signing-key-cert.js';
import { Rng, chunkings, concatAll, describeBytes, expectTyped, fuzzBytes, mutate, outcomes } from './fuzz-util.js';

/** When the fuzzed relays' signing keys are certified (the handshakes here check no clock). */
const T0 = Date.UTC(2030, 0, 2);

function keyPair(rng: Rng): KeyPair {
  const secret = rng.bytes(32);
  return { secret, public: crypto.x25519PublicKey(secret) };
}

/** Feed `chunks` to a Deframer; every push returns frames or throws an AlliumError, after which every push throws one. */
function deframe(chunks: Uint8Array[], what: () => string): { frames: Uint8Array[]; failed: boolean; buffered: number } {
  const d = new Deframer();
  const frames: Uint8Array[] = [];
  let failed = false;
  for (const c of chunks) {
    if (failed) {
      assert.throws(() => d.push(c), (e) => e instanceof AlliumError, `${what()}: push after a failure must throw an AlliumError`);
      continue;
    }
    const got = expectTyped(() => d.push(c), what);
    if (got === undefined) failed = true;
    else frames.push(...got);
  }
  if (!failed) {
    assert.ok(d.buffered <= 2 + MAX_FRAME_CIPHERTEXT_USED, `${what()}: Deframer holds ${d.buffered} bytes`);
    expectTyped(() => d.end(), what);
  }
  return { frames, failed, buffered: d.buffered };
}

function randomCiphertextLength(rng: Rng): number {
  const r = rng.int(6);
  if (r === 0) return MIN_FRAME_CIPHERTEXT;
  if (r === 1) return MAX_FRAME_CIPHERTEXT_USED;
  if (r === 2) return rng.range(1, 8) * CELL_LENGTH + 16;
  return rng.range(MIN_FRAME_CIPHERTEXT, 3000);
}

test('fuzz Deframer: random streams in random chunkings; valid streams round-trip under any chunking', () => {
  const rng = new Rng(0x1ee70001);
  // (a) random bytes: a random header is almost always a bad length, so also
  // prefix random bodies with valid and edge-case headers.
  for (let i = 0; i < 1500; i++) {
    let stream = rng.bytes(rng.length(4000));
    if (rng.bool(0.5)) {
      const len = rng.pick([0, 1, MIN_FRAME_CIPHERTEXT - 1, MIN_FRAME_CIPHERTEXT, MAX_FRAME_CIPHERTEXT_USED, MAX_FRAME_CIPHERTEXT_USED + 1, 0xffff, rng.range(MIN_FRAME_CIPHERTEXT, 4000)]);
      stream = concatAll([Uint8Array.of(len >>> 8, len & 0xff), stream]);
    }
    const chunks = chunkings(rng, stream);
    deframe(chunks, () => `Deframer on random stream ${describeBytes(stream)}`);
  }
  // (b) valid streams: the frames come out intact whatever the chunking; mutated streams never misbehave.
  let roundTrips = 0;
  for (let i = 0; i < 300; i++) {
    const cts = Array.from({ length: rng.range(1, 4) }, () => rng.bytes(randomCiphertextLength(rng)));
    const stream = concatAll(cts.map(encodeFrame));
    const whole = deframe(chunkings(rng, stream), () => `Deframer on valid stream ${describeBytes(stream)}`);
    assert.equal(whole.failed, false);
    assert.deepEqual(whole.frames, cts);
    roundTrips++;
    const bad = mutate(rng, stream);
    deframe(chunkings(rng, bad), () => `Deframer on mutated stream ${describeBytes(bad)}`);
    // A stream cut short keeps the partial frame and end() reports ERR_TRUNCATED.
    const cut = stream.subarray(0, rng.int(stream.length));
    const d = new Deframer();
    for (const c of chunkings(rng, cut)) d.push(c);
    if (d.buffered > 0) assert.throws(() => d.end(), { code: 'ERR_TRUNCATED' });
  }
  assert.equal(roundTrips, 300);
  // (c) every cut point of one small stream, pushed in one chunk and byte by byte.
  const cts = [rng.bytes(MIN_FRAME_CIPHERTEXT), rng.bytes(MIN_FRAME_CIPHERTEXT + CELL_LENGTH)];
  const stream = concatAll(cts.map(encodeFrame));
  for (let n = 0; n <= stream.length; n += n < 8 || stream.length - n < 8 ? 1 : 37) {
    const prefix = stream.subarray(0, n);
    const one = deframe([prefix], () => `Deframer on prefix of ${n}`);
    assert.equal(one.failed, false);
    const bytewise = deframe(Array.from(prefix, (b) => Uint8Array.of(b)), () => `Deframer bytewise on prefix of ${n}`);
    assert.deepEqual(bytewise.frames, one.frames);
  }
});

test('fuzz FrameOpener: random and tampered ciphertexts throw ProtocolError; genuine frames still open afterwards', () => {
  const rng = new Rng(0x1ee70002);
  const key = rng.bytes(32);
  const sealer = new FrameSealer(new CipherState(key), 8);
  const opener = new FrameOpener(new CipherState(key), 8);
  const raw = new CipherState(key); // seals plaintexts that are not whole cells
  const rawOpener = new FrameOpener(new CipherState(key));
  const tally = outcomes();
  for (let i = 0; i < 600; i++) {
    // Random ciphertexts, of random and of valid lengths.
    const junk = rng.bytes(rng.bool() ? rng.length(3000) : randomCiphertextLength(rng));
    expectTyped(() => opener.open(junk), () => `FrameOpener.open on random ${describeBytes(junk)}`, tally);
    // A genuine frame, tampered: must not open.
    const cells = rng.bytes(CELL_LENGTH * rng.range(1, 3));
    const frame = sealer.seal(cells);
    const ct = new Deframer().push(frame)[0]!;
    const bad = mutate(rng, ct);
    if (!Buffer.from(bad).equals(Buffer.from(ct))) {
      assert.throws(() => opener.open(bad), (e) => e instanceof AlliumError && e.code === 'ERR_PROTOCOL', `tampered ${describeBytes(bad)}`);
    }
    // The genuine one still opens (a failed open does not advance the nonce), across rekeys.
    assert.deepEqual(opener.open(ct), cells);
    // Authentic ciphertext whose plaintext is not whole cells.
    const odd = raw.encryptWithAd(new Uint8Array(0), rng.bytes(rng.pick([0, CELL_LENGTH, 2 * CELL_LENGTH, rng.length(2 * CELL_LENGTH + 3)])));
    expectTyped(() => rawOpener.open(odd), () => `FrameOpener.open on odd plaintext ${describeBytes(odd)}`, tally);
  }
  assert.equal(tally.ok > 0 && tally.rejected > 0, true, JSON.stringify(tally));
  assert.equal(opener.framesReceived, 600);
});

test('fuzz link certificates: decodeLinkCertificate / verifyLinkCertificate; round trip', () => {
  const rng = new Rng(0x1ee70003);
  const relays = Array.from({ length: 4 }, () => {
    const seed = rng.bytes(32);
    const link = keyPair(rng);
    const signingSeed = rng.bytes(32);
    const signer = { signingSeed, cert: makeSigningKeyCert('relay', seed, signingSeed, T0, T0 + 30 * 86_400_000) };
    return { seed, identity: crypto.ed25519PublicKey(seed), link, cert: signLinkCertificate(signer, link.public) };
  });
  const certs = relays.map((r) => r.cert);
  const t1 = fuzzBytes('decodeLinkCertificate', rng, decodeLinkCertificate, certs, { random: 1000, maxRandomLength: 320, mutated: 1000 });
  for (let i = 0; i < 300; i++) expectTyped(() => decodeLinkCertificate(rng.bytes(LINK_CERT_LENGTH)), () => `decodeLinkCertificate on ${LINK_CERT_LENGTH} random bytes`, t1);
  assert.ok(t1.ok > 0 && t1.rejected > 0, JSON.stringify(t1));
  const t2 = outcomes();
  for (let i = 0; i < 800; i++) {
    const r = rng.pick(relays);
    const cert = rng.bool(0.8) ? mutate(rng, r.cert) : rng.bytes(rng.pick([LINK_CERT_LENGTH, rng.length(320)]));
    const linkKey = rng.bool(0.8) ? r.link.public : rng.bytes(32);
    expectTyped(() => verifyLinkCertificate(cert, linkKey), () => `verifyLinkCertificate on ${describeBytes(cert)}`, t2);
  }
  assert.ok(t2.rejected > 0, JSON.stringify(t2));
  for (const r of relays) {
    assert.deepEqual(verifyLinkCertificate(r.cert, r.link.public).identity, r.identity);
    for (let n = 0; n < r.cert.length; n++) assert.throws(() => verifyLinkCertificate(r.cert.subarray(0, n), r.link.public), { code: 'ERR_MALFORMED' });
  }
  for (let i = 0; i < 300; i++) {
    const c = { signingKeyCert: rng.bytes(201), signature: rng.bytes(64) };
    assert.deepEqual(decodeLinkCertificate(encodeLinkCertificate(c)), c);
  }
});

/** Push chunks; true if the machine accepted them all, false once it threw an AlliumError (then every push throws one). */
function feed(m: LinkHandshakeMachine, chunks: Uint8Array[], what: () => string): boolean {
  for (let i = 0; i < chunks.length; i++) {
    const r = expectTyped(() => (m.push(chunks[i]!), true), what);
    if (r === undefined) {
      for (const c of chunks.slice(i + 1, i + 3)) assert.throws(() => m.push(c), (e) => e instanceof AlliumError, `${what()}: push after failure`);
      assert.throws(() => m.push(new Uint8Array(1)), (e) => e instanceof AlliumError, `${what()}: push after failure`);
      return false;
    }
    if (m.done) return true;
  }
  return true;
}

test('fuzz link handshake: LinkResponder / LinkInitiator fed random and mutated messages in random chunkings', () => {
  const rng = new Rng(0x1ee70004);
  const respSeed = rng.bytes(32);
  const respLink = keyPair(rng);
  const respIdentity = crypto.ed25519PublicKey(respSeed);
  const respSigningSeed = rng.bytes(32);
  const respCert = signLinkCertificate({ signingSeed: respSigningSeed, cert: makeSigningKeyCert('relay', respSeed, respSigningSeed, T0, T0 + 86_400_000) }, respLink.public);
  const initSeed = rng.bytes(32);
  const initLink = keyPair(rng);
  const initSigningSeed = rng.bytes(32);
  const initCert = signLinkCertificate({ signingSeed: initSigningSeed, cert: makeSigningKeyCert('relay', initSeed, initSigningSeed, T0, T0 + 86_400_000) }, initLink.public);
  const respOpts: ResponderOptions = { staticKey: respLink, certificate: respCert, ephemeral: rng.bytes(32) };
  const relayInit: InitiatorOptions = { peerLinkKey: respLink.public, peerIdentity: respIdentity, staticKey: initLink, certificate: initCert, ephemeral: rng.bytes(32) };
  const clientInit: InitiatorOptions = { peerLinkKey: respLink.public, peerIdentity: respIdentity, staticKey: keyPair(rng), ephemeral: rng.bytes(32) };

  // Record the genuine transcripts (fixed ephemerals make them reproducible).
  const transcript = (io: InitiatorOptions) => {
    const i = new LinkInitiator(io);
    const r = new LinkResponder(respOpts);
    const m1 = concatAll(i.takeOutput());
    r.push(m1);
    const m2 = concatAll(r.takeOutput());
    i.push(m2);
    const m3 = concatAll(i.takeOutput());
    r.push(m3);
    assert.ok(i.done && r.done);
    return { m1, m2, m3 };
  };
  const relayT = transcript(relayInit);
  const clientT = transcript(clientInit);

  // Genuine transcripts complete under any chunking, and both sides agree.
  for (let k = 0; k < 40; k++) {
    const io = rng.bool() ? relayInit : clientInit;
    const i = new LinkInitiator(io);
    const r = new LinkResponder(respOpts);
    for (const c of chunkings(rng, concatAll(i.takeOutput()))) r.push(c);
    // (A machine that is done refuses further input, even an empty chunk.)
    for (const c of chunkings(rng, concatAll(r.takeOutput()))) if (!i.done) i.push(c);
    for (const c of chunkings(rng, concatAll(i.takeOutput()))) if (!r.done) r.push(c);
    assert.ok(i.done && r.done, 'genuine handshake in random chunks');
    assert.deepEqual(i.result.keys.handshakeHash, r.result.keys.handshakeHash);
    assert.deepEqual(r.result.peer.identity, io === relayInit ? crypto.ed25519PublicKey(initSeed) : null);
  }

  const tally = outcomes();
  const count = (ok: boolean) => (ok ? tally.ok++ : tally.rejected++);
  for (let k = 0; k < 250; k++) {
    // Responder, message 1 random or mutated.
    const m1 = rng.bool(0.3) ? rng.bytes(rng.length(300)) : mutate(rng, rng.pick([relayT.m1, clientT.m1]));
    count(feed(new LinkResponder(respOpts), chunkings(rng, m1), () => `LinkResponder on message 1 ${describeBytes(m1)}`));
    // Responder, genuine message 1 then message 3 random or mutated.
    const t = rng.pick([relayT, clientT]);
    const m3 = rng.bool(0.3) ? rng.bytes(rng.length(300)) : mutate(rng, t.m3);
    const r = new LinkResponder(respOpts);
    r.push(t.m1);
    count(feed(r, chunkings(rng, m3), () => `LinkResponder on message 3 ${describeBytes(m3)}`));
    // Initiator, message 2 random or mutated.
    const io = t === relayT ? relayInit : clientInit;
    const m2 = rng.bool(0.3) ? rng.bytes(rng.length(300)) : mutate(rng, t.m2);
    count(feed(new LinkInitiator(io), chunkings(rng, m2), () => `LinkInitiator on message 2 ${describeBytes(m2)}`));
  }
  assert.ok(tally.ok > 0 && tally.rejected > 0, JSON.stringify(tally));

  // Every truncation of each message: a prefix is never an error, only "not done yet".
  for (const t of [relayT, clientT]) {
    const io = t === relayT ? relayInit : clientInit;
    for (let n = 0; n < t.m1.length; n++) {
      const r = new LinkResponder(respOpts);
      r.push(t.m1.subarray(0, n));
      assert.equal(r.done, false);
      assert.equal(r.takeOutput().length, 0);
    }
    for (let n = 0; n < t.m2.length; n++) {
      const i = new LinkInitiator(io);
      i.takeOutput();
      i.push(t.m2.subarray(0, n));
      assert.equal(i.done, false);
    }
    const r = new LinkResponder(respOpts);
    r.push(t.m1);
    for (let n = 0; n < t.m3.length; n++) {
      if (n > 0) r.push(t.m3.subarray(n - 1, n));
      assert.equal(r.done, false);
    }
    r.push(t.m3.subarray(t.m3.length - 1));
    assert.equal(r.done, true);
    // Input after the end is an AlliumError, not a crash.
    assert.throws(() => r.push(rng.bytes(10)), (e) => e instanceof AlliumError);
  }
});
