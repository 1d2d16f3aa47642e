/**
 * Fuzz target for the client's SOCKS5 port (client/socks/): the server
 * handshake state machine fed a client's bytes (greeting, RFC 1929
 * authentication, request, early data). The outcome must not depend on how
 * the bytes are chunked, and a request it accepts re-encodes to itself.
 * The same machine fed SOCKS4 and SOCKS4a requests (the first byte, 4,
 * selects them) is the `socks4` target, under the same laws.
 */
import fc from 'fast-check';
import { SocksServerHandshake, type HandshakeStep } from '../../client/socks/handshake.js';
import {
  decodeRequest,
  decodeSocks4Request,
  encodeAuthRequest,
  encodeGreeting,
  encodeRequest,
  encodeSocks4Request,
  type AddressType,
} from '../../client/socks/messages.js';
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
  run: (input) => runHandshake(input),
};

/**
 * The laws both targets check: replies, outcome and early data do not depend
 * on chunking; a refusal is the machine's AlliumError; an accepted request
 * re-encodes (in its own SOCKS version) to a request that decodes to the same destination.
 */
function runHandshake(input: Uint8Array): void {
  const whole = drive([input]);
  const chunked = drive(chunksOf(input));
  sameValue('SOCKS replies under chunking', concatAll(chunked.sent), concatAll(whole.sent));
  check(whole.step.needMore === chunked.step.needMore, () => 'needMore differs under chunking');
  check((whole.step.error?.code ?? null) === (chunked.step.error?.code ?? null), () => `error ${whole.step.error?.code} vs ${chunked.step.error?.code} under chunking`);
  if (whole.step.error !== undefined) throw whole.step.error;
  const request = whole.step.request;
  sameValue('SOCKS request under chunking', chunked.step.request, request);
  if (request === undefined) return;
  const early = concatAll([chunked.step.earlyData ?? new Uint8Array(0), ...chunked.unfed]);
  sameValue('SOCKS early data under chunking', early, whole.step.earlyData ?? new Uint8Array(0));
  if (request.version === 4) {
    check(request.command !== 'resolve_ptr', () => 'SOCKS4 accepted RESOLVE_PTR');
    check(request.command !== 'connect' || request.port !== 0, () => 'SOCKS4 accepted CONNECT to port 0');
    check(whole.sent.length === 0, () => 'SOCKS4 replied before the final reply');
    law('SOCKS4 request round trip', () => {
      const code = request.command === 'connect' ? 1 : 0xf0;
      const again = decodeSocks4Request(encodeSocks4Request({ command: code, addressType: request.addressType === 'ipv4' ? 'ipv4' : 'domain', host: request.host, port: request.port, userId: request.username ?? '' }));
      check(again !== null, () => 'a re-encoded SOCKS4 request does not decode');
      sameValue('SOCKS4 request', again!.value, { command: code, addressType: request.addressType, host: request.host, port: request.port, userId: request.username ?? '' });
    });
    return;
  }
  law('SOCKS request round trip', () => {
    const again = decodeRequest(encodeRequest({ command: 1, addressType: request.addressType, host: request.host, port: request.port }));
    check(again !== null, () => 'a re-encoded request does not decode');
    sameValue('SOCKS request', { addressType: again!.value.addressType, host: again!.value.host, port: again!.value.port }, { addressType: request.addressType, host: request.host, port: request.port });
  });
}

/** NUL-free latin1 text (a USERID), sometimes with a NUL or over 255 bytes to reach the edges. */
const userId = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('', 'iso', 'a'.repeat(255)) },
  { weight: 3, arbitrary: latin1(60).map((u) => u.replace(/\0/g, '')) },
  { weight: 1, arbitrary: latin1(300) },
);

/** SOCKS4 and SOCKS4a requests: command, port, DSTIP (an address, or 0.0.0.x for 4a), USERID, a 4a hostname, maybe early data. */
const socks4Transcript = fc
  .record({
    command: fc.oneof({ weight: 6, arbitrary: fc.constantFrom(1, 0xf0) }, { weight: 1, arbitrary: byte }),
    port: fc.oneof(fc.constant(0), u16),
    destination: fc.oneof(
      ipv4.map((host) => ({ addressType: 'ipv4' as const, host })),
      fc.oneof(hostname, ipv4, fc.constantFrom('[::1]', 'EXAMPLE.com', 'a..b', '-x', 'x'.repeat(256))).map((host) => ({ addressType: 'domain' as const, host })),
    ),
    userId,
    early: fc.option(bytes(40)),
  })
  .map((t) => {
    let request: Uint8Array;
    try {
      request = encodeSocks4Request({ command: t.command, ...t.destination, port: t.port, userId: t.userId });
    } catch {
      // What the encoder refuses, spelled on the wire anyway: DSTIP 0.0.0.1, USERID and hostname as given, NUL-terminated.
      const user = Buffer.from(t.userId, 'latin1');
      const name = Buffer.from(t.destination.host, 'latin1');
      request = concatAll([Uint8Array.of(4, t.command & 0xff, t.port >>> 8, t.port & 0xff, 0, 0, 0, 1), user, Uint8Array.of(0), name, Uint8Array.of(0)]);
    }
    return t.early === null ? request : concatAll([request, t.early]);
  });

export const socks4Target: FuzzTarget<Uint8Array> = {
  name: 'socks4',
  description: 'SocksServerHandshake fed SOCKS4 / SOCKS4a requests whole and in varied chunkings: same reply, same request or error; an accepted request re-encodes to itself',
  kind: 'bytes',
  modules: ['client/socks/handshake.ts', 'client/socks/messages.ts'],
  maxRandomLength: 700,
  arbitrary: () => socks4Transcript,
  corpus: () => loadCorpus('socks4', 'bytes'),
  run: (input) => runHandshake(concatAll([Uint8Array.of(4), input.subarray(input[0] === 4 ? 1 : 0)])),
};

export function makeSocksCorpus(): Record<string, Uint8Array[]> {
  return {
    socks5: [
      concatAll([encodeGreeting({ methods: [0] }), encodeRequest({ command: 1, addressType: 'ipv4', host: '127.0.0.1', port: 80 })]),
      concatAll([encodeGreeting({ methods: [0, 2] }), encodeAuthRequest({ username: 'iso', password: 'x' }), encodeRequest({ command: 1, addressType: 'domain', host: 'example.com', port: 443 })]),
      concatAll([encodeGreeting({ methods: [0] }), encodeRequest({ command: 1, addressType: 'ipv6', host: '::1', port: 8080 }), Uint8Array.of(0x47, 0x45, 0x54, 0x20)]),
      ...fc.sample(transcript, { seed: 51, numRuns: 24 }),
    ],
    socks4: [
      encodeSocks4Request({ command: 1, addressType: 'ipv4', host: '127.0.0.1', port: 80, userId: '' }),
      encodeSocks4Request({ command: 1, addressType: 'ipv4', host: '10.1.2.3', port: 443, userId: 'isolation-key' }),
      encodeSocks4Request({ command: 1, addressType: 'domain', host: 'example.com', port: 443, userId: '' }),
      encodeSocks4Request({ command: 0xf0, addressType: 'domain', host: 'torproject.org', port: 0, userId: 'u' }),
      concatAll([encodeSocks4Request({ command: 1, addressType: 'domain', host: 'a.example', port: 8080, userId: 'x' }), Uint8Array.of(0x47, 0x45, 0x54, 0x20)]),
      ...fc.sample(socks4Transcript, { seed: 52, numRuns: 24 }).filter((b) => {
        try {
          runHandshake(b);
          return true;
        } catch {
          return false;
        }
      }),
    ],
  };
}
