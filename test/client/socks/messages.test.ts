import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DecodeError } from '../../../src/errors.js';
import { fromHex, hex } from '../../../src/bytes.js';
import {
  decodeAuthReply,
  decodeAuthRequest,
  decodeGreeting,
  decodeMethodSelection,
  decodeReply,
  decodeRequest,
  encodeAuthReply,
  encodeAuthRequest,
  encodeGreeting,
  encodeMethodSelection,
  encodeReply,
  encodeRequest,
  type Decoded,
} from '../../../client/socks/messages.js';

function isDecodeError(code: string) {
  return (err: unknown) => err instanceof DecodeError && err.code === code;
}

/** Round trip, trailing bytes left alone, and every strict prefix is "need more". */
function checkCodec<T>(name: string, bytes: Uint8Array, value: T, decode: (b: Uint8Array) => Decoded<T> | null): void {
  const d = decode(bytes);
  assert.ok(d, `${name}: decodes`);
  assert.deepEqual(d.value, value, `${name}: value`);
  assert.equal(d.length, bytes.length, `${name}: length`);
  const withTail = new Uint8Array([...bytes, 0xde, 0xad]);
  assert.equal(decode(withTail)?.length, bytes.length, `${name}: trailing bytes not consumed`);
  for (let i = 0; i < bytes.length; i++) {
    assert.equal(decode(bytes.subarray(0, i)), null, `${name}: prefix of ${i} bytes is need-more`);
  }
}

test('greeting round trip and prefixes', () => {
  const g = { methods: [0x00, 0x02] };
  const b = encodeGreeting(g);
  assert.equal(hex(b), '05020002');
  checkCodec('greeting', b, g, decodeGreeting);
  const many = { methods: Array.from({ length: 255 }, (_, i) => i) };
  checkCodec('greeting 255', encodeGreeting(many), many, decodeGreeting);
});

test('method selection and auth reply round trips', () => {
  checkCodec('selection', encodeMethodSelection({ method: 2 }), { method: 2 }, decodeMethodSelection);
  checkCodec('selection ff', encodeMethodSelection({ method: 0xff }), { method: 0xff }, decodeMethodSelection);
  checkCodec('auth reply', encodeAuthReply({ status: 0 }), { status: 0 }, decodeAuthReply);
  checkCodec('auth reply fail', encodeAuthReply({ status: 1 }), { status: 1 }, decodeAuthReply);
});

test('RFC 1929 request round trip, binary and empty credentials', () => {
  const a = { username: 'alice', password: 's3cret' };
  const b = encodeAuthRequest(a);
  assert.equal(hex(b), '0105616c69636506733363726574');
  checkCodec('auth', b, a, decodeAuthRequest);
  const bin = { username: '\u0000\u00ff\u0080', password: '' };
  checkCodec('auth binary', encodeAuthRequest(bin), bin, decodeAuthRequest);
  const max = { username: 'u'.repeat(255), password: 'p'.repeat(255) };
  checkCodec('auth max', encodeAuthRequest(max), max, decodeAuthRequest);
});

test('request round trips for every address type', () => {
  const cases = [
    { command: 1, addressType: 'ipv4' as const, host: '93.184.216.34', port: 80 },
    { command: 1, addressType: 'ipv4' as const, host: '0.0.0.0', port: 0 },
    { command: 1, addressType: 'domain' as const, host: 'example.com', port: 443 },
    { command: 1, addressType: 'domain' as const, host: 'x'.repeat(255), port: 65535 },
    { command: 1, addressType: 'domain' as const, host: 'abcdefghijklmnop.onion', port: 80 },
    { command: 2, addressType: 'ipv6' as const, host: '2001:db8::1', port: 8080 },
    { command: 3, addressType: 'ipv6' as const, host: '::', port: 1 },
    { command: 1, addressType: 'ipv6' as const, host: '::ffff:10.0.0.1', port: 22 },
  ];
  for (const c of cases) checkCodec(`request ${c.host}`, encodeRequest(c), c, decodeRequest);
  assert.equal(
    hex(encodeRequest({ command: 1, addressType: 'domain', host: 'a.b', port: 0x1bb })),
    '0501000303612e6201bb',
  );
});

test('reply round trips', () => {
  const cases = [
    { reply: 0, addressType: 'ipv4' as const, host: '0.0.0.0', port: 0 },
    { reply: 5, addressType: 'ipv6' as const, host: 'fe80::1:2', port: 9 },
    { reply: 2, addressType: 'domain' as const, host: 'relay.example', port: 9050 },
  ];
  for (const c of cases) checkCodec(`reply ${c.reply}`, encodeReply(c), c, decodeReply);
  assert.equal(hex(encodeReply(cases[0]!)), '05000001000000000000');
});

test('malformed inputs are typed DecodeErrors', () => {
  const m = isDecodeError('ERR_MALFORMED');
  assert.throws(() => decodeGreeting(fromHex('04')), m, 'SOCKS4 greeting');
  assert.throws(() => decodeGreeting(fromHex('0500')), m, 'NMETHODS 0');
  assert.throws(() => decodeGreeting(new TextEncoder().encode('GET / HTTP/1.1')), m, 'HTTP');
  assert.throws(() => decodeMethodSelection(fromHex('0400')), m);
  assert.throws(() => decodeAuthRequest(fromHex('05')), m, 'auth version');
  assert.throws(() => decodeAuthReply(fromHex('02')), m);
  assert.throws(() => decodeRequest(fromHex('040100')), m, 'request version');
  assert.throws(() => decodeRequest(fromHex('050101')), m, 'reserved byte');
  assert.throws(() => decodeRequest(fromHex('05010005')), m, 'bad ATYP');
  assert.throws(() => decodeRequest(fromHex('05010002')), m, 'ATYP 2');
  assert.throws(() => decodeRequest(fromHex('0501000300')), m, 'empty domain');
  assert.throws(() => decodeRequest(fromHex('050100030361006201bb')), m, 'NUL in domain');
  assert.throws(() => decodeRequest(fromHex('050100030361206201bb')), m, 'space in domain');
  assert.throws(() => decodeRequest(fromHex('05010003036180')), m, 'high byte, before the port arrives');
  assert.throws(() => decodeRequest(fromHex('0501000303610a')), m, 'control char');
  assert.throws(() => decodeReply(fromHex('050001ff')), m);
});

test('encoders refuse what the wire cannot carry', () => {
  const o = isDecodeError('ERR_OVERSIZED');
  const m = isDecodeError('ERR_MALFORMED');
  assert.throws(() => encodeRequest({ command: 1, addressType: 'domain', host: 'x'.repeat(256), port: 1 }), o);
  assert.throws(() => encodeRequest({ command: 1, addressType: 'domain', host: '', port: 1 }), m);
  assert.throws(() => encodeRequest({ command: 1, addressType: 'domain', host: 'a\u0000b', port: 1 }), m);
  assert.throws(() => encodeRequest({ command: 1, addressType: 'domain', host: '\u0161.example', port: 1 }), m);
  assert.throws(() => encodeRequest({ command: 1, addressType: 'domain', host: 'a b', port: 1 }), m);
  assert.throws(() => encodeRequest({ command: 1, addressType: 'ipv4', host: '1.2.3.256', port: 1 }), m);
  assert.throws(() => encodeRequest({ command: 1, addressType: 'ipv4', host: '1.2.3.4', port: 65536 }), m);
  assert.throws(() => encodeAuthRequest({ username: 'u'.repeat(256), password: '' }), o);
  assert.throws(() => encodeAuthRequest({ username: '\u0100', password: '' }), m);
  assert.throws(() => encodeGreeting({ methods: [] }), m);
  assert.throws(() => encodeGreeting({ methods: new Array<number>(256).fill(0) }), o);
});
