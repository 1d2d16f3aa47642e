/**
 * The relay's directory handler (relay/dir/dir-server.ts, docs/protocol.md
 * §6.5) over an in-memory stream pair: well-formed requests, a request split
 * across writes, and malformed, oversized, slow and truncated ones.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { Duplex } from 'node:stream';
import { acceptsGzip, DIR_MAX_REQUEST_BYTES, DIR_SELF_DESCRIPTOR_PATH, parseDirRequest, relayDirectory, serveDirectory } from '../../relay/dir/dir-server.js';
import { duplexPair } from '../support/duplex-pair.js';
import { within } from '../support/edge-pair.js';

const DESCRIPTOR = 'router test 127.0.0.1 9001\nsignature abc\n';

/** A client end of a stream served by `handler`; returns what came back before the server ended it. */
async function ask(chunks: string[], handler = relayDirectory(() => DESCRIPTOR)): Promise<string> {
  const [client, server] = duplexPair();
  handler(server);
  const got: Buffer[] = [];
  client.on('data', (c: Buffer) => got.push(c));
  for (const chunk of chunks) client.write(chunk);
  await within(once(client, 'end'), 'answer');
  client.destroy();
  return Buffer.concat(got).toString('utf8');
}

function statusOf(answer: string): number {
  return Number(/^HTTP\/1\.0 (\d{3}) /.exec(answer)?.[1]);
}

test('GET of the descriptor path answers 200 with the text and its length; HEAD without the body', async () => {
  const answer = await ask([`GET ${DIR_SELF_DESCRIPTOR_PATH} HTTP/1.0\r\nHost: x\r\n\r\n`]);
  assert.equal(statusOf(answer), 200);
  assert.match(answer, new RegExp(`\\r\\nContent-Length: ${Buffer.byteLength(DESCRIPTOR)}\\r\\n`));
  assert.ok(answer.endsWith(`\r\n\r\n${DESCRIPTOR}`));
  const head = await ask([`HEAD ${DIR_SELF_DESCRIPTOR_PATH} HTTP/1.1\r\n\r\n`]);
  assert.equal(statusOf(head), 200);
  assert.ok(head.endsWith('\r\n\r\n'));
});

test('a request split across many writes is read whole', async () => {
  const request = `GET ${DIR_SELF_DESCRIPTOR_PATH} HTTP/1.0\r\n\r\n`;
  assert.equal(statusOf(await ask([...request])), 200);
});

test('unknown path 404, other method 405 with Allow, malformed request line 400', async () => {
  assert.equal(statusOf(await ask(['GET /allium/v1/consensus HTTP/1.0\r\n\r\n'])), 404);
  const post = await ask([`POST ${DIR_SELF_DESCRIPTOR_PATH} HTTP/1.0\r\n\r\n`]);
  assert.equal(statusOf(post), 405);
  assert.match(post, /\r\nAllow: GET, HEAD\r\n/);
  for (const bad of ['GET\r\n\r\n', 'GET / HTTP/2.0\r\n\r\n', 'get / HTTP/1.0\r\n\r\n', 'GET relative HTTP/1.0\r\n\r\n', 'GET /a b HTTP/1.0\r\n\r\n', '\r\n\r\n']) {
    assert.equal(statusOf(await ask([bad])), 400, JSON.stringify(bad));
  }
  // A document that has nothing to serve is a 404 too.
  assert.equal(statusOf(await ask([`GET ${DIR_SELF_DESCRIPTOR_PATH} HTTP/1.0\r\n\r\n`], serveDirectory(new Map([[DIR_SELF_DESCRIPTOR_PATH, () => null]])))), 404);
});

test('a request head over 8 KiB is refused with 431, with or without its blank line', async () => {
  const long = 'x'.repeat(DIR_MAX_REQUEST_BYTES + 10);
  assert.equal(statusOf(await ask([`GET / HTTP/1.0\r\nX: ${long}`])), 431);
  assert.equal(statusOf(await ask([`GET / HTTP/1.0\r\nX: ${long}\r\n\r\n`])), 431);
});

test('a request that never completes is answered 408 after the time limit', async () => {
  const answer = await ask([`GET ${DIR_SELF_DESCRIPTOR_PATH} HTTP/1.0\r\n`], serveDirectory(new Map(), { timeoutMs: 50 }));
  assert.equal(statusOf(answer), 408);
});

test('parseDirRequest: method and path, or 400', () => {
  assert.deepEqual(parseDirRequest('GET /a/b?c=d HTTP/1.1\r\nHost: x'), { method: 'GET', path: '/a/b?c=d' });
  assert.deepEqual(parseDirRequest(''), { status: 400 });
  assert.deepEqual(parseDirRequest('GET /\u00e9 HTTP/1.0'), { status: 400 });
  assert.deepEqual(parseDirRequest(`GET /${'a'.repeat(3000)} HTTP/1.0`), { status: 400 });
});

test('a client that closes without a request leaves no timer behind', async () => {
  const [client, server] = duplexPair();
  relayDirectory(() => DESCRIPTOR)(server as Duplex);
  client.end();
  server.on('end', () => server.destroy());
  await within(once(server, 'close'), 'server side closed');
});

test('the cached consensus: 404 without one, plain or gzip by Accept-Encoding', async () => {
  const { gzipSync, gunzipSync } = await import('node:zlib');
  const text = '@type allium-consensus 1\nconsensus-method 2\n';
  const handler = relayDirectory(() => DESCRIPTOR, () => ({ text, gzip: gzipSync(Buffer.from(text)) }));
  const plain = await ask(['GET /allium/v1/consensus HTTP/1.0\r\n\r\n'], handler);
  assert.equal(statusOf(plain), 200);
  assert.ok(plain.endsWith(`\r\n\r\n${text}`));
  assert.ok(!plain.includes('Content-Encoding'));
  const [client, server] = duplexPair();
  handler(server);
  const got: Buffer[] = [];
  client.on('data', (c: Buffer) => got.push(c));
  client.write('GET /allium/v1/consensus HTTP/1.0\r\nAccept-Encoding: deflate, gzip\r\n\r\n');
  await within(once(client, 'end'), 'answer');
  client.destroy();
  const answer = Buffer.concat(got);
  const end = answer.indexOf('\r\n\r\n');
  assert.match(answer.subarray(0, end).toString('latin1'), /\r\nContent-Encoding: gzip\r\n/);
  assert.equal(gunzipSync(answer.subarray(end + 4)).toString('utf8'), text);
  assert.equal(statusOf(await ask(['GET /allium/v1/consensus HTTP/1.0\r\n\r\n'], relayDirectory(() => DESCRIPTOR, () => null))), 404);
  assert.equal(acceptsGzip('GET / HTTP/1.0\r\naccept-encoding: gzip;q=0'), false);
  assert.equal(acceptsGzip('GET / HTTP/1.0\r\nAccept-Encoding: br, GZIP;q=0.5'), true);
  assert.equal(acceptsGzip('GET / HTTP/1.0\r\nX: gzip'), false);
});
