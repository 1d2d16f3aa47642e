/**
 * Fuzz targets for the link layer (src/link/) and the circuit handshake
 * (src/crypto/ntor-v3.ts): the frame stream (Deframer then FrameOpener), the
 * Noise XK link handshake on both sides, link certificates, and the relay's
 * side of ntor-v3 (the onionskin of a CREATE2).
 *
 * Keys and ephemerals are fixed (fuzz/corpus.ts fixedSecret), so the genuine
 * transcripts in the corpus complete and mutations of them go deep.
 */
import fc from 'fast-check';
import { CELL_LENGTH, TOR1_KEY_MATERIAL_LENGTH } from '../../src/constants.js';
import { crypto } from '../../src/crypto/crypto.js';
import { truncated } from '../../src/errors.js';
import { Deframer, FrameOpener, FrameSealer, MAX_CELLS_PER_FRAME, encodeFrame } from '../../src/link/frame.js';
import { CipherState } from '../../src/link/noise.js';
import {
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
import { makeSigningKeyCert, type SigningKeySigner } from '../../src/netdoc/signing-key-cert.js';
import { decodeNtorExtensions, encodeNtorExtensions } from '../../src/cell/ntor-extensions.js';
import { CIRCUIT_VERIFICATION } from '../../src/circuit/handshake-params.js';
import { ntorV3ClientStart, ntorV3ServerHandshake, type NtorV3RelaySecret } from '../../src/crypto/ntor-v3.js';
import { concatAll } from '../../test/fuzz/fuzz-util.js';
import { fixedSecret, loadCorpus } from '../corpus.js';
import { check, sameBytes, sameValue, type FuzzTarget } from '../engine.js';
import { byte, bytes, u16 } from './arbitraries.js';

/** Split `input` into chunks whose sizes follow from its own bytes (deterministic, varied, some of one byte). */
export function chunksOf(input: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  let state = (input.length * 2654435761) >>> 0;
  for (let at = 0; at < input.length; ) {
    state = (Math.imul(state ^ (input[at] ?? 0), 1103515245) + 12345) >>> 0;
    const r = state >>> 28;
    const len = r < 2 ? 1 : r < 6 ? 1 + (state & 7) : r < 10 ? 1 + (state & 0x1ff) : input.length;
    out.push(input.subarray(at, at + len));
    at += len;
  }
  return out;
}

const FRAME_KEY = fixedSecret('frame-key');
/** Frames rekey every 4 frames here, so the fuzzer reaches the rekey path. */
const FRAME_REKEY = 4;

export const linkFramesTarget: FuzzTarget<Uint8Array> = {
  name: 'link-frames',
  description: 'a received link byte stream: Deframer in varied chunkings, then FrameOpener on each frame; re-sealing the cells gives the same bytes',
  kind: 'bytes',
  modules: ['src/link/frame.ts'],
  maxRandomLength: 4000,
  arbitrary: () =>
    fc.oneof(
      // Genuine frames of 1..3 cells (the key and nonces the opener expects), then maybe junk.
      fc.tuple(fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 1, maxLength: 5 }), bytes(1, 0), byte).map(([sizes, junk, fill]) => {
        const sealer = new FrameSealer(new CipherState(FRAME_KEY), FRAME_REKEY);
        return concatAll([...sizes.map((k) => sealer.seal(new Uint8Array(k * CELL_LENGTH).fill(fill))), junk]);
      }),
      // Well-formed framing around random ciphertexts of interesting lengths.
      fc.array(fc.oneof(fc.constantFrom(0, 1, CELL_LENGTH + 15, CELL_LENGTH + 16, MAX_CELLS_PER_FRAME * CELL_LENGTH + 16, 0xffff), fc.integer({ min: 0, max: 3000 })), { minLength: 1, maxLength: 3 }).map((lengths) =>
        concatAll(lengths.map((n) => encodeFrame(new Uint8Array(n)))),
      ),
    ),
  corpus: () => loadCorpus('link-frames', 'bytes'),
  run(input) {
    const deframer = new Deframer();
    const opener = new FrameOpener(new CipherState(FRAME_KEY), FRAME_REKEY);
    const sealer = new FrameSealer(new CipherState(FRAME_KEY), FRAME_REKEY);
    const resealed: Uint8Array[] = [];
    for (const chunk of chunksOf(input)) {
      for (const ct of deframer.push(chunk)) {
        const cells = opener.open(ct);
        resealed.push(sealer.seal(cells));
        check(deframer.buffered <= 2 + 0xffff, () => `Deframer holds ${deframer.buffered} bytes`);
      }
    }
    deframer.end();
    sameBytes('link frames', concatAll(resealed), input);
  },
};

// ---- link handshake ----

function keyPair(label: string) {
  const secret = fixedSecret(label);
  return { secret, public: crypto.x25519PublicKey(secret) };
}

/** A relay's signer (docs/protocol.md §8.2.3): its identity certifies a fixed signing key for January 2030. */
function relaySigner(label: string): SigningKeySigner {
  const signingSeed = fixedSecret(`${label}-signing`);
  return { signingSeed, cert: makeSigningKeyCert('relay', fixedSecret(`${label}-identity`), signingSeed, Date.UTC(2030, 0, 1), Date.UTC(2030, 0, 31)) };
}

const RESP_SEED = fixedSecret('responder-identity');
const RESP_SIGNER = relaySigner('responder');
const RESP_LINK = keyPair('responder-link');
const RESP_IDENTITY = crypto.ed25519PublicKey(RESP_SEED);
const RESP_OPTS: ResponderOptions = { staticKey: RESP_LINK, certificate: signLinkCertificate(RESP_SIGNER, RESP_LINK.public), ephemeral: fixedSecret('responder-ephemeral') };
const INIT_SEED = fixedSecret('initiator-identity');
const INIT_SIGNER = relaySigner('initiator');
const INIT_LINK = keyPair('initiator-link');
const RELAY_INIT: InitiatorOptions = {
  peerLinkKey: RESP_LINK.public,
  peerIdentity: RESP_IDENTITY,
  staticKey: INIT_LINK,
  certificate: signLinkCertificate(INIT_SIGNER, INIT_LINK.public),
  ephemeral: fixedSecret('initiator-ephemeral'),
};
const CLIENT_INIT: InitiatorOptions = { peerLinkKey: RESP_LINK.public, peerIdentity: RESP_IDENTITY, staticKey: keyPair('client-link'), ephemeral: fixedSecret('client-ephemeral') };

/** The genuine messages of one handshake with the fixed keys. */
function transcript(io: InitiatorOptions): { m1: Uint8Array; m2: Uint8Array; m3: Uint8Array } {
  const i = new LinkInitiator(io);
  const r = new LinkResponder(RESP_OPTS);
  const m1 = concatAll(i.takeOutput());
  r.push(m1);
  const m2 = concatAll(r.takeOutput());
  i.push(m2);
  const m3 = concatAll(i.takeOutput());
  r.push(m3);
  return { m1, m2, m3 };
}

/**
 * A link-handshake input: role (1 byte: who is fed the rest), split (u16: how
 * many bytes arrive before the machine may answer), then the peer's bytes. A
 * peer cannot honestly send message 3 before it has read message 2, so the
 * bytes up to `split` are fed (in varied chunks) before the rest.
 */
const Role = { RESPONDER: 0, RELAY_INITIATOR: 1, CLIENT_INITIATOR: 2 } as const;

function feed(machine: LinkHandshakeMachine, input: Uint8Array): void {
  for (const chunk of chunksOf(input)) {
    if (machine.done) return;
    machine.push(chunk);
  }
}

function handshakeInput(role: number, ...messages: Uint8Array[]): Uint8Array {
  const split = messages.length > 1 ? messages[0]!.length : 0xffff;
  return concatAll([Uint8Array.of(role, split >>> 8, split & 0xff), ...messages]);
}

export const linkHandshakeTarget: FuzzTarget<Uint8Array> = {
  name: 'link-handshake',
  generatedPerBatch: 100,
  description: 'the Noise XK link handshake: LinkResponder fed messages 1 and 3, LinkInitiator (relay or client) fed message 2, in varied chunkings; a finished handshake names only a genuine peer',
  kind: 'bytes',
  modules: ['src/link/link-handshake.ts', 'src/link/noise.ts'],
  maxRandomLength: 400,
  arbitrary: () => {
    const relay = transcript(RELAY_INIT);
    const client = transcript(CLIENT_INIT);
    const message = fc.tuple(u16, bytes(300)).map(([len, body]) => concatAll([Uint8Array.of(len >>> 8, len & 0xff), body]));
    return fc.oneof(
      fc.constantFrom(
        handshakeInput(Role.RESPONDER, relay.m1, relay.m3),
        handshakeInput(Role.RESPONDER, client.m1, client.m3),
        handshakeInput(Role.RELAY_INITIATOR, relay.m2),
        handshakeInput(Role.CLIENT_INITIATOR, client.m2),
      ),
      // The genuine message 1 followed by a structured message 3 (length prefix + random).
      fc.tuple(fc.constantFrom(relay.m1, client.m1), message).map(([m1, m3]) => handshakeInput(Role.RESPONDER, m1, m3)),
      fc.tuple(fc.constantFrom(0, 1, 2), message, fc.option(message)).map(([role, a, b]) => (b === null ? handshakeInput(role, a) : handshakeInput(role, a, b))),
    );
  },
  corpus: () => loadCorpus('link-handshake', 'bytes'),
  run(input) {
    if (input.length < 3) throw truncated('link handshake fuzz input header');
    const role = input[0]! % 3;
    const split = (input[1]! << 8) | input[2]!;
    const machine: LinkHandshakeMachine =
      role === Role.RESPONDER ? new LinkResponder(RESP_OPTS) : new LinkInitiator(role === Role.RELAY_INITIATOR ? RELAY_INIT : CLIENT_INIT);
    machine.takeOutput();
    const data = input.subarray(3);
    feed(machine, data.subarray(0, split));
    machine.takeOutput();
    feed(machine, data.subarray(split));
    if (!machine.done) return;
    const peer = machine.result.peer;
    if (role === Role.RESPONDER) {
      const want = peer.identity === null ? null : Buffer.from(crypto.ed25519PublicKey(INIT_SEED)).toString('hex');
      check(peer.identity === null || Buffer.from(peer.identity).toString('hex') === want, () => 'responder accepted an identity nobody proved');
    } else {
      sameBytes('initiator peer identity', peer.identity ?? new Uint8Array(0), RESP_IDENTITY);
    }
  },
};

export const linkCertificateTarget: FuzzTarget<Uint8Array> = {
  name: 'link-certificate',
  description: 'decodeLinkCertificate / verifyLinkCertificate against a fixed link key; canonical round trip',
  kind: 'bytes',
  modules: ['src/link/link-handshake.ts'],
  maxRandomLength: 320,
  arbitrary: () =>
    fc.oneof(
      fc.constant(signLinkCertificate(INIT_SIGNER, RESP_LINK.public)),
      fc.record({ signingKeyCert: fc.oneof(fc.constant(INIT_SIGNER.cert.bytes), bytes(201, 201)), signature: bytes(64, 64) }).map(encodeLinkCertificate),
    ),
  corpus: () => loadCorpus('link-certificate', 'bytes'),
  run(input) {
    const cert = decodeLinkCertificate(input);
    sameBytes('link certificate', encodeLinkCertificate(cert), input);
    const certified = verifyLinkCertificate(input, RESP_LINK.public);
    sameBytes('certified identity', certified.identity, crypto.ed25519PublicKey(INIT_SEED));
  },
};

// ---- ntor-v3, relay side ----

const ONION_SECRET = fixedSecret('ntor-onion-key');
const NTOR_RELAY: NtorV3RelaySecret = { identity: RESP_IDENTITY, onionKey: crypto.x25519PublicKey(ONION_SECRET), onionSecret: ONION_SECRET };
const NTOR_EPHEMERAL = fixedSecret('ntor-server-ephemeral');

export const ntorServerTarget: FuzzTarget<Uint8Array> = {
  name: 'ntor-v3-server',
  generatedPerBatch: 100,
  description: "ntorV3ServerHandshake on a CREATE2 onionskin (with the relay's decoding of the client's extensions); an accepted onionskin carries a well-formed message",
  kind: 'bytes',
  modules: ['src/crypto/ntor-v3.ts'],
  maxRandomLength: 400,
  arbitrary: () =>
    fc.oneof(
      fc.tuple(bytes(32, 32), fc.array(fc.record({ type: byte, body: bytes(40) }), { maxLength: 3 })).map(
        ([eph, ext]) => ntorV3ClientStart(NTOR_RELAY, encodeNtorExtensions(ext), CIRCUIT_VERIFICATION, { ephemeralSecret: eph }).onionskin,
      ),
      // Past the key checks, then random.
      bytes(200).map((rest) => concatAll([NTOR_RELAY.identity, NTOR_RELAY.onionKey, rest])),
    ),
  corpus: () => loadCorpus('ntor-v3-server', 'bytes'),
  run(input) {
    let seen: Uint8Array | null = null;
    const result = ntorV3ServerHandshake(
      NTOR_RELAY,
      input,
      CIRCUIT_VERIFICATION,
      (message) => {
        seen = message;
        decodeNtorExtensions(message);
        return encodeNtorExtensions([]);
      },
      TOR1_KEY_MATERIAL_LENGTH,
      { ephemeralSecret: NTOR_EPHEMERAL },
    );
    check(seen !== null, () => 'accepted without reading the client message');
    sameValue('client message', result.clientMessage, seen);
    check(result.keyMaterial.length === TOR1_KEY_MATERIAL_LENGTH, () => 'key material length');
  },
};

export function makeLinkCorpus(): Record<string, Uint8Array[]> {
  const relay = transcript(RELAY_INIT);
  const client = transcript(CLIENT_INIT);
  const sealer = new FrameSealer(new CipherState(FRAME_KEY), FRAME_REKEY);
  const frames = [1, 2, 1, 3, 1, 1, 2].map((k, i) => sealer.seal(new Uint8Array(k * CELL_LENGTH).fill(i)));
  return {
    'link-frames': [frames[0]!, concatAll(frames.slice(0, 3)), concatAll(frames)],
    'link-handshake': [
      handshakeInput(Role.RESPONDER, relay.m1, relay.m3),
      handshakeInput(Role.RESPONDER, client.m1, client.m3),
      handshakeInput(Role.RELAY_INITIATOR, relay.m2),
      handshakeInput(Role.CLIENT_INITIATOR, client.m2),
    ],
    'link-certificate': [signLinkCertificate(INIT_SIGNER, RESP_LINK.public)],
    'ntor-v3-server': [0, 1, 2, 3].map(
      (i) => ntorV3ClientStart(NTOR_RELAY, encodeNtorExtensions(i === 0 ? [] : [{ type: i, body: new Uint8Array(i * 5).fill(i) }]), CIRCUIT_VERIFICATION, { ephemeralSecret: fixedSecret(`ntor-client-${i}`) }).onionskin,
    ),
  };
}
