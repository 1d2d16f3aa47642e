/**
 * `allium testnet` for people: stdout carries only the `ready` line; the
 * machine-readable event lines go to <data dir>/events.jsonl (and, with
 * --json, to stdout: test/support/testnet-process.ts). Node logs carry one
 * line per important event (descriptor accepted, consensus, bootstrapped).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseEventLine, parseReadyLine } from '../../cli/testnet-events.js';
import { CLI_MAIN } from '../support/testnet-process.js';

const tmp = mkdtempSync(join(tmpdir(), 'allium-testnet-output-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

it('stdout shows people the ready line only; events.jsonl has the event lines; logs name the important events', async (t) => {
  const dataDir = join(tmp, 'net');
  const child = spawn(process.execPath, [CLI_MAIN, 'testnet', '--relays', '3', '--exits', '1', '--socks-port', '0', '--data-dir', dataDir], { stdio: ['pipe', 'pipe', 'pipe'] });
  child.stdin.on('error', () => {});
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 12_000);
    await exited;
    clearTimeout(timer);
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ready line in 60 s\n${stderr}`)), 60_000);
    const check = () => {
      if (stdout.includes('\n')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout.on('data', check);
    child.once('exit', () => reject(new Error(`testnet exited\n${stderr}`)));
  });
  const lines = stdout.trimEnd().split('\n');
  assert.equal(lines.length, 1, stdout);
  const ready = parseReadyLine(lines[0]!);
  assert.ok(ready !== null);
  assert.match(stderr, /network formed in/);

  const events = readFileSync(join(dataDir, 'events.jsonl'), 'utf8').trimEnd().split('\n');
  assert.equal(events.length, 3 + 3 + 1 + 1, events.join('\n'));
  const parsed = events.slice(0, -1).map((l) => parseEventLine(l));
  assert.deepEqual(parsed.map((e) => (e?.event === 'node' ? `node:${e.role}` : String(e?.event))), ['node:authority', 'node:authority', 'node:authority', 'node:relay', 'node:relay', 'node:relay', 'node:client']);
  assert.equal(events.at(-1), lines[0]);

  const log = (name: string) => readFileSync(join(dataDir, name, `${name}.log`), 'utf8');
  assert.match(log('relay1'), /\[notice\] Descriptor accepted by authority 1$/m);
  assert.match(log('client'), /\[notice\] New consensus: valid after .*, 3 relays, [23] signature\(s\)$/m);
  assert.match(log('client'), /\[notice\] Bootstrapped 100%: a 3-hop circuit is built; ready$/m);
});
