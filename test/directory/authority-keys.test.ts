/**
 * The authority's keys on disk (docs/protocol.md §9.1): a new authority makes
 * an identity and a signing key; the identity key can be kept offline; a new
 * signing key is picked up from the file and used without a gap; with the
 * identity online the authority certifies a new signing key itself before
 * the old one would expire during a consensus's life.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, renameSync, rmSync, statSync, existsSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { equalBytes, hex } from '../../src/bytes.js';
import { AlliumError } from '../../src/errors.js';
import { parseConsensus, verifyConsensus } from '../../src/netdoc/consensus.js';
import {
  AuthorityKeys,
  identityKeyPath,
  loadOrCreateIdentitySeed,
  loadSigner,
  newSigner,
  readIdentitySeed,
  saveSigner,
  signingKeyPath,
} from '../../directory/authority-keys.js';
import { startAuthority } from '../../directory/authority.js';
import { T0 } from '../netdoc/helpers.js';

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'allium-keys-'));
  dirs.push(d);
  return d;
}
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const HOUR = 3_600_000;

test('a new authority makes an identity and a certified signing key, both 0600', () => {
  const dir = tempDir();
  const keys = new AuthorityKeys({ dataDir: dir, now: () => T0 });
  assert.ok(keys.identityOnline);
  assert.equal(statSync(identityKeyPath(dir)).mode & 0o777, 0o600);
  assert.equal(statSync(signingKeyPath(dir)).mode & 0o777, 0o600);
  assert.equal(statSync(join(dir, 'keys')).mode & 0o777, 0o700);
  const signer = keys.signerFor(T0 + HOUR);
  assert.ok(equalBytes(signer.cert.identity, keys.identity));
  assert.equal(signer.cert.published, T0);
  assert.equal(signer.cert.expires, T0 + 30 * 24 * HOUR);
  // Restarting keeps both keys.
  const again = new AuthorityKeys({ dataDir: dir, now: () => T0 + 1000 });
  assert.ok(equalBytes(again.identity, keys.identity));
  assert.ok(equalBytes(again.signerFor(T0 + HOUR).cert.signingKey, signer.cert.signingKey));
});

test('identity kept offline: the authority runs on its signing key; a new one is certified elsewhere and picked up', () => {
  const dir = tempDir();
  const offline = join(tempDir(), 'identity');
  const seed = loadOrCreateIdentitySeed(dir);
  let now = T0;
  saveSigner(dir, newSigner(seed, now, 2 * HOUR));
  renameSync(identityKeyPath(dir), offline);
  assert.equal(existsSync(identityKeyPath(dir)), false);

  const keys = new AuthorityKeys({ dataDir: dir, now: () => now });
  assert.equal(keys.identityOnline, false);
  const first = keys.signerFor(now + HOUR);
  assert.ok(equalBytes(first.cert.identity, keys.identity));
  // Without the identity key it cannot certify a key covering a consensus past the expiry.
  assert.throws(
    () => keys.signerFor(now + 3 * HOUR),
    (e: unknown) => e instanceof AlliumError && e.code === 'ERR_CONFIG' && /identity key is offline: run `allium authority new-signing-key`/.test(e.message),
  );
  // The operator certifies a new signing key with the offline identity key.
  now += 10_000;
  saveSigner(dir, newSigner(readIdentitySeed(offline), now, 24 * HOUR));
  const second = keys.signerFor(now + 3 * HOUR);
  assert.ok(!equalBytes(second.cert.signingKey, first.cert.signingKey));
  assert.ok(equalBytes(second.cert.identity, first.cert.identity));
  assert.equal(existsSync(identityKeyPath(dir)), false, 'the authority never recreates the identity key');
  // A file for another identity is ignored.
  saveSigner(dir, newSigner(loadOrCreateIdentitySeed(tempDir()), now, 24 * HOUR));
  assert.ok(equalBytes(keys.signerFor(now + HOUR).cert.signingKey, second.cert.signingKey));
  assert.ok(!equalBytes(loadSigner(dir)!.cert.identity, keys.identity));
});

test('with the identity online, a signing key about to expire within a document is replaced first', () => {
  const dir = tempDir();
  let now = T0;
  const keys = new AuthorityKeys({ dataDir: dir, now: () => now, signingKeyLifetimeMs: 10_000 });
  const first = keys.signerFor(now + 5_000);
  assert.equal(first.cert.expires, T0 + 10_000);
  now += 6_000;
  // A document valid until T0 + 12 s would outlive the certificate: a new key is made.
  const second = keys.signerFor(now + 6_000);
  assert.ok(!equalBytes(second.cert.signingKey, first.cert.signingKey));
  assert.ok(second.cert.expires >= now + 6_000);
  assert.ok(equalBytes(loadSigner(dir)!.cert.signingKey, second.cert.signingKey));
  // A key certified for the future (published later than now) is not used yet; the current one stays.
  saveSigner(dir, newSigner(readIdentitySeed(identityKeyPath(dir)), now + HOUR, HOUR));
  assert.ok(equalBytes(keys.signerFor(now + 1000).cert.signingKey, second.cert.signingKey));
});

function get(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(url, { timeout: 5000 });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve(body));
    });
    req.end();
  });
}

test('a rolled signing key causes no gap: the old consensus stays verifiable while the next is signed with the new key', async () => {
  const dir = join(tempDir(), 'auth');
  const a = await startAuthority({
    nickname: 'auth1',
    dataDir: dir,
    host: '127.0.0.1',
    port: 0,
    votingIntervalMs: 60_000,
    consensusLifetimeMs: 180_000,
    probe: async () => false,
  });
  try {
    await a.publishNow();
    const before = await get(`${a.url}/allium/v1/consensus`);
    const oldKey = parseConsensus(before).signatures[0]!.cert.slice(33, 65);
    // The operator certifies a new signing key (the identity key is in the data dir here).
    const rolled = newSigner(readIdentitySeed(identityKeyPath(dir)), Date.now(), 24 * HOUR);
    saveSigner(dir, rolled);
    await new Promise((r) => setTimeout(r, 1100)); // the next consensus has a later valid-after
    await a.publishNow();
    const afterRoll = await get(`${a.url}/allium/v1/consensus`);
    const newKey = parseConsensus(afterRoll).signatures[0]!.cert.slice(33, 65);
    assert.equal(hex(newKey), hex(rolled.cert.signingKey));
    assert.notEqual(hex(newKey), hex(oldKey));
    // Both verify now: a client holding the old one keeps working until it fetches the new one.
    const now = Date.now();
    const c1 = verifyConsensus(before, [a.identity], now, { clockSkewMs: 0 });
    const c2 = verifyConsensus(afterRoll, [a.identity], now, { clockSkewMs: 0 });
    assert.ok(c2.validAfter > c1.validAfter);
    // And the old one stays verifiable for its whole life: its certificate outlives it.
    assert.ok(verifyConsensus(before, [a.identity], c1.validUntil, { clockSkewMs: 0 }));
  } finally {
    await a.close();
  }
});

test('a broken signing key file stops the start with a clear error', () => {
  const dir = tempDir();
  new AuthorityKeys({ dataDir: dir, now: () => T0 });
  const signer = loadSigner(dir)!;
  saveSigner(dir, { ...signer, signingSeed: new Uint8Array(32).fill(9) });
  assert.throws(() => new AuthorityKeys({ dataDir: dir, now: () => T0 }), /the certificate is not for this signing key/);
});
