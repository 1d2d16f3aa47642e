import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DecodeError, ProtocolError } from '../../../src/errors.js';
import { concat, fromHex, hex } from '../../../src/bytes.js';
import { SocksServerHandshake, MAX_HANDSHAKE_BYTES, type HandshakeStep } from '../../../client/socks/handshake.js';
import { encodeAuthRequest, encodeGreeting, encodeRequest } from '../../../client/socks/messages.js';

const greetNoAuth = encodeGreeting({ methods: [0x00] });
const greetBoth = encodeGreeting({ methods: [0x00, 0x02] });
const auth = encodeAuthRequest({ username: 'circuit-a', password: 'pw' });
const connectDomain = encodeRequest({ command: 1, addressType: 'domain', host: 'example.com', port: 443 });

/** Feed byte by byte, collecting everything sent; returns the final step. */
function feedBytewise(hs: SocksServerHandshake, bytes: Uint8Array): { sent: Uint8Array; last: HandshakeStep } {
  const sent: Uint8Array[] = [];
  let last: HandshakeStep = { needMore: true };
  for (let i = 0; i < bytes.length; i++) {
    last = hs.feed(bytes.subarray(i, i + 1));
    if (last.send) sent.push(last.send);
    if (i < bytes.length - 1) assert.ok(last.needMore && !last.error && !last.request, `byte ${i}: still need more`);
  }
  return { sent: concat(...sent), last };
}

test('no-auth CONNECT to a domain, whole and byte by byte', () => {
  const hs = new SocksServerHandshake();
  const s1 = hs.feed(greetNoAuth);
  assert.equal(hex(s1.send!), '0500');
  assert.equal(s1.needMore, true);
  const s2 = hs.feed(connectDomain);
  assert.deepEqual(s2.request, { command: 'connect', host: 'example.com', port: 443, addressType: 'domain' });
  assert.equal(s2.send, undefined);
  assert.equal(s2.earlyData, undefined);
  assert.equal(s2.needMore, false);

  const { sent, last } = feedBytewise(new SocksServerHandshake(), concat(greetNoAuth, connectDomain));
  assert.equal(hex(sent), '0500');
  assert.equal(last.request?.host, 'example.com');
});

test('username/password is preferred and the credentials ride on the request', () => {
  const hs = new SocksServerHandshake();
  assert.equal(hex(hs.feed(greetBoth).send!), '0502');
  assert.equal(hex(hs.feed(auth).send!), '0100');
  const s = hs.feed(encodeRequest({ command: 1, addressType: 'ipv6', host: '2001:db8::7', port: 80 }));
  assert.deepEqual(s.request, {
    command: 'connect',
    host: '2001:db8::7',
    port: 80,
    addressType: 'ipv6',
    username: 'circuit-a',
    password: 'pw',
  });

  const { sent, last } = feedBytewise(new SocksServerHandshake(), concat(greetBoth, auth, connectDomain));
  assert.equal(hex(sent), '05020100');
  assert.equal(last.request?.username, 'circuit-a');
});

test('pipelined greeting+auth+request+data in one chunk: replies concatenated, early data kept', () => {
  const data = new TextEncoder().encode('GET / HTTP/1.1\r\nHost: example.com\r\n\r\n');
  const hs = new SocksServerHandshake();
  const s = hs.feed(concat(greetBoth, auth, connectDomain, data));
  assert.equal(hex(s.send!), '05020100');
  assert.equal(s.request?.host, 'example.com');
  assert.deepEqual(s.earlyData, data);
  // Early data split over two chunks, the first ending mid-request.
  const hs2 = new SocksServerHandshake();
  const all = concat(greetNoAuth, connectDomain, data);
  assert.equal(hs2.feed(all.subarray(0, 5)).needMore, true);
  const s2 = hs2.feed(all.subarray(5));
  assert.deepEqual(s2.earlyData, data);
});

test('early data is a copy, not a view of the caller\'s buffer', () => {
  const chunk = concat(greetNoAuth, connectDomain, fromHex('abcd'));
  const s = new SocksServerHandshake().feed(chunk);
  chunk.fill(0);
  assert.equal(hex(s.earlyData!), 'abcd');
});

test('no acceptable method → 0xFF and an error', () => {
  const s = new SocksServerHandshake().feed(encodeGreeting({ methods: [0x01, 0x80] }));
  assert.equal(hex(s.send!), '05ff');
  assert.ok(s.error instanceof ProtocolError);
  assert.equal(s.needMore, false);
});

test('BIND / UDP ASSOCIATE / unknown command → 0x07; unknown ATYP → 0x08', () => {
  for (const cmd of [2, 3, 9]) {
    const hs = new SocksServerHandshake();
    hs.feed(greetNoAuth);
    const s = hs.feed(fromHex(`05${cmd.toString(16).padStart(2, '0')}0001`)); // header only is enough
    assert.equal(hex(s.send!), '05070001000000000000', `cmd ${cmd}`);
    assert.ok(s.error);
  }
  const hs = new SocksServerHandshake();
  hs.feed(greetNoAuth);
  const s = hs.feed(fromHex('05010005'));
  assert.equal(hex(s.send!), '05080001000000000000');
  assert.ok(s.error);
});

test('malformed input → DecodeError, with a general-failure reply once in the request phase', () => {
  const g = new SocksServerHandshake().feed(fromHex('0401'));
  assert.ok(g.error instanceof DecodeError && g.error.code === 'ERR_MALFORMED');
  assert.equal(g.send, undefined);

  const hs = new SocksServerHandshake();
  hs.feed(greetNoAuth);
  const r = hs.feed(fromHex('0501000300'));
  assert.ok(r.error instanceof DecodeError);
  assert.equal(hex(r.send!), '05010001000000000000');

  // Replies produced earlier in the same chunk are still sent.
  const a = new SocksServerHandshake().feed(concat(greetBoth, fromHex('02')));
  assert.equal(hex(a.send!), '0502');
  assert.ok(a.error instanceof DecodeError);
});

test('input after completion or failure is an error', () => {
  const hs = new SocksServerHandshake();
  hs.feed(concat(greetNoAuth, connectDomain));
  assert.ok(hs.feed(fromHex('00')).error instanceof ProtocolError);
  const bad = new SocksServerHandshake();
  bad.feed(fromHex('00'));
  assert.ok(bad.feed(greetNoAuth).error);
});

test('handshake input is bounded', () => {
  assert.equal(MAX_HANDSHAKE_BYTES, 257 + 513 + 262);
  // The largest legal handshake fits.
  const big = concat(
    encodeGreeting({ methods: new Array<number>(255).fill(0x02) }),
    encodeAuthRequest({ username: 'u'.repeat(255), password: 'p'.repeat(255) }),
    encodeRequest({ command: 1, addressType: 'domain', host: 'd'.repeat(255), port: 1 }),
  );
  assert.equal(big.length, MAX_HANDSHAKE_BYTES);
  // It completes (no ERR_OVERSIZED); a 255-byte name is no hostname (253 at most, src/net/hostname.ts), so it is refused with 0x04.
  const step = new SocksServerHandshake().feed(big);
  assert.ok(step.error instanceof DecodeError && step.error.code === 'ERR_MALFORMED');
  assert.equal(hex(step.send!.subarray(-10)), '05040001000000000000');
  // The longest valid name: 253 bytes and a trailing dot.
  const longest = `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(61)}.`;
  const fits = new SocksServerHandshake().feed(
    concat(
      encodeGreeting({ methods: new Array<number>(255).fill(0x02) }),
      encodeAuthRequest({ username: 'u'.repeat(255), password: 'p'.repeat(255) }),
      encodeRequest({ command: 1, addressType: 'domain', host: longest, port: 1 }),
    ),
  );
  assert.equal(fits.request?.host, longest);
  // A tighter bound trips on an incomplete handshake that grows past it.
  const hs = new SocksServerHandshake({ maxHandshakeBytes: 64 });
  assert.equal(hs.feed(fromHex('05ff')).needMore, true);
  const s = hs.feed(new Uint8Array(100));
  assert.ok(s.error instanceof DecodeError && s.error.code === 'ERR_OVERSIZED');
});
