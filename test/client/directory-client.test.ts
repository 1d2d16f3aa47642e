/**
 * The client's consensus fetch against a real HTTP server on 127.0.0.1:
 * a good consensus verifies; oversized, compressed-bomb, garbage and
 * badly signed bodies, and error statuses, give typed errors.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { fetchConsensus, MAX_CONSENSUS_BYTES } from '../../client/directory-client.js';
import { encodeConsensus, type ConsensusBody } from '../../src/netdoc/consensus.js';
import { crypto } from '../../src/crypto/crypto.js';
import { AlliumError } from '../../src/errors.js';

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
  return encodeConsensus(body, [seed]);
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
