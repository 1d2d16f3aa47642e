/**
 * Fuzz target for the client's SOCKS5 port (client/socks/): the server
 * handshake state machine fed a client's bytes (greeting, RFC 1929
 * authentication, request, early data). The outcome must not depend on how
 * the bytes are chunked, and a request it accepts re-encodes to itself.
 * (SOCKS4/4a, the tunnel and control ports do not exist yet.)
 */
import fc from 'fast-check';
import { SocksServerHandshake, type HandshakeStep } from '../../client/socks/handshake.js';
import { decodeRequest, encodeAuthRequest, encodeGreeting, encodeRequest, type AddressType } from '../../client/socks/messages.js';
import { concatAll } from '../../test/fuzz/fuzz-util.js';
import { loadCorpus } from '../corpus.js';
import { check, law, sameValue, type FuzzTarget } from '../engine.js';
import { byte, bytes, hostname, ipv4, ipv6, u16 } from './arbitraries.js';
import { chunksOf } from './link.js';

interface Outcome {
  sent: Uint8Array[];
  step: HandshakeStep;
  /** Chunks not fed because the handshake had ended (the server reads them later as stream data). */
  unfed: Uint8Array[];
}

function drive(chunks: Uint8Array[]): Outcome {
  const machine = new SocksServerHandshake();
  const sent: Uint8Array[] = [];
  let step: HandshakeStep = { needMore: true };
  let i = 0;
  while (i < chunks.length) {
    step = machine.feed(chunks[i++]!);
    if (step.send !== undefined) sent.push(step.send);
    if (!step.needMore) break;
  }
  return { sent, step, unfed: chunks.slice(i) };
}

const address = fc.oneof(
  ipv4.map((host) => ({ addressType: 'ipv4' as AddressType, host })),
  ipv6.map((host) => ({ addressType: 'ipv6' as AddressType, host })),
  hostname.map((host) => ({ addressType: 'domain' as AddressType, host })),
);
const latin1 = (max: number) => bytes(max).map((b) => Buffer.from(b).toString('latin1'));

/** Whole client transcripts: greeting, maybe authentication, a request, maybe early data. */
const transcript = fc
  .record({
    methods: fc.oneof(fc.constantFrom<number[]>([0], [2], [0, 2], [2, 0], [1], [0xff]), fc.array(byte, { minLength: 1, maxLength: 10 })),
    username: latin1(255),
    password: latin1(255),
    command: fc.oneof(fc.constant(1), byte),
    address,
    port: u16,
    early: fc.option(bytes(40)),
  })
  .map((t) => {
    const parts = [encodeGreeting({ methods: t.methods })];
    if (t.methods.includes(2)) parts.push(encodeAuthRequest({ username: t.username, password: t.password }));
    try {
      parts.push(encodeRequest({ command: t.command, ...t.address, port: t.port }));
    } catch {
      parts.push(Uint8Array.of(5, t.command, 0, 3, 0));
    }
    if (t.early !== null) parts.push(t.early);
    return concatAll(parts);
  });

export const socks5Target: FuzzTarget<Uint8Array> = {
  name: 'socks5',
  description: 'SocksServerHandshake fed a whole client transcript at once and in varied chunkings: same replies, same request or error; an accepted request re-encodes to itself',
  kind: 'bytes',
  modules: ['client/socks/handshake.ts', 'client/socks/messages.ts'],
  maxRandomLength: 1200,
  arbitrary: () => transcript,
  corpus: () => loadCorpus('socks5', 'bytes'),
  run(input) {
    const whole = drive([input]);
    const chunked = drive(chunksOf(input));
    sameValue('SOCKS replies under chunking', concatAll(chunked.sent), concatAll(whole.sent));
    check(whole.step.needMore === chunked.step.needMore, () => 'needMore differs under chunking');
    check((whole.step.error?.code ?? null) === (chunked.step.error?.code ?? null), () => `error ${whole.step.error?.code} vs ${chunked.step.error?.code} under chunking`);
    if (whole.step.error !== undefined) throw whole.step.error;
    const request = whole.step.request;
    sameValue('SOCKS request under chunking', chunked.step.request, request);
    if (request !== undefined) {
      const early = concatAll([chunked.step.earlyData ?? new Uint8Array(0), ...chunked.unfed]);
      sameValue('SOCKS early data under chunking', early, whole.step.earlyData ?? new Uint8Array(0));
    }
    if (request === undefined) return;
    law('SOCKS request round trip', () => {
      const again = decodeRequest(encodeRequest({ command: 1, addressType: request.addressType, host: request.host, port: request.port }));
      check(again !== null, () => 'a re-encoded request does not decode');
      sameValue('SOCKS request', { addressType: again!.value.addressType, host: again!.value.host, port: again!.value.port }, { addressType: request.addressType, host: request.host, port: request.port });
    });
  },
};

export function makeSocksCorpus(): Record<string, Uint8Array[]> {
  return {
    socks5: [
      concatAll([encodeGreeting({ methods: [0] }), encodeRequest({ command: 1, addressType: 'ipv4', host: '127.0.0.1', port: 80 })]),
      concatAll([encodeGreeting({ methods: [0, 2] }), encodeAuthRequest({ username: 'iso', password: 'x' }), encodeRequest({ command: 1, addressType: 'domain', host: 'example.com', port: 443 })]),
      concatAll([encodeGreeting({ methods: [0] }), encodeRequest({ command: 1, addressType: 'ipv6', host: '::1', port: 8080 }), Uint8Array.of(0x47, 0x45, 0x54, 0x20)]),
      ...fc.sample(transcript, { seed: 51, numRuns: 24 }),
    ],
  };
}
