/**
 * The client's consensus fetch against a real HTTP server on 127.0.0.1:
 * a good consensus verifies; oversized, compressed-bomb, garbage and
 * badly signed bodies, and error statuses, give typed errors; an accepted
 * consensus publishes allium:consensus.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { ConsensusFetchError, fetchConsensus, MAX_CONSENSUS_BYTES } from '../../client/directory-client.js';
import { makeAuthorityCert } from '../../src/netdoc/authority-cert.js';
import { encodeConsensus, type ConsensusBody } from '../../src/netdoc/consensus.js';
import { crypto } from '../../src/crypto/crypto.js';
import { AlliumError } from '../../src/errors.js';
import { subscribe, type ConsensusEvent } from '../../src/events.js';
import { liveAuthoritySigner } from '../netdoc/helpers.js';

async function serve(t: TestContext, handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const server = createServer(handler);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => server.close());
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function consensusText(seed: Uint8Array, now: number): string {
  const second = (ms: number) => Math.floor(ms / 1000) * 1000;
  const body: ConsensusBody = {
    validAfter: second(now - 1000),
    freshUntil: second(now + 60_000),
    validUntil: second(now + 120_000),
    authorities: [{ nickname: 'auth1', identity: crypto.ed25519PublicKey(seed), address: '127.100.0.1', dirPort: 80 }],
    relays: [],
  };
  return encodeConsensus(body, [liveAuthoritySigner(seed)]);
}

const isAllium = (code?: string) => (e: unknown) => e instanceof AlliumError && (code === undefined || e.code === code);

test('a signed consensus is fetched (plain and gzip) and verified', async (t) => {
  const seed = crypto.randomBytes(32);
  const identity = crypto.ed25519PublicKey(seed);
  const text = consensusText(seed, Date.now());
  const url = await serve(t, (req, res) => {
    if (req.headers['accept-encoding']?.includes('gzip')) {
      res.writeHead(200, { 'content-encoding': 'gzip' });
      res.end(gzipSync(text));
    } else res.end(text);
  });
  const consensus = await fetchConsensus([{ url, identity }]);
  assert.equal(consensus.authorities.length, 1);
});

test('a consensus signed by someone else is refused', async (t) => {
  const text = consensusText(crypto.randomBytes(32), Date.now());
  const url = await serve(t, (_req, res) => res.end(text));
  await assert.rejects(fetchConsensus([{ url, identity: crypto.ed25519PublicKey(crypto.randomBytes(32)) }]), isAllium('ERR_BAD_SIGNATURE'));
});

test('oversized, gzip-bomb, garbage and error-status bodies give typed errors', async (t) => {
  const identity = crypto.ed25519PublicKey(crypto.randomBytes(32));
  const huge = await serve(t, (_req, res) => res.end(Buffer.alloc(MAX_CONSENSUS_BYTES + 10, 0x41)));
  await assert.rejects(fetchConsensus([{ url: huge, identity }]), isAllium('ERR_OVERSIZED'));
  const bomb = await serve(t, (_req, res) => {
    res.writeHead(200, { 'content-encoding': 'gzip' });
    res.end(gzipSync(Buffer.alloc(20 * MAX_CONSENSUS_BYTES)));
  });
  await assert.rejects(fetchConsensus([{ url: bomb, identity }]), isAllium('ERR_OVERSIZED'));
  const garbage = await serve(t, (_req, res) => res.end(crypto.randomBytes(3000)));
  await assert.rejects(fetchConsensus([{ url: garbage, identity }]), isAllium('ERR_MALFORMED'));
  const truncated = await serve(t, (_req, res) => res.end(consensusText(crypto.randomBytes(32), Date.now()).slice(0, 200)));
  await assert.rejects(fetchConsensus([{ url: truncated, identity }]), isAllium());
  const missing = await serve(t, (_req, res) => {
    res.statusCode = 404;
    res.end();
  });
  await assert.rejects(fetchConsensus([{ url: missing, identity }]), isAllium('ERR_DOCUMENT'));
});

test('the next authority is tried when one fails', async (t) => {
  const seed = crypto.randomBytes(32);
  const identity = crypto.ed25519PublicKey(seed);
  const text = consensusText(seed, Date.now());
  const bad = await serve(t, (_req, res) => {
    res.statusCode = 503;
    res.end();
  });
  const good = await serve(t, (_req, res) => res.end(text));
  const consensus = await fetchConsensus([
    { url: bad, identity },
    { url: good, identity },
  ]);
  assert.equal(consensus.relays.length, 0);
});

test('allium:consensus fires when a new consensus is accepted, with its time, relay count and verified signatures', async (t) => {
  const seeds = [crypto.randomBytes(32), crypto.randomBytes(32), crypto.randomBytes(32)];
  const ids = seeds.map((s) => crypto.ed25519PublicKey(s));
  const now = Date.now();
  const second = (ms: number) => Math.floor(ms / 1000) * 1000;
  const relay = (n: number) => ({
    nickname: `r${n}`,
    identity: crypto.ed25519PublicKey(crypto.randomBytes(32)),
    address: `127.0.0.${n}`,
    orPort: 9000 + n,
    linkKey: crypto.randomBytes(32),
    ntorOnionKey: crypto.randomBytes(32),
    descriptorDigest: crypto.randomBytes(32),
    flags: ['Running', 'Valid'],
    bandwidth: 1000,
    exitSummary: { action: 'reject' as const, ranges: [[1, 65535] as [number, number]] },
  });
  const body: ConsensusBody = {
    validAfter: second(now - 1000),
    freshUntil: second(now + 60_000),
    validUntil: second(now + 120_000),
    authorities: ids.map((identity, i) => ({ nickname: `auth${i}`, identity, address: '127.100.0.1', dirPort: 80 + i })),
    relays: [relay(1), relay(2)],
  };
  // Signed by 2 of the 3 trusted authorities, plus one stranger whose signature counts for nothing.
  const text = encodeConsensus(body, [seeds[0]!, seeds[2]!, crypto.randomBytes(32)].map(liveAuthoritySigner));
  const url = await serve(t, (_req, res) => res.end(text));
  const events: ConsensusEvent[] = [];
  const unsubscribe = subscribe('allium:consensus', (e) => events.push(e));
  t.after(unsubscribe);
  const authorities = ids.map((identity) => ({ url, identity }));
  const first = await fetchConsensus(authorities);
  assert.deepEqual(events, [{ validAfter: body.validAfter, relays: 2, signatures: 2 }]);
  // Fetching the same consensus again while it is in use is not a new one.
  await fetchConsensus(authorities, Date.now, first);
  assert.equal(events.length, 1);
  // A consensus that is refused publishes nothing.
  await assert.rejects(fetchConsensus([{ url, identity: crypto.ed25519PublicKey(crypto.randomBytes(32)) }]), isAllium('ERR_BAD_SIGNATURE'));
  assert.equal(events.length, 1);
});

test('refusals name the reason: only one of three signed, forged or expired certificate, outside the validity window; every authority asked is named', async (t) => {
  const seeds = [crypto.randomBytes(32), crypto.randomBytes(32), crypto.randomBytes(32)];
  const ids = seeds.map((s) => crypto.ed25519PublicKey(s));
  const now = Math.floor(Date.now() / 1000) * 1000;
  const body: ConsensusBody = {
    validAfter: now - 1000,
    freshUntil: now + 60_000,
    validUntil: now + 120_000,
    authorities: ids.map((identity, i) => ({ nickname: `auth${i}`, identity, address: '127.100.0.1', dirPort: 80 + i })),
    relays: [],
  };
  const live = seeds.map(liveAuthoritySigner);
  const expiredSigner = (seed: Uint8Array) => {
    const signingSeed = crypto.randomBytes(32);
    return { signingSeed, cert: makeAuthorityCert(seed, signingSeed, now - 7_200_000, now - 3_600_000) };
  };
  const forgedSigner = (seed: Uint8Array) => {
    // A signing key certified by someone else's identity key, claiming `seed`'s identity.
    const signingSeed = crypto.randomBytes(32);
    const real = makeAuthorityCert(seed, signingSeed, now - 3_600_000, now + 3_600_000);
    const other = makeAuthorityCert(crypto.randomBytes(32), signingSeed, now - 3_600_000, now + 3_600_000);
    const bytes = real.bytes.slice();
    bytes.set(other.bytes.subarray(137), 137);
    return { signingSeed, cert: { ...real, bytes } };
  };
  const cases: [string, string, RegExp, string][] = [
    ['one of three', encodeConsensus(body, [live[0]!]), /signed by 1 of 3 trusted authorities, need 2 \([0-9a-f]{8}: no signature; [0-9a-f]{8}: no signature\)/, 'ERR_BAD_SIGNATURE'],
    ['expired certificates', encodeConsensus(body, [live[0]!, expiredSigner(seeds[1]!), expiredSigner(seeds[2]!)]), /signed by 1 of 3 .*certificate expired at/, 'ERR_BAD_SIGNATURE'],
    ['forged certificates', encodeConsensus(body, [live[0]!, forgedSigner(seeds[1]!), forgedSigner(seeds[2]!)]), /signed by 1 of 3 .*forged certificate/, 'ERR_BAD_SIGNATURE'],
    ['outside the window', encodeConsensus({ ...body, validAfter: now - 600_000, freshUntil: now - 500_000, validUntil: now - 300_000 }, live), /outside its validity window: expired at/, 'ERR_DOCUMENT'],
    ['not yet valid', encodeConsensus({ ...body, validAfter: now + 600_000, freshUntil: now + 700_000, validUntil: now + 800_000 }, live), /not valid until/, 'ERR_DOCUMENT'],
  ];
  for (const [name, text, reason, code] of cases) {
    const url = await serve(t, (_req, res) => res.end(text));
    await assert.rejects(
      fetchConsensus(ids.map((identity) => ({ url, identity }))),
      (e: unknown) => {
        assert.ok(e instanceof ConsensusFetchError, name);
        assert.equal(e.code, code, name);
        assert.equal(e.failures.length, 3, name);
        assert.match(e.message, reason, name);
        assert.ok(e.message.startsWith('no authority gave an acceptable consensus ('), name);
        return true;
      },
    );
  }
  // A refused connection is named too.
  await assert.rejects(fetchConsensus([{ url: `http://127.0.0.1:1`, identity: ids[0]! }]), (e: unknown) => e instanceof ConsensusFetchError && e.code === 'ERR_LINK_CLOSED' && e.message.includes('http://127.0.0.1:1: '));
});
