/**
 * The testnet's control socket (cli/testnet-ctl.ts) with a handler that
 * records commands: the command grammar, the answer format, and that
 * malformed input (junk, an over-long line, no line at all, a flood of
 * connections) gets an `error` line and a close while other connections are
 * served. The socket against a real testnet is in test/e2e/resilience.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatResult, MAX_COMMAND_BYTES, parseCtlCommand, sendCtlCommand, startCtlServer } from '../../cli/testnet-ctl.js';

test('command grammar: verb and optional nickname, letters and digits only', () => {
  assert.deepEqual(parseCtlCommand('kill relay3'), { verb: 'kill', nickname: 'relay3' });
  assert.deepEqual(parseCtlCommand('  STATUS \r'), { verb: 'status' });
  for (const bad of ['', '   ', 'kill relay3 now', 'kill ../x', 'kill relay-3', 'k\u0000ill', 'x'.repeat(33)]) {
    assert.ok('error' in parseCtlCommand(bad), JSON.stringify(bad));
  }
  assert.equal(formatResult({ ok: true, lines: ['a', 'b'] }), 'a\nok b\n');
  assert.equal(formatResult({ ok: false, lines: ['nope'] }), 'error nope\n');
  assert.equal(formatResult({ ok: true, lines: [] }), 'ok\n');
});

/** Send raw bytes, read the answer until the server closes. */
function raw(path: string, bytes: string | Buffer, end = true): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    let text = '';
    const timer = setTimeout(() => reject(new Error('no close in time')), 10_000);
    socket.setEncoding('utf8');
    socket.on('data', (c: string) => (text += c));
    socket.on('error', () => {});
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(text);
    });
    socket.once('connect', () => {
      socket.write(bytes);
      if (end) socket.end();
    });
  });
}

test('control socket: answers commands, refuses malformed input, keeps serving', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'allium-ctl-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const seen: string[] = [];
  const server = await startCtlServer(dir, async (verb, nickname) => {
    seen.push(`${verb} ${nickname ?? ''}`.trim());
    return verb === 'status' ? { ok: true, lines: ['relay1 running', '1 of 1 nodes running'] } : { ok: false, lines: [`no ${verb}`] };
  });
  assert.equal(server.path, join(dir, 'ctl.sock'));
  assert.deepEqual(await sendCtlCommand(server.path, 'status'), { ok: true, lines: ['relay1 running', 'ok 1 of 1 nodes running'] });
  assert.deepEqual(await sendCtlCommand(server.path, 'kill relay9'), { ok: false, lines: ['error no kill'] });
  assert.match(await raw(server.path, 'kill ../etc\n'), /^error commands and nicknames are letters and digits\n$/);
  assert.match(await raw(server.path, Buffer.from([0xff, 0x00, 0x0a])), /^error /);
  assert.match(await raw(server.path, 'x'.repeat(MAX_COMMAND_BYTES + 10)), /^error command line too long\n$/);
  assert.match(await raw(server.path, ''), /^error no command\n$/);
  assert.match(await raw(server.path, 'status'), /^relay1 running\nok 1 of 1 nodes running\n$/, 'a last line without newline counts');
  // A flood of idle connections: the ones past the limit are refused, the server still answers.
  const idle = await Promise.all(Array.from({ length: 20 }, () => new Promise<ReturnType<typeof connect>>((resolve) => {
    const s = connect(server.path);
    s.on('error', () => {});
    s.once('connect', () => resolve(s));
  })));
  await new Promise((r) => setTimeout(r, 100));
  for (const s of idle) s.destroy();
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual((await sendCtlCommand(server.path, 'status')).ok, true);
  assert.deepEqual(seen, ['status', 'kill relay9', 'status', 'status']);
  // A second testnet cannot take over a live socket.
  await assert.rejects(startCtlServer(dir, async () => ({ ok: true, lines: [] })), /already listens/);
  await server.close();
  assert.equal(existsSync(server.path), false);
});
