import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  COOKIE_BYTES,
  constantTimeEqual,
  hashPassword,
  parseHashedPassword,
  passwordMatches,
  safeCookieClientHash,
  safeCookieServerHash,
  writeCookieFile,
} from '../../../client/control/auth.js';

const enc = (s: string) => new TextEncoder().encode(s);

// Printed by Tor 0.4.9.11: `tor --hash-password foo`, `tor --hash-password 'correct horse'`, `tor --hash-password ''`.
const TOR_VECTORS: Array<[string, string]> = [
  ['foo', '16:A38A0870BA1F0D3F6084AB1A7177586AB33509E6E4A5E6850A85039FB9'],
  ['correct horse', '16:9A764DD780E1D10060EB4CEA82D5B2E3B6DEF17D0E9C9AF5BF9F0AB028'],
  ['', '16:12662F33D502C81560CD2777FFA3377D149CAFBCDAA993C033AEA3357C'],
];

test("hashed passwords: Tor's own output verifies, and hashing with its salt gives the same string", () => {
  for (const [password, hashed] of TOR_VECTORS) {
    const parsed = parseHashedPassword(hashed);
    assert.equal(parsed.countByte, 0x60);
    assert.equal(passwordMatches(parsed, enc(password)), true);
    assert.equal(passwordMatches(parsed, enc(`${password}x`)), false);
    assert.equal(hashPassword(password, parsed.salt), hashed);
  }
  const mine = hashPassword('s3cret');
  assert.match(mine, /^16:[0-9A-F]{58}$/);
  assert.equal(passwordMatches(parseHashedPassword(mine), enc('s3cret')), true);
  for (const bad of ['', '16:', '16:ZZ', 'A38A0870BA1F0D3F6084AB1A7177586AB33509E6E4A5E6850A85039FB9', '16:A38A']) {
    assert.throws(() => parseHashedPassword(bad), (e: Error & { code?: string }) => e.code === 'ERR_CONFIG', bad);
  }
});

test('SAFECOOKIE hashes are HMAC-SHA256 with the two fixed keys (cross-checked with node:crypto)', () => {
  const cookie = new Uint8Array(32).fill(7);
  const client = new Uint8Array(32).fill(1);
  const server = new Uint8Array(32).fill(2);
  const msg = Buffer.concat([cookie, client, server]);
  const ref = (key: string) => new Uint8Array(createHmac('sha256', key).update(msg).digest());
  assert.deepEqual(safeCookieServerHash(cookie, client, server), ref('Tor safe cookie authentication server-to-controller hash'));
  assert.deepEqual(safeCookieClientHash(cookie, client, server), ref('Tor safe cookie authentication controller-to-server hash'));
  assert.equal(constantTimeEqual(Uint8Array.of(1, 2), Uint8Array.of(1, 2)), true);
  assert.equal(constantTimeEqual(Uint8Array.of(1, 2), Uint8Array.of(1, 3)), false);
  assert.equal(constantTimeEqual(Uint8Array.of(1), Uint8Array.of(1, 2)), false);
});

test('the cookie file holds 32 fresh bytes with mode 0600, also when it replaces a looser file', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'allium-cookie-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'control_auth_cookie');
  writeFileSync(path, 'old');
  chmodSync(path, 0o644);
  const a = writeCookieFile(path);
  assert.equal(a.length, COOKIE_BYTES);
  assert.deepEqual(new Uint8Array(readFileSync(path)), a);
  assert.equal(statSync(path).mode & 0o777, 0o600);
  const b = writeCookieFile(path);
  assert.notDeepEqual(a, b);
});
