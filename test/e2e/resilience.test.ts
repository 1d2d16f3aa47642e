/**
 * The client on a testnet that loses relays (real processes, SIGKILL through
 * the testnet's control socket): a download on a circuit whose guard, middle
 * or exit is killed ends with an error within 2 s, and requests made from
 * then on, one every 0.2 s, fail for at most 5 s in total; also with the
 * authority stopped (the client keeps the consensus it has). Isolation by
 * SOCKS username and NEWNYM, seen in the client's stream and circuit status;
 * guards kept across a client restart.
 *
 * The 10-repetition version of the kill measurement is bench/resilience.bench.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Socket } from 'node:net';
import { SocksClient } from 'socks';
import { startClient, type ClientHandle } from '../../client/client.js';
import { fromHex } from '../../src/bytes.js';
import { HELLO_BODY, startPayloadServer, type PayloadServer } from '../support/payload-server.js';
import { startTestnetProcess, type TestnetProcess } from '../support/testnet-process.js';

const REQUEST_INTERVAL_MS = 200;
const REQUEST_TIMEOUT_MS = 5_000;
/** A download big enough to be still running when its relay is killed. */
const DOWNLOAD_BYTES = 1_000_000_000;

async function socksConnect(port: number, dest: { host: string; port: number }, user?: string): Promise<Socket> {
  const { socket } = await SocksClient.createConnection({
    proxy: { host: '127.0.0.1', port, type: 5, ...(user !== undefined ? { userId: user, password: 'pw' } : {}) },
    command: 'connect',
    destination: dest,
    timeout: REQUEST_TIMEOUT_MS,
  });
  return socket;
}

/** GET /hello through SOCKS; resolves true on the right body within REQUEST_TIMEOUT_MS, false on any failure. */
async function helloOk(socksPort: number, server: PayloadServer, user?: string): Promise<boolean> {
  const started = Date.now();
  try {
    const socket = await socksConnect(socksPort, { host: '127.0.0.1', port: server.port }, user);
    const left = Math.max(1, REQUEST_TIMEOUT_MS - (Date.now() - started));
    return await new Promise<boolean>((resolve) => {
      const chunks: Buffer[] = [];
      const timer = setTimeout(() => {
        socket.destroy();
        resolve(false);
      }, left);
      socket.on('data', (c: Buffer) => chunks.push(c));
      socket.on('error', () => {});
      socket.once('close', () => {
        clearTimeout(timer);
        resolve(Buffer.concat(chunks).toString().endsWith(HELLO_BODY));
      });
      socket.write('GET /hello HTTP/1.0\r\nHost: x\r\n\r\n');
    });
  } catch {
    return false;
  }
}

/** The newest stream the client lists whose target port is `port`, and its circuit path. */
function newestStream(client: ClientHandle, port: number): { streamId: number; circuitId: number; path: string[] } {
  const stream = client
    .streamStatus()
    .filter((s) => s.port === port)
    .at(-1);
  assert.ok(stream !== undefined, 'the client lists the stream');
  const circuit = client.circuitStatus().find((c) => c.id === stream.circuitId);
  assert.ok(circuit !== undefined, 'the client lists its circuit');
  return { streamId: stream.id, circuitId: stream.circuitId, path: circuit.path.map((h) => h.nickname) };
}

/** Whether `promise` settles within `ms` (the timer is cleared either way). */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([promise.then(() => true as const), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

interface KillOutcome {
  victim: string;
  downloadEndedMs: number;
  failedRequests: number;
  requests: number;
  firstSuccessMs: number;
}

/**
 * Start a download under `user`, kill the relay at `position` of its circuit,
 * then issue a fresh request every 0.2 s until 10 in a row succeeded (at most
 * 10 s), and start the relay again.
 */
async function killDuringDownload(net: TestnetProcess, client: ClientHandle, server: PayloadServer, position: 0 | 1 | 2, user: string): Promise<KillOutcome> {
  const socksPort = client.socksAddress.port;
  const download = await socksConnect(socksPort, { host: '127.0.0.1', port: server.port }, user);
  let received = 0;
  let gotMegabyte!: () => void;
  const megabyte = new Promise<void>((resolve) => (gotMegabyte = resolve));
  download.on('data', (c: Buffer) => {
    received += c.length;
    if (received >= 1_000_000) gotMegabyte();
  });
  download.on('error', () => {});
  const closed = new Promise<number>((resolve) => download.once('close', () => resolve(Date.now())));
  download.write(`GET /bytes/${DOWNLOAD_BYTES} HTTP/1.0\r\nHost: x\r\n\r\n`);
  if (!(await settlesWithin(megabyte, 20_000))) throw new Error('the download did not start');
  const victim = newestStream(client, server.port).path[position]!;

  const killedAt = Date.now();
  const answer = await net.ctl(`kill ${victim}`);
  assert.ok(answer.ok, answer.lines.join('\n'));
  const endedAt = (await settlesWithin(closed, 10_000)) ? await closed : Infinity;
  assert.ok(received < DOWNLOAD_BYTES, 'the download did not complete');

  // A fresh request every 0.2 s (no username, as a plain `curl --socks5-hostname` would).
  const results: { at: number; ok: boolean }[] = [];
  const pending: Promise<void>[] = [];
  const deadline = killedAt + 10_000;
  let streak = 0;
  while (Date.now() < deadline && streak < 10) {
    const at = Date.now();
    const outcome = helloOk(socksPort, server).then((ok) => {
      results.push({ at, ok });
    });
    pending.push(outcome);
    await new Promise((r) => setTimeout(r, REQUEST_INTERVAL_MS));
    const done = [...results].sort((a, b) => a.at - b.at);
    streak = 0;
    for (let i = done.length - 1; i >= 0 && done[i]!.ok; i--) streak++;
  }
  await Promise.all(pending);
  const restart = await net.ctl(`start ${victim}`);
  assert.ok(restart.ok, restart.lines.join('\n'));
  const ordered = results.sort((a, b) => a.at - b.at);
  const firstSuccess = ordered.find((r) => r.ok);
  return {
    victim,
    downloadEndedMs: endedAt - killedAt,
    failedRequests: ordered.filter((r) => !r.ok).length,
    requests: ordered.length,
    firstSuccessMs: firstSuccess === undefined ? Infinity : firstSuccess.at - killedAt,
  };
}

test('a testnet losing relays: downloads fail fast, requests recover, isolation and guards hold', { timeout: 170_000 }, async (t) => {
  const net = await startTestnetProcess(t);
  const server = await startPayloadServer({ host: '127.0.0.1', port: 0 });
  t.after(() => server.close());
  const stateDir = mkdtempSync(join(tmpdir(), 'allium-client-state-'));
  t.after(() => rmSync(stateDir, { recursive: true, force: true }));
  const config = {
    authorities: net.authorities.map((a) => ({ url: a.url, identity: fromHex(a.identity) })),
    socksHost: '127.0.0.1',
    socksPort: 0,
    dataDir: stateDir,
  };
  let client = await startClient(config);
  t.after(() => client.close());
  await client.whenReady(60_000);

  await t.test('two SOCKS usernames use two circuits, one username shares one, NEWNYM gives a new one', async () => {
    const port = client.socksAddress.port;
    const dest = { host: '127.0.0.1', port: server.port };
    const open: Socket[] = [];
    const circuitOfNext = async (user: string) => {
      open.push(await socksConnect(port, dest, user));
      return newestStream(client, server.port).circuitId;
    };
    const alice1 = await circuitOfNext('alice');
    const alice2 = await circuitOfNext('alice');
    const bob = await circuitOfNext('bob');
    assert.equal(alice1, alice2, 'one username, one circuit');
    assert.notEqual(alice1, bob, 'two usernames, two circuits');
    client.newnym();
    const alice3 = await circuitOfNext('alice');
    const bob2 = await circuitOfNext('bob');
    assert.notEqual(alice3, alice1, 'after NEWNYM alice gets a new circuit');
    assert.notEqual(bob2, bob, 'after NEWNYM bob gets a new circuit');
    assert.notEqual(alice3, bob2);
    for (const s of open) s.destroy();
  });

  for (const [position, name] of [
    [0, 'guard'],
    [1, 'middle'],
    [2, 'exit'],
  ] as const) {
    await t.test(`SIGKILL the ${name} of a downloading circuit: the download errors within 2 s, requests fail for at most 5 s`, async () => {
      const outcome = await killDuringDownload(net, client, server, position, `download-${name}`);
      t.diagnostic(`${name} ${outcome.victim}: download ended after ${outcome.downloadEndedMs} ms; ${outcome.failedRequests} of ${outcome.requests} requests failed; first success after ${outcome.firstSuccessMs} ms`);
      assert.ok(outcome.downloadEndedMs <= 2000, `download ended after ${outcome.downloadEndedMs} ms`);
      assert.ok(outcome.failedRequests * REQUEST_INTERVAL_MS <= 5000, `${outcome.failedRequests} failed requests`);
      assert.ok(Number.isFinite(outcome.firstSuccessMs), 'requests succeed again');
    });
  }

  await t.test('with every authority stopped too (the client keeps its consensus)', async () => {
    for (const a of net.authorities) {
      const stopped = await net.ctl(`stop ${a.nickname}`);
      assert.ok(stopped.ok, stopped.lines.join('\n'));
    }
    try {
      const outcome = await killDuringDownload(net, client, server, 1, 'download-no-authority');
      t.diagnostic(`middle ${outcome.victim}: download ended after ${outcome.downloadEndedMs} ms; ${outcome.failedRequests} of ${outcome.requests} failed`);
      assert.ok(outcome.downloadEndedMs <= 2000);
      assert.ok(outcome.failedRequests * REQUEST_INTERVAL_MS <= 5000);
      assert.ok(Number.isFinite(outcome.firstSuccessMs));
    } finally {
      for (const a of net.authorities) {
        const started = await net.ctl(`start ${a.nickname}`);
        assert.ok(started.ok, started.lines.join('\n'));
      }
    }
  });

  await t.test('guards persist across a client restart', async () => {
    const before = client.guardStatus();
    assert.ok(before.length >= 3);
    const primary = before.filter((g) => g.primary).map((g) => g.identity);
    const confirmed = before.filter((g) => g.confirmed).map((g) => g.identity);
    assert.ok(confirmed.length >= 1, 'circuits confirmed at least one guard');
    await client.close();
    assert.equal(statSync(join(stateDir, 'state')).mode & 0o777, 0o600);
    client = await startClient(config);
    await client.whenReady(60_000);
    const after = client.guardStatus();
    assert.deepEqual(after.map((g) => g.identity), before.map((g) => g.identity), 'the same sample, in the same order');
    assert.deepEqual(after.filter((g) => g.confirmed).map((g) => g.identity), confirmed);
    // Primary guards are the first three listed ones, confirmed first (guard-spec): the same as
    // before unless the consensus fetched after the restart no longer lists one (a relay killed
    // above may not be listed again yet), so derive them from the persisted state and today's listing.
    const listed = new Set(after.filter((g) => g.listed).map((g) => g.identity));
    const expectedPrimary = [...confirmed.filter((id) => listed.has(id)), ...after.map((g) => g.identity).filter((id) => listed.has(id) && !confirmed.includes(id))].slice(0, 3);
    assert.deepEqual(after.filter((g) => g.primary).map((g) => g.identity).sort(), expectedPrimary.sort());
    // With the same guards listed as before the restart, the very same primary guards, in order. (A guard
    // unlisted before, its relay killed above, may be listed again now and rank before one of them.)
    const listedBefore = before.filter((g) => g.listed).map((g) => g.identity);
    if (listedBefore.length === listed.size && listedBefore.every((id) => listed.has(id))) assert.deepEqual(after.filter((g) => g.primary).map((g) => g.identity), primary);
    const first = client.circuitStatus()[0]!;
    assert.ok(after.some((g) => g.primary && g.identity === first.path[0]!.identity), 'the first circuit after the restart starts at a primary guard');
  });

  await t.test('the testnet reported every kill as an exit line and kept running', async () => {
    assert.ok(net.exits.length >= 4, JSON.stringify(net.exits));
    for (const e of net.exits) assert.equal(e.expected, true);
    const status = await net.ctl('status');
    assert.ok(status.ok);
    const nodes = net.authorities.length + net.relays.length + 1;
    assert.equal(status.lines.at(-1), `ok ${nodes} of ${nodes} nodes running`);
  });
});
