/**
 * Descriptors reach every authority (docs/protocol.md §9.3): the relay
 * uploads to each configured authority on its own, retries with backoff
 * while one is unreachable, re-uploads to all when its descriptor changes,
 * and republishes an unchanged one periodically. Real authorities over HTTP;
 * the unreachable one sits behind a TCP proxy that is cut, then healed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hex } from '../../src/bytes.js';
import { parseDescriptor } from '../../src/netdoc/descriptor.js';
import { startAuthority, type AuthorityHandle } from '../../directory/authority.js';
import { DescriptorPublisher } from '../../relay/publisher.js';
import { http, LinkProxy } from '../support/authority-cluster.js';
import { makeDescriptor, relayKeys } from '../netdoc/helpers.js';

async function until(ok: () => Promise<boolean> | boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await ok()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

test('uploads to every authority, backs off from one that is down, catches it up, re-uploads a changed descriptor, republishes', { timeout: 60_000 }, async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'allium-publisher-'));
  const authorities: AuthorityHandle[] = [];
  t.after(async () => {
    await Promise.all(authorities.map((a) => a.close()));
    rmSync(root, { recursive: true, force: true });
  });
  for (let i = 0; i < 3; i++) {
    authorities.push(
      await startAuthority({
        nickname: `auth${i + 1}`,
        dataDir: join(root, `auth${i + 1}`),
        host: '127.0.0.1',
        port: 0,
        votingIntervalMs: 60_000,
        consensusLifetimeMs: 180_000,
        probe: async () => false,
      }),
    );
  }
  // The third authority is reached through a proxy that starts cut: it is down for the relay.
  const proxy = new LinkProxy();
  await proxy.listen();
  proxy.target = Number(new URL(authorities[2]!.url).port);
  proxy.cut();
  t.after(() => proxy.close());
  const refs = [
    { url: authorities[0]!.url, identity: authorities[0]!.identity },
    { url: authorities[1]!.url, identity: authorities[1]!.identity },
    { url: `http://127.0.0.1:${proxy.port}`, identity: authorities[2]!.identity },
  ];

  const keys = relayKeys(71, Date.now());
  let bandwidth = 1_000_000;
  const publisher = new DescriptorPublisher({
    authorities: refs,
    signer: () => keys.signer,
    make: () => makeDescriptor(keys, { nickname: 'relay71', bandwidth }),
    republishIntervalMs: 60_000,
    checkIntervalMs: 100,
    retryInitialMs: 100,
    retryMaxMs: 400,
    uploadTimeoutMs: 2000,
  });
  t.after(() => publisher.close());
  publisher.start();
  const held = async (i: number): Promise<string | null> => {
    const r = await http(`${authorities[i]!.url}/allium/v1/descriptor/${hex(keys.identity)}`);
    return r.status === 200 ? r.body : null;
  };

  await until(async () => (await held(0)) !== null && (await held(1)) !== null, 5000, 'the two reachable authorities');
  assert.equal(await held(0), publisher.current);
  assert.equal(await held(2), null);
  // The third keeps failing, with growing (bounded) delays.
  await until(() => publisher.state()[2]!.failures >= 3, 5000, 'three failed attempts');
  assert.equal(publisher.state()[0]!.failures, 0);
  const failuresBefore = publisher.state()[2]!.failures;

  // It comes back: within one retry delay (≤ 400 ms + an upload) it has the descriptor too.
  proxy.heal();
  await until(async () => (await held(2)) === publisher.current, 3000, 'the third authority to catch up');
  assert.equal(publisher.state()[2]!.failures, 0);
  assert.ok(failuresBefore >= 3);

  // The descriptor changes: all three get the new one, published later than the old.
  const old = parseDescriptor(publisher.current!).descriptor;
  bandwidth = 2_000_000;
  publisher.refresh();
  await until(async () => {
    const all = await Promise.all([0, 1, 2].map(held));
    return all.every((text) => text !== null && parseDescriptor(text).descriptor.bandwidth === 2_000_000);
  }, 5000, 'every authority to hold the changed descriptor');
  const changed = parseDescriptor((await held(1))!).descriptor;
  assert.ok(changed.published > old.published);
  assert.equal(publisher.state().every((s) => s.uploaded === publisher.current), true);
});

test('an unchanged descriptor is republished every republish interval', { timeout: 30_000 }, async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'allium-publisher-'));
  const a = await startAuthority({ nickname: 'auth1', dataDir: join(root, 'a'), host: '127.0.0.1', port: 0, votingIntervalMs: 60_000, consensusLifetimeMs: 180_000, probe: async () => false });
  t.after(async () => {
    await a.close();
    rmSync(root, { recursive: true, force: true });
  });
  const keys = relayKeys(72, Date.now());
  const publisher = new DescriptorPublisher({
    authorities: [{ url: a.url, identity: a.identity }],
    signer: () => keys.signer,
    make: () => makeDescriptor(keys, { nickname: 'relay72' }),
    republishIntervalMs: 1500,
    checkIntervalMs: 100,
  });
  t.after(() => publisher.close());
  publisher.start();
  const published = async () => {
    const r = await http(`${a.url}/allium/v1/descriptor/${hex(keys.identity)}`);
    return r.status === 200 ? parseDescriptor(r.body).descriptor.published : 0;
  };
  await until(async () => (await published()) > 0, 5000, 'the first upload');
  const first = await published();
  await until(async () => (await published()) > first, 5000, 'a republished descriptor');
});
