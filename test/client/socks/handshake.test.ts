import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DecodeError, ProtocolError } from '../../../src/errors.js';
import { concat, fromHex, hex } from '../../../src/bytes.js';
import { SocksServerHandshake, MAX_HANDSHAKE_BYTES, failureReply, resolvedReply, successReply, type HandshakeStep } from '../../../client/socks/handshake.js';
import { encodeAuthRequest, encodeGreeting, encodeRequest, encodeSocks4Request } from '../../../client/socks/messages.js';
import { SocksReply } from '../../../client/socks/replies.js';

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
  assert.deepEqual(s2.request, { version: 5, command: 'connect', host: 'example.com', port: 443, addressType: 'domain' });
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
    version: 5,
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
  const g = new SocksServerHandshake().feed(fromHex('0301'));
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

// ---------------------------------------------------------------- SOCKS4 / SOCKS4a

const socks4Connect = encodeSocks4Request({ command: 1, addressType: 'ipv4', host: '10.0.0.7', port: 8080, userId: '' });
const socks4aConnect = encodeSocks4Request({ command: 1, addressType: 'domain', host: 'example.com', port: 80, userId: 'tab-3' });

test('SOCKS4 CONNECT to an address: the first byte picks the version, no reply until the stream is up', () => {
  const s = new SocksServerHandshake().feed(socks4Connect);
  assert.deepEqual(s.request, { version: 4, command: 'connect', host: '10.0.0.7', port: 8080, addressType: 'ipv4' });
  assert.equal(s.send, undefined);
  assert.equal(hex(successReply(s.request!)), '005a000000000000');
  assert.equal(hex(failureReply(s.request!, SocksReply.CONNECTION_REFUSED)), '005b000000000000');
});

test('SOCKS4a CONNECT to a hostname, byte by byte; the USERID is the isolation username', () => {
  const { sent, last } = feedBytewise(new SocksServerHandshake(), socks4aConnect);
  assert.equal(sent.length, 0);
  assert.deepEqual(last.request, { version: 4, command: 'connect', host: 'example.com', port: 80, addressType: 'domain', username: 'tab-3', password: '' });
});

test('SOCKS4a with pipelined data: the bytes after the hostname NUL are early data', () => {
  const s = new SocksServerHandshake().feed(concat(socks4aConnect, fromHex('474554')));
  assert.equal(s.request?.host, 'example.com');
  assert.equal(hex(s.earlyData!), '474554');
});

test('SOCKS4: BIND, unknown commands, RESOLVE_PTR and CONNECT to port 0 are rejected with 91', () => {
  for (const command of [2, 0x33, 0xf1]) {
    const s = new SocksServerHandshake().feed(encodeSocks4Request({ command, addressType: 'ipv4', host: '10.0.0.7', port: 80, userId: '' }));
    assert.equal(hex(s.send!), '005b000000000000', `command ${command}`);
    assert.ok(s.error instanceof ProtocolError);
  }
  const zero = new SocksServerHandshake().feed(encodeSocks4Request({ command: 1, addressType: 'domain', host: 'a.example', port: 0, userId: '' }));
  assert.equal(hex(zero.send!), '005b000000000000');
  assert.ok(zero.error);
});

test('SOCKS4: malformed or oversized requests get 91 and an error', () => {
  const cases: Array<[string, Uint8Array, string]> = [
    ['DSTIP 0.0.0.0', fromHex('0401005000000000' + '00'), 'ERR_MALFORMED'],
    ['empty SOCKS4a hostname', fromHex('04010050000000010000'), 'ERR_MALFORMED'],
    ['control byte in hostname', concat(fromHex('040100500000000100'), new TextEncoder().encode('a\tb'), fromHex('00')), 'ERR_MALFORMED'],
    ['USERID without NUL past 255 bytes', concat(fromHex('0401005001020304'), new Uint8Array(256).fill(0x41)), 'ERR_OVERSIZED'],
    ['hostname without NUL past 255 bytes', concat(fromHex('040100500000000100'), new Uint8Array(256).fill(0x61)), 'ERR_OVERSIZED'],
  ];
  for (const [what, bytes, code] of cases) {
    const s = new SocksServerHandshake().feed(bytes);
    assert.ok(s.error instanceof DecodeError && s.error.code === code, `${what}: ${s.error?.code}`);
    assert.equal(hex(s.send!), '005b000000000000', what);
  }
});

test('SOCKS4a RESOLVE: the answer rides in DSTIP with port 0; anything but IPv4 is a rejection', () => {
  const s = new SocksServerHandshake().feed(encodeSocks4Request({ command: 0xf0, addressType: 'domain', host: 'example.com', port: 0, userId: '' }));
  assert.deepEqual(s.request, { version: 4, command: 'resolve', host: 'example.com', port: 0, addressType: 'domain' });
  assert.equal(hex(resolvedReply(s.request!, { type: 'ipv4', value: '93.184.216.34' })), '005a00005db8d822');
  assert.equal(hex(resolvedReply(s.request!, { type: 'ipv6', value: '2001:db8::1' })), '005b000000000000');
  assert.equal(hex(resolvedReply(s.request!, null)), '005b000000000000');
});

// ---------------------------------------------------------------- Tor's RESOLVE and RESOLVE_PTR over SOCKS5

test('SOCKS5 RESOLVE and RESOLVE_PTR requests, and their replies as Tor gives them', () => {
  const hs = new SocksServerHandshake();
  hs.feed(greetNoAuth);
  const r = hs.feed(encodeRequest({ command: 0xf0, addressType: 'domain', host: 'example.com', port: 0 }));
  assert.deepEqual(r.request, { version: 5, command: 'resolve', host: 'example.com', port: 0, addressType: 'domain' });
  assert.equal(hex(resolvedReply(r.request!, { type: 'ipv4', value: '10.1.2.3' })), '050000010a0102030000');
  assert.equal(hex(resolvedReply(r.request!, { type: 'ipv6', value: '2001:db8::1' })), '0500000420010db80000000000000000000000010000');
  assert.equal(hex(resolvedReply(r.request!, null)), '05040001000000000000');

  const ptr = new SocksServerHandshake();
  ptr.feed(greetNoAuth);
  const p = ptr.feed(encodeRequest({ command: 0xf1, addressType: 'ipv4', host: '127.0.0.1', port: 0 }));
  assert.deepEqual(p.request, { version: 5, command: 'resolve_ptr', host: '127.0.0.1', port: 0, addressType: 'ipv4' });
  assert.equal(hex(resolvedReply(p.request!, { type: 'hostname', value: 'localhost' })), '050000030' + '9' + hex(new TextEncoder().encode('localhost')) + '0000');

  // RESOLVE_PTR with a domain field: accepted when it spells an address (canonical text), else 0x08.
  const spelled = new SocksServerHandshake();
  spelled.feed(greetNoAuth);
  assert.equal(spelled.feed(encodeRequest({ command: 0xf1, addressType: 'domain', host: '2001:DB8:0:0::1', port: 0 })).request?.host, '2001:db8::1');
  const named = new SocksServerHandshake();
  named.feed(greetNoAuth);
  const n = named.feed(encodeRequest({ command: 0xf1, addressType: 'domain', host: 'example.com', port: 0 }));
  assert.equal(hex(n.send!), '05080001000000000000');
  assert.ok(n.error instanceof ProtocolError);
});

test('SOCKS4a: a junk byte in an over-long hostname is malformed however the bytes arrive (fuzz regression: socks4)', () => {
  // USERID "u", then 300 hostname bytes without a NUL, a 0x01 at the 101st: found by `npm run fuzz -- socks4`,
  // where the whole request said ERR_OVERSIZED and the same bytes in two chunks ERR_MALFORMED.
  const name = new Uint8Array(300).fill(0x61);
  name[100] = 0x01;
  const input = concat(Uint8Array.of(4, 1, 0, 80, 0, 0, 0, 1, 0x75, 0), name);
  const whole = new SocksServerHandshake().feed(input);
  const split = new SocksServerHandshake();
  assert.equal(split.feed(input.subarray(0, 10 + 110)).error?.code, 'ERR_MALFORMED');
  assert.equal(whole.error?.code, 'ERR_MALFORMED');
  assert.equal(hex(whole.send!), '005b000000000000');
  // Without the junk byte, the same length is oversized both ways.
  const long = concat(Uint8Array.of(4, 1, 0, 80, 0, 0, 0, 1, 0x75, 0), new Uint8Array(300).fill(0x61));
  assert.equal(new SocksServerHandshake().feed(long).error?.code, 'ERR_OVERSIZED');
  const parts = new SocksServerHandshake();
  assert.equal(parts.feed(long.subarray(0, 120)).needMore, true);
  assert.equal(parts.feed(long.subarray(120)).error?.code, 'ERR_OVERSIZED');
});
