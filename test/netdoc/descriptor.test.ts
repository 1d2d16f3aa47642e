import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeDescriptor, parseDescriptor, MAX_DESCRIPTOR_BYTES } from '../../src/netdoc/descriptor.js';
import { formatExitPolicy, parseExitPolicy } from '../../src/netdoc/exit-policy.js';
import { crypto } from '../../src/crypto/crypto.js';
import { utf8 } from '../../src/bytes.js';
import { b64 } from '../../src/netdoc/text.js';
import { DocumentError } from '../../src/errors.js';
import { makeDescriptor, relayKeys, relaySigner, seedOf, T0 } from './helpers.js';
import { signLinkCertificate } from '../../src/link/link-handshake.js';

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const keys = relayKeys(1);
const good = encodeDescriptor(makeDescriptor(keys), keys.signer);

const code = (c: string) => (e: unknown) => e instanceof DocumentError && e.code === c;

/** Re-signs edited text so that only the grammar is under test. */
function resign(text: string, seed = keys.signer.signingSeed): string {
  const at = text.lastIndexOf('signature ');
  const body = text.slice(0, at);
  return `${body}signature ${b64(crypto.ed25519Sign(seed, utf8(body)))}\n`;
}

function edit(from: string, to: string): string {
  assert.ok(good.includes(from), from);
  return resign(good.replace(from, to));
}

test('round trip', () => {
  const d = makeDescriptor(keys);
  const { descriptor, digest } = parseDescriptor(good);
  assert.deepEqual(descriptor.identity, d.identity);
  assert.deepEqual(descriptor.linkKey, d.linkKey);
  assert.deepEqual(descriptor.linkCert, d.linkCert);
  assert.deepEqual(descriptor.ntorOnionKey, d.ntorOnionKey);
  assert.equal(descriptor.nickname, d.nickname);
  assert.equal(descriptor.address, d.address);
  assert.equal(descriptor.orPort, d.orPort);
  assert.equal(descriptor.bandwidth, d.bandwidth);
  assert.equal(descriptor.platform, d.platform);
  assert.equal(descriptor.published, d.published);
  assert.deepEqual(formatExitPolicy(descriptor.exitPolicy), formatExitPolicy(d.exitPolicy));
  assert.deepEqual(digest, crypto.sha256(utf8(good)));
  assert.equal(encodeDescriptor(descriptor, keys.signer), good);
  assert.match(good, /^@type allium-relay-descriptor 1\nnickname relay1\nidentity [A-Za-z0-9+/]{43}\n/);
  assert.match(good, /\npublished 2030-01-02 03:04:05\nexit-policy 3\nreject private:\*\naccept \*:80\nreject \*:\*\nsignature [A-Za-z0-9+/]{86}\n$/);
});

test('encode refuses what the grammar cannot carry', () => {
  const bad = [
    { nickname: '' },
    { nickname: 'a'.repeat(20) },
    { nickname: 'bad-name' },
    { address: '1.2.3' },
    { orPort: 0 },
    { orPort: 65536 },
    { bandwidth: -1 },
    { bandwidth: 1.5 },
    { platform: 'tab\there' },
    { platform: 'x'.repeat(101) },
    { published: T0 + 1 },
    { linkKey: new Uint8Array(31) },
    { exitPolicy: parseExitPolicy([]) },
  ];
  for (const over of bad) assert.throws(() => encodeDescriptor(makeDescriptor(keys, over), keys.signer), DocumentError, JSON.stringify(over));
  assert.throws(() => encodeDescriptor(makeDescriptor(keys), relaySigner(9)), code('ERR_BAD_SIGNATURE'));
});

test('freshness with now', () => {
  assert.ok(parseDescriptor(good, { now: T0 }));
  assert.ok(parseDescriptor(good, { now: T0 + 36 * 3600_000 }));
  assert.ok(parseDescriptor(good, { now: T0 - 3600_000 }));
  assert.throws(() => parseDescriptor(good, { now: T0 + 36 * 3600_000 + 1 }), code('ERR_DOCUMENT'));
  assert.throws(() => parseDescriptor(good, { now: T0 - 3600_000 - 1 }), code('ERR_DOCUMENT'));
});

test('truncation at every line boundary and mid-line is malformed', () => {
  for (let cut = 0; cut < good.length; cut += 7) {
    assert.throws(() => parseDescriptor(good.slice(0, cut)), code('ERR_MALFORMED'), `cut at ${cut}`);
  }
  const lines = good.split('\n');
  for (let n = 1; n < lines.length - 1; n++) {
    assert.throws(() => parseDescriptor(lines.slice(0, n).join('\n') + '\n'), code('ERR_MALFORMED'));
  }
});

test('oversized documents and lines', () => {
  assert.throws(() => parseDescriptor(good + 'x'.repeat(MAX_DESCRIPTOR_BYTES)), code('ERR_OVERSIZED'));
  assert.throws(() => parseDescriptor(edit('platform Allium 0.1.0 on Node 20', `platform ${'x'.repeat(600)}`)), code('ERR_OVERSIZED'));
  const many = encodeDescriptor(makeDescriptor(keys, { exitPolicy: parseExitPolicy(Array.from({ length: 256 }, (_, i) => `reject 10.0.${i}.0/24:1000-2000`)) }), keys.signer);
  assert.ok(parseDescriptor(many));
  assert.throws(() => parseDescriptor(edit('exit-policy 3', 'exit-policy 257')), code('ERR_MALFORMED'));
});

test('keyword violations: unknown, missing, duplicate, out of order', () => {
  const cases: [string, string][] = [
    ['nickname relay1\n', ''],
    ['bandwidth 1000000\n', ''],
    ['bandwidth 1000000\n', 'bandwidth 1000000\nbandwidth 1000000\n'],
    ['nickname relay1\nidentity', 'identity'],
    ['@type allium-relay-descriptor 1\n', '@type allium-relay-descriptor 2\n'],
    ['@type allium-relay-descriptor 1\n', ''],
    ['exit-policy 3\n', 'exit-policy 2\n'],
    ['exit-policy 3\n', 'exit-policy 4\n'],
    ['exit-policy 3\n', 'exit-policy 0\n'],
    ['exit-policy 3\n', 'exit-policy 03\n'],
    ['accept *:80\n', 'accept *:80\n\n'],
    ['accept *:80\n', 'allow *:80\n'],
    ['nickname relay1\n', 'nickname  relay1\n'],
    ['nickname relay1\n', 'nickname relay1 \n'],
    ['nickname relay1\n', 'nickname relay1 extra\n'],
    ['nickname relay1\n', 'Nickname relay1\n'],
  ];
  for (const [from, to] of cases) {
    assert.throws(() => parseDescriptor(edit(from, to)), code('ERR_MALFORMED'), `${from} → ${to}`);
  }
  // swap two lines
  const lines = good.split('\n');
  [lines[2], lines[3]] = [lines[3]!, lines[2]!];
  assert.throws(() => parseDescriptor(resign(lines.join('\n'))), code('ERR_MALFORMED'));
  // a line after the signature
  assert.throws(() => parseDescriptor(good + 'nickname again\n'), code('ERR_MALFORMED'));
});

test('bad base64, key lengths, addresses, ports, numbers, times', () => {
  const id = b64(keys.identity);
  const cases: [string, string][] = [
    [`identity ${id}`, `identity ${id}=`],
    [`identity ${id}`, `identity ${id.slice(0, -1)}!`],
    [`identity ${id}`, `identity ${id.slice(0, -2)}`],
    [`identity ${id}`, `identity ${id}AAAA`],
    // non-canonical: a padding bit set in the last character
    [`identity ${id}`, `identity ${id.slice(0, -1)}${B64[B64.indexOf(id.at(-1)!) ^ 1]}`],
    [`link-key ${b64(keys.linkKey)}`, `link-key ${b64(new Uint8Array(33))}`],
    [`link-cert ${b64(keys.linkCert)}`, `link-cert ${b64(keys.linkCert.slice(0, 95))}`],
    [`ntor-onion-key ${b64(keys.ntorOnionKey)}`, `ntor-onion-key ${b64(new Uint8Array(16))}`],
    ['address 127.0.0.1 9001', 'address 127.0.0.1 0'],
    ['address 127.0.0.1 9001', 'address 127.0.0.1 65536'],
    ['address 127.0.0.1 9001', 'address 127.0.0.1 09001'],
    ['address 127.0.0.1 9001', 'address 127.0.0.1'],
    ['address 127.0.0.1 9001', 'address 127.0.0.256 9001'],
    ['address 127.0.0.1 9001', 'address 127.0.1 9001'],
    ['address 127.0.0.1 9001', 'address ::1 9001'],
    ['address 127.0.0.1 9001', 'address localhost 9001'],
    ['bandwidth 1000000', 'bandwidth -1'],
    ['bandwidth 1000000', 'bandwidth 1e6'],
    ['bandwidth 1000000', 'bandwidth 01000000'],
    ['bandwidth 1000000', 'bandwidth 99999999999999999'],
    ['published 2030-01-02 03:04:05', 'published 2030-01-02T03:04:05'],
    ['published 2030-01-02 03:04:05', 'published 2030-02-30 03:04:05'],
    ['published 2030-01-02 03:04:05', 'published 2030-01-02 24:00:00'],
    ['published 2030-01-02 03:04:05', 'published 2030-01-02 03:04:05.5'],
    ['published 2030-01-02 03:04:05', 'published 2030-01-02 03:04:05 UTC'],
    ['published 2030-01-02 03:04:05', 'published 2030-1-02 03:04:05'],
    ['platform Allium 0.1.0 on Node 20', 'platform  Allium'],
    ['platform Allium 0.1.0 on Node 20', 'platform'],
  ];
  for (const [from, to] of cases) {
    assert.throws(() => parseDescriptor(edit(from, to)), code('ERR_MALFORMED'), `${from} → ${to}`);
  }
});

test('CR, tabs, NUL and non-ASCII are refused', () => {
  assert.throws(() => parseDescriptor(good.replaceAll('\n', '\r\n')), code('ERR_MALFORMED'));
  assert.throws(() => parseDescriptor(edit('Node 20', 'Node\t20')), code('ERR_MALFORMED'));
  assert.throws(() => parseDescriptor(edit('Node 20', 'Node\u000020')), code('ERR_MALFORMED'));
  assert.throws(() => parseDescriptor(edit('Node 20', 'Nöde 20')), code('ERR_MALFORMED'));
  assert.throws(() => parseDescriptor(good.slice(0, -1)), code('ERR_MALFORMED'));
});

test('signatures: flipped byte anywhere, wrong signer, wrong link certificate', () => {
  // A changed byte in the signed part (still grammatical) breaks the self-signature.
  assert.throws(() => parseDescriptor(good.replace('bandwidth 1000000', 'bandwidth 1000001')), code('ERR_BAD_SIGNATURE'));
  // A flipped bit in the signature itself.
  const sigAt = good.lastIndexOf('signature ') + 'signature '.length;
  const sig = Buffer.from(good.slice(sigAt, -1), 'base64');
  sig[10]! ^= 1;
  assert.throws(() => parseDescriptor(good.slice(0, sigAt) + b64(sig) + '\n'), code('ERR_BAD_SIGNATURE'));
  // Signed by another key.
  assert.throws(() => parseDescriptor(resign(good, seedOf(7))), code('ERR_BAD_SIGNATURE'));
  // Link cert for another link key, by another identity, or with a bad signature.
  const other = relayKeys(2);
  for (const linkCert of [signLinkCertificate(keys.signer, other.linkKey), other.linkCert, (() => {
    const c = keys.linkCert.slice();
    c[50]! ^= 0x80;
    return c;
  })()]) {
    assert.throws(() => parseDescriptor(encodeDescriptor(makeDescriptor(keys, { linkCert }), keys.signer)), code('ERR_BAD_SIGNATURE'));
  }
});

test('unknown lines (§8.1): skipped anywhere between the first line and the signature, outside the exit-policy rules', () => {
  const want = parseDescriptor(good).descriptor;
  // [text to replace, replacement, an unknown line in it]
  const accepted: [string, string, string][] = [
    ['nickname relay1\n', 'contact me@example.com\nnickname relay1\n', 'contact me@example.com'], // right after the first line
    ['nickname relay1\n', 'nickname relay1\ncontact me@example.com\n', 'contact me@example.com'],
    ['nickname relay1\n', 'nickname relay1\nfamily\nhibernating 0\nX-Future-9 a b c\n', 'X-Future-9 a b c'], // several; a bare keyword
    ['published ', 'proto Link=1-2\npublished ', 'proto Link=1-2'],
    ['reject *:*\n', 'reject *:*\nextra-info-digest AAAA\n', 'extra-info-digest AAAA'], // after the last rule
    ['address 127.0.0.1 9001\n', `address 127.0.0.1 9001\n${'k'.repeat(64)} ${'x'.repeat(300)}\n`, 'x'.repeat(300)],
  ];
  for (const [from, to, unknown] of accepted) {
    const text = edit(from, to);
    const { descriptor, digest } = parseDescriptor(text, { now: T0 });
    assert.deepEqual(descriptor, want, to);
    // The digest is over the document as received, unknown lines included.
    assert.deepEqual(digest, crypto.sha256(utf8(text)));
    // The self-signature covers unknown lines: changing one breaks it.
    assert.throws(() => parseDescriptor(text.replace(unknown, `${unknown}z`)), code('ERR_BAD_SIGNATURE'), `${unknown} altered`);
  }
  // Adding an unknown line to a signed descriptor breaks the signature.
  assert.throws(() => parseDescriptor(good.replace('nickname relay1\n', 'nickname relay1\ncontact x\n')), code('ERR_BAD_SIGNATURE'));
});

test('unknown lines (§8.1): refused before the first line, among the rules, after the signature, or when not a well-formed line', () => {
  const refused: [string, string][] = [
    ['@type allium-relay-descriptor 1\n', 'contact x\n@type allium-relay-descriptor 1\n'],
    ['exit-policy 3\n', 'exit-policy 3\ncontact x\n'],
    ['accept *:80\n', 'accept *:80\ncontact x\n'],
    ['nickname relay1\n', 'nickname relay1\n@type allium-relay-descriptor 1\n'],
    ['nickname relay1\n', 'nickname relay1\n@annotation x\n'],
    ['nickname relay1\n', 'nickname relay1\n-----BEGIN THING-----\n'],
    ['nickname relay1\n', 'nickname relay1\n_underscore x\n'],
    ['nickname relay1\n', 'nickname relay1\nunder_score x\n'],
    ['nickname relay1\n', `nickname relay1\n${'k'.repeat(65)} x\n`],
    ['nickname relay1\n', 'nickname relay1\ncontact  two\n'],
    ['nickname relay1\n', 'nickname relay1\ncontact x \n'],
    ['nickname relay1\n', 'nickname relay1\ncontact \n'],
    // Known keywords keep their place and count: never skipped as unknown.
    ['nickname relay1\n', 'accept *:80\nnickname relay1\n'],
    ['bandwidth 1000000\n', 'bandwidth 1000000\nnickname relay1\n'],
    ['reject *:*\n', 'reject *:*\naccept *:443\n'],
    ['nickname relay1\n', 'Nickname relay1\n'], // keywords are case-sensitive: nickname is missing
  ];
  for (const [from, to] of refused) assert.throws(() => parseDescriptor(edit(from, to)), code('ERR_MALFORMED'), `${from} → ${to}`);
  // After the signature line nothing may follow, unknown or not.
  assert.throws(() => parseDescriptor(good + 'contact x\n'), code('ERR_MALFORMED'));
  // An unknown line is held to the line-length limit like any other.
  assert.throws(() => parseDescriptor(edit('nickname relay1\n', `nickname relay1\ncontact ${'x'.repeat(600)}\n`)), code('ERR_OVERSIZED'));
});
