/**
 * Typed relay messages (src/cell/relay-msg.ts): every kind round-trips,
 * Tor's own bodies decode to what they mean, and each malformed form gives
 * the DecodeError code docs/protocol.md §6 says.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeRelayMsg, encodeRelayMsg, isCircuitLevel, relayCommandOf, writeRelayMsg, type RelayMsg } from '../../src/cell/relay-msg.js';
import { RelayCommand, decodeRelayCell, encodeRelayCell } from '../../src/cell/relay-cell.js';
import { EndReason } from '../../src/cell/reasons.js';
import { DecodeError } from '../../src/errors.js';
import { fromHex, hex } from '../../src/bytes.js';

const code = (c: string) => (err: unknown) => err instanceof DecodeError && err.code === c;
const h = (s: string) => fromHex(s.replace(/\s+/g, ''));
const ascii = (s: string) => new TextEncoder().encode(s);

/** One sample per kind (several for the kinds with several forms). */
const SAMPLES: RelayMsg[] = [
  { kind: 'begin', host: 'example.com', port: 443, flags: 0 },
  { kind: 'begin', host: '10.1.2.3', port: 1, flags: 5 },
  { kind: 'begin', host: '2001:db8::1', port: 65535, flags: 0xffffffff },
  { kind: 'data', data: new Uint8Array(0) },
  { kind: 'data', data: ascii('hello') },
  { kind: 'data', data: new Uint8Array(498).fill(0xab) },
  { kind: 'end', reason: EndReason.DONE },
  { kind: 'end', reason: EndReason.EXITPOLICY },
  { kind: 'end', reason: EndReason.EXITPOLICY, address: '93.184.216.34' },
  { kind: 'end', reason: EndReason.EXITPOLICY, address: '93.184.216.34', ttl: 600 },
  { kind: 'end', reason: EndReason.EXITPOLICY, address: '2001:db8::f00b', ttl: 0xffffffff },
  { kind: 'end', reason: EndReason.EXITPOLICY, address: '2001:db8::f00b' },
  { kind: 'connected', address: null, ttl: 0 },
  { kind: 'connected', address: '127.0.0.1', ttl: 3600 },
  { kind: 'connected', address: '2001:db8::1122', ttl: 0 },
  { kind: 'connected', address: '::ffff:1.2.3.4', ttl: 7 },
  { kind: 'connected', address: '127.0.0.1', ttl: 300, flags: 0x80000000 },
  { kind: 'connected', address: '2001:db8::1122', ttl: 300, flags: 0x80000001 },
  { kind: 'sendme', version: 0, digest: null },
  { kind: 'sendme', version: 1, digest: new Uint8Array(20).fill(7) },
  {
    kind: 'extend2',
    specifiers: [
      { type: 0, body: h('7f0000011388') },
      { type: 3, body: new Uint8Array(32).fill(1) },
      { type: 128, body: new Uint8Array(32).fill(2) },
    ],
    handshakeType: 3,
    handshakeData: new Uint8Array(200).fill(9),
  },
  { kind: 'extend2', specifiers: [], handshakeType: 0xffff, handshakeData: new Uint8Array(0) },
  { kind: 'extended2', handshakeData: new Uint8Array(64).fill(3) },
  { kind: 'extended2', handshakeData: new Uint8Array(0) },
  { kind: 'truncate' },
  { kind: 'truncated', reason: 8 },
  { kind: 'drop' },
  { kind: 'resolve', hostname: 'www.example.org' },
  { kind: 'resolve', hostname: '4.3.2.1.in-addr.arpa' },
  { kind: 'resolved', answers: [] },
  {
    kind: 'resolved',
    answers: [
      { type: 'ipv4', address: '127.0.0.1', ttl: 3600 },
      { type: 'ipv6', address: '1234::5678', ttl: 128 },
      { type: 'hostname', hostname: 'www.example.org', ttl: 600 },
      { type: 'unrecognized', code: 99, value: ascii('anything'), ttl: 1 },
    ],
  },
  { kind: 'resolved', answers: [{ type: 'error', transient: true, ttl: 3600 }] },
  { kind: 'resolved', answers: [{ type: 'error', transient: false, ttl: 0 }] },
  { kind: 'begin_dir' },
  { kind: 'xoff' },
  { kind: 'xon', kbpsEwma: 0 },
  { kind: 'xon', kbpsEwma: 0xffffffff },
  { kind: 'fin' },
  { kind: 'unrecognized', command: 6, body: ascii('obsolete EXTEND') },
  { kind: 'unrecognized', command: 249, body: ascii('arbitrary bytes') },
  { kind: 'unrecognized', command: 0, body: new Uint8Array(0) },
  { kind: 'unrecognized', command: 255, body: new Uint8Array(498) },
];

/** Tor's numbers (tor-spec, "Relay cells"). */
const COMMANDS: Record<Exclude<RelayMsg['kind'], 'unrecognized'>, number> = {
  begin: 1, data: 2, end: 3, connected: 4, sendme: 5, truncate: 8, truncated: 9, drop: 10,
  resolve: 11, resolved: 12, begin_dir: 13, extend2: 14, extended2: 15, xoff: 43, xon: 44,
  fin: 240, // Allium's own (docs/protocol.md §6.4)
};

test('every kind round-trips: decode(encode(msg)) equals msg', () => {
  const kinds = new Set<string>();
  for (const msg of SAMPLES) {
    kinds.add(msg.kind);
    const { command, body } = encodeRelayMsg(msg);
    assert.ok(body.length <= 498);
    assert.deepEqual(decodeRelayMsg(command, body), msg, `${msg.kind} ${hex(body)}`);
  }
  assert.equal(kinds.size, 17, 'a sample for every kind');
});

test("relayCommandOf gives Tor's numbers; the RelayCommand table agrees", () => {
  for (const [kind, n] of Object.entries(COMMANDS)) {
    assert.equal(relayCommandOf(kind as keyof typeof COMMANDS), n, kind);
    assert.equal(RelayCommand[kind.toUpperCase() as keyof typeof RelayCommand], n, kind);
  }
  assert.throws(() => relayCommandOf('unrecognized'), RangeError);
});

test('isCircuitLevel: EXTEND2, EXTENDED2, TRUNCATE(D), DROP and the obsolete EXTEND(ED); not streams, not SENDME', () => {
  const circuit = SAMPLES.filter(isCircuitLevel).map((m) => (m.kind === 'unrecognized' ? m.command : m.kind));
  assert.deepEqual([...new Set(circuit)], ['extend2', 'extended2', 'truncate', 'truncated', 'drop', 6]);
  assert.equal(isCircuitLevel({ kind: 'unrecognized', command: 7, body: new Uint8Array(0) }), true);
});

test('DATA: decode is a view of the body and encode returns it as is (no copy)', () => {
  const cell = new Uint8Array(509);
  const body = cell.subarray(11, 111);
  const msg = decodeRelayMsg(RelayCommand.DATA, body);
  assert.equal(msg.kind, 'data');
  assert.equal((msg as { data: Uint8Array }).data, body);
  const { command, body: out } = encodeRelayMsg(msg);
  assert.equal(command, 2);
  assert.equal(out, body);
});

test('writeRelayMsg writes the cell encodeRelayCell(encodeRelayMsg(msg)) would, and it decodes back', () => {
  for (const [i, msg] of SAMPLES.entries()) {
    const { command, body } = encodeRelayMsg(msg);
    const payload = new Uint8Array(509);
    writeRelayMsg(payload, i + 1, msg);
    assert.deepEqual(payload, encodeRelayCell({ command, streamId: i + 1, data: body }), msg.kind);
    const cell = decodeRelayCell(payload);
    assert.equal(cell.streamId, i + 1);
    assert.deepEqual(decodeRelayMsg(cell.command, cell.data), msg);
  }
  assert.throws(() => writeRelayMsg(new Uint8Array(509), 0x10000, { kind: 'drop' }), RangeError);
  assert.throws(() => writeRelayMsg(new Uint8Array(509), 1, { kind: 'data', data: new Uint8Array(499) }), code('ERR_OVERSIZED'));
});

test('unknown commands decode as unrecognized, and an unrecognized message cannot claim a known command', () => {
  for (const command of [0, 6, 7, 16, 41, 42, 45, 200, 255]) {
    assert.deepEqual(decodeRelayMsg(command, h('0102')), { kind: 'unrecognized', command, body: h('0102') });
  }
  assert.throws(() => encodeRelayMsg({ kind: 'unrecognized', command: 2, body: new Uint8Array(1) }), RangeError);
  assert.throws(() => encodeRelayMsg({ kind: 'unrecognized', command: 256, body: new Uint8Array(1) }), RangeError);
  assert.throws(() => encodeRelayMsg({ kind: 'unrecognized', command: -1, body: new Uint8Array(1) }), RangeError);
  assert.throws(() => decodeRelayMsg(256, new Uint8Array(0)), RangeError);
});

// Bodies as C Tor sends them, as published with Arti's tor-cell tests (dumped
// from Tor 0.4.5 in a chutney network, or built by hand to the spec).
test("Tor's bodies decode to what they mean and re-encode to the same bytes", () => {
  const vectors: Array<[number, string, RelayMsg]> = [
    [1, '3132372e302e302e313a3730303300', { kind: 'begin', host: '127.0.0.1', port: 7003, flags: 0 }],
    [1, '7777772e786b63642e636f6d3a34343300 00000003', { kind: 'begin', host: 'www.xkcd.com', port: 443, flags: 3 }],
    [1, '5b323030313a6462383a3a315d3a323200', { kind: 'begin', host: '2001:db8::1', port: 22, flags: 0 }],
    [13, '', { kind: 'begin_dir' }],
    [4, '', { kind: 'connected', address: null, ttl: 0 }],
    [4, '7f000001 00000e10', { kind: 'connected', address: '127.0.0.1', ttl: 3600 }],
    [4, '00000000 06 20010db8 00000000 00000000 00001122 00000e10', { kind: 'connected', address: '2001:db8::1122', ttl: 3600 }],
    [10, '', { kind: 'drop' }],
    [3, '01', { kind: 'end', reason: EndReason.MISC }],
    [3, '06', { kind: 'end', reason: EndReason.DONE }],
    [3, '04 7f000007 00000100', { kind: 'end', reason: EndReason.EXITPOLICY, address: '127.0.0.7', ttl: 256 }],
    [3, '04 20010db8 00000000 00000000 0000f00b 00000200', { kind: 'end', reason: EndReason.EXITPOLICY, address: '2001:db8::f00b', ttl: 512 }],
    [3, '04 7f000007', { kind: 'end', reason: EndReason.EXITPOLICY, address: '127.0.0.7' }],
    [
      14,
      `02 00 06 7f0000011388 02 14 03479e93ebf3ff2c58c1c9dbf2de9de9c2801b3e 0002 0054
       03479e93ebf3ff2c58c1c9dbf2de9de9c2801b3e36a3e0bdb1f1a10579820243dd2e228b902940eb49ef842646e3926768c28410074bee50a535116d657c6bfb7e5114119dc69f05df907ef62002ea782b0a357f`,
      {
        kind: 'extend2',
        specifiers: [
          { type: 0, body: h('7f0000011388') },
          { type: 2, body: h('03479e93ebf3ff2c58c1c9dbf2de9de9c2801b3e') },
        ],
        handshakeType: 2,
        handshakeData: h(
          '03479e93ebf3ff2c58c1c9dbf2de9de9c2801b3e36a3e0bdb1f1a10579820243dd2e228b902940eb49ef842646e3926768c28410074bee50a535116d657c6bfb7e5114119dc69f05df907ef62002ea782b0a357f',
        ),
      },
    ],
    [
      15,
      '0040 0026619058eb2661834d54c2624828728f28915587cdad1ad3373b85f33a480eea9d3b2cef8d39c1dbd2fa519e75296b96960690c79a28d6a0d9454f8e9634bd',
      {
        kind: 'extended2',
        handshakeData: h('0026619058eb2661834d54c2624828728f28915587cdad1ad3373b85f33a480eea9d3b2cef8d39c1dbd2fa519e75296b96960690c79a28d6a0d9454f8e9634bd'),
      },
    ],
    [9, '08', { kind: 'truncated', reason: 8 }],
    [8, '', { kind: 'truncate' }],
    [11, hex(ascii('www.torproject.org\0')), { kind: 'resolve', hostname: 'www.torproject.org' }],
    [11, hex(ascii('1.0.0.127.in-addr.arpa\0')), { kind: 'resolve', hostname: '1.0.0.127.in-addr.arpa' }],
    [
      11,
      hex(ascii('0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.0.0.2.ip6.arpa\0')),
      { kind: 'resolve', hostname: '0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.0.0.2.ip6.arpa' },
    ],
    [12, '', { kind: 'resolved', answers: [] }],
    [12, 'f0 00 00000e10', { kind: 'resolved', answers: [{ type: 'error', transient: true, ttl: 3600 }] }],
    [12, 'f1 00 00000e10', { kind: 'resolved', answers: [{ type: 'error', transient: false, ttl: 3600 }] }],
    [
      12,
      '04 04 7f000001 00000e10 04 04 7f000002 00001c20',
      { kind: 'resolved', answers: [{ type: 'ipv4', address: '127.0.0.1', ttl: 3600 }, { type: 'ipv4', address: '127.0.0.2', ttl: 7200 }] },
    ],
    [12, '06 10 12340000000000000000000000005678 00000080', { kind: 'resolved', answers: [{ type: 'ipv6', address: '1234::5678', ttl: 128 }] }],
    [12, '00 12 7777772e746f7270726f6a6563742e6f7267 00000258', { kind: 'resolved', answers: [{ type: 'hostname', hostname: 'www.torproject.org', ttl: 600 }] }],
    [
      12,
      '63 12 7777772e746f7270726f6a6563742e6f7267 00000258',
      { kind: 'resolved', answers: [{ type: 'unrecognized', code: 0x63, value: ascii('www.torproject.org'), ttl: 600 }] },
    ],
    [5, '', { kind: 'sendme', version: 0, digest: null }],
    [5, '01 0014 f01234989823478bcdefabcdef01234567890123', { kind: 'sendme', version: 1, digest: h('f01234989823478bcdefabcdef01234567890123') }],
    [2, '474554202f20485454502f312e310d0a0d0a', { kind: 'data', data: ascii('GET / HTTP/1.1\r\n\r\n') }],
    // Proposal 324 §4.1 trunnel layouts: xoff_cell { u8 version IN [0] }, xon_cell { u8 version IN [0]; u32 kbps_ewma }.
    [43, '00', { kind: 'xoff' }],
    [44, '00 00000000', { kind: 'xon', kbpsEwma: 0 }],
    [44, '00 00003039', { kind: 'xon', kbpsEwma: 12345 }],
    [249, '617262697472617279206279746573', { kind: 'unrecognized', command: 249, body: ascii('arbitrary bytes') }],
  ];
  for (const [command, bodyHex, msg] of vectors) {
    const body = h(bodyHex);
    assert.deepEqual(decodeRelayMsg(command, body), msg, `${command} ${bodyHex}`);
    const enc = encodeRelayMsg(msg);
    assert.equal(enc.command, command);
    assert.equal(hex(enc.body), hex(body), `${msg.kind} re-encodes to Tor's bytes`);
  }
  // Non-canonical forms Tor accepts: an empty END is MISC; a SENDME v0 with its (ignored) data.
  assert.deepEqual(decodeRelayMsg(3, new Uint8Array(0)), { kind: 'end', reason: EndReason.MISC });
  assert.deepEqual(decodeRelayMsg(5, h('00 0002 abcd')), { kind: 'sendme', version: 0, digest: null });
  // An error's value is ignored (Tor sends "Error resolving hostname").
  assert.deepEqual(decodeRelayMsg(12, h(`f0 18 ${hex(ascii('Error resolving hostname'))} 0000003c`)), {
    kind: 'resolved',
    answers: [{ type: 'error', transient: true, ttl: 60 }],
  });
  // DROP's body is padding.
  assert.deepEqual(decodeRelayMsg(10, new Uint8Array(100).fill(0x55)), { kind: 'drop' });
});

test('every command: a body over 498 bytes is ERR_OVERSIZED', () => {
  for (let command = 0; command < 256; command++) {
    assert.throws(() => decodeRelayMsg(command, new Uint8Array(499)), code('ERR_OVERSIZED'), `command ${command}`);
  }
  assert.throws(() => encodeRelayMsg({ kind: 'data', data: new Uint8Array(499) }), code('ERR_OVERSIZED'));
  assert.throws(() => encodeRelayMsg({ kind: 'unrecognized', command: 200, body: new Uint8Array(499) }), code('ERR_OVERSIZED'));
  assert.throws(
    () => encodeRelayMsg({ kind: 'extend2', specifiers: [], handshakeType: 3, handshakeData: new Uint8Array(494) }),
    code('ERR_OVERSIZED'),
  );
  const many = Array.from({ length: 60 }, () => ({ type: 'ipv6' as const, address: '::1', ttl: 1 }));
  assert.throws(() => encodeRelayMsg({ kind: 'resolved', answers: many }), code('ERR_OVERSIZED'));
});

test('truncated bodies are ERR_TRUNCATED', () => {
  const cases: Array<[number, string]> = [
    [4, '7f'], // CONNECTED: part of an address
    [4, '7f000001 0000'], // CONNECTED: part of the TTL
    [4, '00000000'], // CONNECTED: IPv6 form without its type
    [4, '00000000 06 2001'], // CONNECTED: part of the IPv6 address
    [5, '01 00'], // SENDME: part of the length
    [5, '01 0014 0102'], // SENDME: part of the digest
    [9, ''], // TRUNCATED: no reason
    [12, '04'], // RESOLVED: no length
    [12, '04 04 7f00'], // RESOLVED: part of a value
    [12, '04 04 7f000001 0000'], // RESOLVED: part of a TTL
    [14, ''], // EXTEND2: nothing
    [14, '01 00 06 7f00'], // EXTEND2: part of a specifier
    [14, '00 0003'], // EXTEND2: no handshake length
    [14, '00 0003 0010 0102'], // EXTEND2: part of the handshake
    [15, '00'], // EXTENDED2: part of the length
    [15, '0005 0102'], // EXTENDED2: part of the handshake
    [43, ''], // XOFF: no version
    [44, ''], // XON: no version
    [44, '00 0000'], // XON: part of the rate
  ];
  for (const [command, body] of cases) assert.throws(() => decodeRelayMsg(command, h(body)), code('ERR_TRUNCATED'), `${command} ${body}`);
  // Every strict prefix of a valid multi-field body (RESOLVED is a list: a cut between answers is a shorter list;
  // CONNECTED's flags are optional: a cut right before them is the form without).
  for (const msg of SAMPLES.filter((m) => ['connected', 'extend2', 'extended2'].includes(m.kind))) {
    const { command, body } = encodeRelayMsg(msg);
    for (let n = 1; n < body.length; n++) {
      if (msg.kind === 'connected' && msg.flags !== undefined && n >= body.length - 4) {
        // Without its flags: the shorter form; with part of them: bytes after the TTL.
        if (n > body.length - 4) assert.throws(() => decodeRelayMsg(command, body.subarray(0, n)), code('ERR_MALFORMED'), `${msg.kind} cut at ${n}`);
        continue;
      }
      assert.throws(() => decodeRelayMsg(command, body.subarray(0, n)), code('ERR_TRUNCATED'), `${msg.kind} cut at ${n}`);
    }
  }
});

test('malformed bodies (bad lengths, trailing bytes, bad enum values) are ERR_MALFORMED', () => {
  const cases: Array<[number, string, string]> = [
    [1, hex(ascii('example.com:80')), 'BEGIN without NUL'],
    [1, '', 'empty BEGIN'],
    [1, hex(ascii('example.com:0\0')), 'BEGIN port 0'],
    [1, hex(ascii('example.com:65536\0')), 'BEGIN port too large'],
    [1, hex(ascii('exa mple.com:80\0')), 'BEGIN host with a space'],
    [1, hex(ascii('[zz]:80\0')), 'BEGIN bad IPv6'],
    [1, hex(ascii('[fe80::1%eth0]:80\0')), 'BEGIN IPv6 with a zone id'],
    [1, `${hex(ascii('a:1\0'))} 0000`, 'BEGIN flags of 2 bytes'],
    [1, `${hex(ascii('a:1\0'))} 0000000000`, 'BEGIN flags of 5 bytes'],
    [1, hex(ascii('torproject\u2122.org:443\0')), 'BEGIN non-ASCII host'],
    [3, '06 00', 'END DONE with a trailing byte'],
    [3, '04 7f0000', 'END EXITPOLICY with 3 address bytes'],
    [3, '04 7f000007 0000010000', 'END EXITPOLICY with 9 bytes'],
    [4, '00000000 07 20010db8000000000000000000001122 00000e10', 'CONNECTED address type 7'],
    [4, '7f000001 00000e10 00', 'CONNECTED trailing byte'],
    [4, '7f000001 00000e10 00000000', 'CONNECTED flags of zero'],
    [4, '7f000001 00000e10 80000000 00', 'CONNECTED byte after the flags'],
    [4, '7f000001 00000e10 800000', 'CONNECTED flags of 3 bytes'],
    [240, '00', 'FIN with a body'],
    [5, '02 0000', 'SENDME version 2'],
    [5, '01 0001 09', 'SENDME v1 digest of 1 byte'],
    [5, '01 0014 f01234989823478bcdefabcdef01234567890123 00', 'SENDME trailing byte'],
    [8, '00', 'TRUNCATE with a body'],
    [9, '0800', 'TRUNCATED trailing byte'],
    [11, hex(ascii('example.com')), 'RESOLVE without NUL'],
    [11, `${hex(ascii('example.com'))} 00 41`, 'RESOLVE bytes after the NUL'],
    [11, '00', 'RESOLVE empty hostname'],
    [11, hex(ascii('a b\0')), 'RESOLVE bad hostname'],
    [12, '04 03 010203 00000001', 'RESOLVED IPv4 of 3 bytes'],
    [12, '06 04 01020304 00000001', 'RESOLVED IPv6 of 4 bytes'],
    [12, '00 00 00000001', 'RESOLVED empty hostname'],
    [12, '00 03 612062 00000001', 'RESOLVED hostname with a space'],
    [12, 'f0 00 00000001 04 04 7f000001 00000001', 'RESOLVED error next to an address'],
    [13, '00', 'BEGIN_DIR with a body'],
    [14, '00 0003 0000 00', 'EXTEND2 trailing byte'],
    [15, '0000 00', 'EXTENDED2 trailing byte'],
    [43, '01', 'XOFF version 1'],
    [43, '00 00', 'XOFF trailing byte'],
    [44, '01 00000000', 'XON version 1'],
    [44, '00 00000000 00', 'XON trailing byte'],
  ];
  for (const [command, body, what] of cases) assert.throws(() => decodeRelayMsg(command, h(body)), code('ERR_MALFORMED'), what);
});

test('encode rejects what the format cannot carry', () => {
  const bad: Array<[string, RelayMsg]> = [
    ['BEGIN host with a space', { kind: 'begin', host: 'a b', port: 80, flags: 0 }],
    ['BEGIN port 0', { kind: 'begin', host: 'a', port: 0, flags: 0 }],
    ['BEGIN IPv6 with a zone id', { kind: 'begin', host: 'fe80::1%eth0', port: 80, flags: 0 }],
    ['BEGIN flags over u32', { kind: 'begin', host: 'a', port: 1, flags: 2 ** 32 }],
    ['END address without EXITPOLICY', { kind: 'end', reason: EndReason.DONE, address: '1.2.3.4' }],
    ['END TTL without address', { kind: 'end', reason: EndReason.EXITPOLICY, ttl: 5 }],
    ['END reason over u8', { kind: 'end', reason: 256 }],
    ['END address not an IP', { kind: 'end', reason: EndReason.EXITPOLICY, address: 'example.com' }],
    ['CONNECTED not an IP', { kind: 'connected', address: 'example.com', ttl: 1 }],
    ['CONNECTED 0.0.0.0', { kind: 'connected', address: '0.0.0.0', ttl: 1 }],
    ['CONNECTED TTL over u32', { kind: 'connected', address: '1.2.3.4', ttl: -1 }],
    ['SENDME v1 without digest', { kind: 'sendme', version: 1, digest: null }],
    ['SENDME v1 short digest', { kind: 'sendme', version: 1, digest: new Uint8Array(19) }],
    ['SENDME v0 with digest', { kind: 'sendme', version: 0, digest: new Uint8Array(20) }],
    ['EXTEND2 handshake type over u16', { kind: 'extend2', specifiers: [], handshakeType: 0x10000, handshakeData: new Uint8Array(0) }],
    ['EXTEND2 specifier over 255 bytes', { kind: 'extend2', specifiers: [{ type: 1, body: new Uint8Array(256) }], handshakeType: 3, handshakeData: new Uint8Array(0) }],
    ['TRUNCATED reason over u8', { kind: 'truncated', reason: 300 }],
    ['XON rate over u32', { kind: 'xon', kbpsEwma: 2 ** 32 }],
    ['XON negative rate', { kind: 'xon', kbpsEwma: -1 }],
    ['RESOLVE bad hostname', { kind: 'resolve', hostname: 'a/b' }],
    ['RESOLVED error with others', { kind: 'resolved', answers: [{ type: 'error', transient: true, ttl: 1 }, { type: 'ipv4', address: '1.2.3.4', ttl: 1 }] }],
    ['RESOLVED ipv4 holding IPv6', { kind: 'resolved', answers: [{ type: 'ipv4', address: '::1', ttl: 1 }] }],
    ['RESOLVED unrecognized with a known code', { kind: 'resolved', answers: [{ type: 'unrecognized', code: 4, value: new Uint8Array(4), ttl: 1 }] }],
  ];
  for (const [what, msg] of bad) assert.throws(() => encodeRelayMsg(msg), RangeError, what);
});
