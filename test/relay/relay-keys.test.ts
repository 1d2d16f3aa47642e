/**
 * A relay's identity and signing keys on disk (docs/protocol.md §8.2.3), with
 * the clock injected: online mode makes and renews the signing key itself;
 * offline mode runs on the signing key file, refuses an expired or not yet
 * valid certificate, and takes a file the operator replaced while running.
 * Key files stay 0600.
 */
import { mkdtempSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { equalBytes } from '../../src/bytes.js';
import { crypto } from '../../src/crypto/crypto.js';
import {
  DEFAULT_SIGNING_KEY_LIFETIME_MS,
  identityKeyPath,
  loadRelayKeys,
  loadRelaySigner,
  newRelaySigner,
  readIdentitySeed,
  refreshSigningKey,
  saveRelaySigner,
  signingKeyDue,
  signingKeyPath,
  signingKeyState,
} from '../../relay/keys.js';

const DAY = 86_400_000;
const T0 = Date.UTC(2030, 0, 2, 3, 4, 5);

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'allium-relay-keys-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

it('online: a new relay gets an identity and a 30-day signing key; it is renewed when fewer than 7 days are left', (t) => {
  const dir = tempDir(t);
  const keys = loadRelayKeys(dir, { now: T0 });
  assert.ok(keys.identitySeed !== undefined);
  for (const name of ['identity_ed25519', 'signing_ed25519', 'link_x25519', 'ntor_x25519']) {
    assert.equal(statSync(join(dir, 'keys', name)).mode & 0o777, 0o600, name);
  }
  assert.equal(statSync(join(dir, 'keys')).mode & 0o777, 0o700);
  const signer = keys.identity.signer;
  assert.ok(equalBytes(signer.cert.identity, keys.identity.identity));
  assert.equal(signer.cert.published, T0);
  assert.equal(signer.cert.expires, T0 + DEFAULT_SIGNING_KEY_LIFETIME_MS);
  // A restart in the window keeps it; 6 days before the expiry it is replaced.
  assert.ok(equalBytes(loadRelayKeys(dir, { now: T0 + 20 * DAY }).identity.signer.cert.signingKey, signer.cert.signingKey));
  const renewed = loadRelayKeys(dir, { now: T0 + 24 * DAY });
  assert.ok(!equalBytes(renewed.identity.signer.cert.signingKey, signer.cert.signingKey));
  assert.equal(renewed.identity.signer.cert.published, T0 + 24 * DAY);
  assert.ok(equalBytes(renewed.identity.identity, keys.identity.identity), 'same identity');
  assert.ok(equalBytes(loadRelaySigner(dir)!.cert.bytes, renewed.identity.signer.cert.bytes), 'saved');
  // The schedule: min(7 days, half the lifetime) before the expiry.
  assert.equal(signingKeyDue(signer, T0 + 23 * DAY - 1), false);
  assert.equal(signingKeyDue(signer, T0 + 23 * DAY + 1), true);
  const short = newRelaySigner(keys.identitySeed!, T0, 10_000);
  assert.equal(signingKeyDue(short, T0 + 4_999), false);
  assert.equal(signingKeyDue(short, T0 + 5_001), true);
  // While running: refreshSigningKey renews it in place.
  const running = loadRelayKeys(dir, { now: T0 + 24 * DAY });
  assert.equal(refreshSigningKey(dir, running, T0 + 25 * DAY), null);
  assert.equal(refreshSigningKey(dir, running, T0 + 48 * DAY), 'renewed');
  assert.equal(running.identity.signer.cert.published, T0 + 48 * DAY);
  // A signing key file for another identity is replaced in online mode.
  saveRelaySigner(dir, newRelaySigner(crypto.randomBytes(32), T0, DAY));
  assert.ok(equalBytes(loadRelayKeys(dir, { now: T0 }).identity.signer.cert.identity, keys.identity.identity));
});

it('offline: runs on the signing key file, warns, refuses an expired or future certificate, takes a replaced file', (t) => {
  const dir = tempDir(t);
  const online = loadRelayKeys(dir, { now: T0, signingKeyLifetimeMs: 10 * DAY });
  const away = join(dir, 'identity-elsewhere');
  renameSync(identityKeyPath(dir), away);
  const seed = readIdentitySeed(away);

  const keys = loadRelayKeys(dir, { now: T0 + DAY });
  assert.equal(keys.identitySeed, undefined);
  assert.ok(equalBytes(keys.identity.identity, online.identity.identity));
  assert.ok(equalBytes(keys.identity.signer.cert.bytes, online.identity.signer.cert.bytes), 'nothing renewed');
  assert.equal(signingKeyState(keys.identity.signer, T0 + DAY), 'ok');
  assert.equal(signingKeyState(keys.identity.signer, T0 + 3 * DAY), 'expiring');
  assert.equal(signingKeyState(keys.identity.signer, T0 + 10 * DAY), 'expired');
  // Without the identity, nothing renews even when due.
  assert.equal(refreshSigningKey(dir, keys, T0 + 9 * DAY), null);
  // Expired, or not yet valid: a clear error naming the command.
  assert.throws(() => loadRelayKeys(dir, { now: T0 + 10 * DAY }), (e: unknown) => {
    const m = (e as Error).message;
    return (e as { code?: string }).code === 'ERR_CONFIG' && /expired at 2030-01-12 03:04:05/.test(m) && /identity key is offline/.test(m) && /allium keys sign --identity/.test(m);
  });
  assert.throws(() => loadRelayKeys(dir, { now: T0 - DAY }), /not valid before 2030-01-02 03:04:05/);
  // Worker processes read the keys as they are.
  assert.ok(loadRelayKeys(dir, { now: T0 + 10 * DAY, readOnly: true }));

  // The operator certifies a new key elsewhere and replaces the file: the running relay takes it.
  const fresh = newRelaySigner(seed, T0 + 8 * DAY, 30 * DAY);
  saveRelaySigner(dir, fresh);
  assert.equal(statSync(signingKeyPath(dir)).mode & 0o777, 0o600);
  assert.equal(refreshSigningKey(dir, keys, T0 + 7 * DAY), null, 'not yet valid: kept the current key');
  assert.equal(refreshSigningKey(dir, keys, T0 + 8 * DAY), 'reloaded');
  assert.ok(equalBytes(keys.identity.signer.cert.signingKey, fresh.cert.signingKey));
  assert.equal(refreshSigningKey(dir, keys, T0 + 8 * DAY), null, 'once');
  // A file for another identity, an older one, or a broken one is ignored.
  saveRelaySigner(dir, newRelaySigner(crypto.randomBytes(32), T0 + 8 * DAY, 60 * DAY));
  assert.equal(refreshSigningKey(dir, keys, T0 + 9 * DAY), null);
  saveRelaySigner(dir, newRelaySigner(seed, T0 + 8 * DAY, 20 * DAY));
  assert.equal(refreshSigningKey(dir, keys, T0 + 9 * DAY), null);
  writeFileSync(signingKeyPath(dir), new Uint8Array(10));
  assert.equal(refreshSigningKey(dir, keys, T0 + 9 * DAY), null);
  assert.throws(() => loadRelayKeys(dir, { now: T0 + 9 * DAY }), /signing key file .*: expected 233 bytes, found 10/);
  // No identity and a signing key file that is not one: refused, not replaced.
  const copy = new Uint8Array(233);
  writeFileSync(signingKeyPath(dir), copy);
  assert.throws(() => loadRelayKeys(dir, { now: T0 + 9 * DAY }), (e: unknown) => (e as { code?: string }).code === 'ERR_CONFIG');
});
