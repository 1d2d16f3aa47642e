/**
 * SIGHUP reloads the log's destination and format (cli/log/node-log.ts): a
 * relay process started from a file that logs text to one file, after the
 * file is rewritten to log JSON to another and the relay gets SIGHUP, writes
 * its next lines (the reload's own line first) as JSON to the new file, and
 * the old file gets none of them. The relay keeps running.
 */
import { after, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRoleProcess } from '../support/role-process.js';

const tmp = mkdtempSync(join(tmpdir(), 'allium-log-reload-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

function relayToml(logFile: string, format: 'text' | 'json'): string {
  return `[storage]
data_dir = ${JSON.stringify(join(tmp, 'data'))}

[network]
authorities = ["http://127.0.0.1:1#${'ab'.repeat(32)}"]

[relay]
nickname = "logReload"
address = "127.62.0.1"
or_port = 0
reachability_timeout = 0

[log]
destination = "file"
file = ${JSON.stringify(logFile)}
format = "${format}"
`;
}

async function until<T>(what: string, timeoutMs: number, probe: () => T | undefined): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

it('SIGHUP moves the log to another file and format without a restart', { timeout: 60_000 }, async (t) => {
  const first = join(tmp, 'first.log');
  const second = join(tmp, 'second.log');
  const config = join(tmp, 'relay.toml');
  writeFileSync(config, relayToml(first, 'text'));
  const relay = startRoleProcess(t, ['relay', '--config', config]);
  await relay.up(30_000);
  await until('a text line in the first file', 10_000, () => (existsSync(first) && /^\d{4}-\d\d-\d\d [\d:.]+ \[notice\] /m.test(readFileSync(first, 'utf8')) ? true : undefined));
  const firstBefore = readFileSync(first, 'utf8');

  writeFileSync(config, relayToml(second, 'json'));
  relay.signal('SIGHUP');
  const line = await until('the reload line, as JSON, in the second file', 10_000, () => {
    if (!existsSync(second)) return undefined;
    return readFileSync(second, 'utf8')
      .trimEnd()
      .split('\n')
      .filter((l) => l.length > 0)
      .map((l) => JSON.parse(l) as { msg: string; level: string; role: string })
      .find((o) => /SIGHUP: reloaded .*relay\.toml: applied .*log\.file/.test(o.msg));
  });
  assert.equal(line.role, 'relay');
  assert.match(line.msg, /log\.format/);
  assert.equal(statSync(second).mode & 0o777, 0o600);
  // The old file keeps what came before the reload, as text, and gets nothing of it or after it.
  const old = readFileSync(first, 'utf8');
  assert.ok(old.startsWith(firstBefore));
  assert.doesNotMatch(old, /SIGHUP/);
  for (const l of old.trimEnd().split('\n')) assert.match(l, /^\d{4}-\d\d-\d\d [\d:.]+ \[\w+\] /);
  assert.ok(relay.alive, 'the relay did not restart');
});
