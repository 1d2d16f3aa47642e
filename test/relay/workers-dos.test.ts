/**
 * With workers (relay/relay-workers.ts), links per remote address are
 * limited relay-wide: the main process counts each accepted connection until
 * the worker carrying it reports it closed. A relay with 2 workers and
 * dos.maxLinksPerAddress 4 keeps 4 connections from one address open (not
 * 2 × 4), closes the rest at once, counts them, and admits that address
 * again once its connections close; another address is not affected.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRelay } from '../../relay/relay.js';

const LIMIT = 4;
const WAIT_MS = 10_000;

async function until(cond: () => boolean, what: string, ms = WAIT_MS): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

test('with 2 workers, links per address are limited relay-wide (not per worker), and released when they close', { timeout: 60_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'allium-workers-dos-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const relay = await startRelay({
    nickname: 'capped',
    dataDir: dir,
    address: '127.0.0.1',
    port: 0,
    authorities: [],
    exit: false,
    workers: 2,
    dos: { maxLinksPerAddress: LIMIT },
  });
  t.after(() => relay.close());

  /** `n` connections from `from` that send nothing (each stays open until the handshake timeout, 10 s); which are still open after a moment. */
  const open = async (from: string, n: number): Promise<Array<{ socket: Socket; closed: boolean }>> => {
    const out: Array<{ socket: Socket; closed: boolean }> = [];
    for (let i = 0; i < n; i++) {
      const socket = connect({ host: relay.address, port: relay.port, localAddress: from });
      const entry = { socket, closed: false };
      socket.on('error', () => {});
      socket.on('close', () => (entry.closed = true));
      t.after(() => socket.destroy());
      out.push(entry);
      // One at a time, so that the main process has counted each before the next.
      await new Promise((resolve) => socket.once('connect', resolve));
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return out;
  };

  const first = await open('127.0.0.9', 3 * LIMIT);
  await until(() => first.filter((c) => c.closed).length >= 2 * LIMIT, 'the connections past the limit to be closed');
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.deepEqual(first.map((c) => c.closed), first.map((_, i) => i >= LIMIT), 'the first LIMIT stay open, the rest are closed');
  assert.equal(relay.dosStats().linksRefused >= 2 * LIMIT, true);

  // Another address is not affected.
  const other = await open('127.0.0.10', 2);
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.deepEqual(other.map((c) => c.closed), [false, false]);

  // Once the first address's connections close (the workers report it), it is admitted again.
  for (const c of first) c.socket.destroy();
  await until(() => relay.dosStats().addressesWithLinks === 1, 'the workers to report the closed connections');
  const again = await open('127.0.0.9', LIMIT);
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.deepEqual(again.map((c) => c.closed), again.map(() => false));
});
