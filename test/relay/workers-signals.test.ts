/**
 * A relay with worker processes (relay/relay-workers.ts) and signals: a
 * SIGHUP sent to the whole process group (a terminal hangup, `kill -HUP
 * -PGID`) reaches the workers too, and must not kill them; a worker that
 * dies on its own leaves a relay that no longer carries what it advertises,
 * so the relay says so at `err` and exits with status 1 for its supervisor
 * to restart it, instead of running on silently.
 */
import { after, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRoleProcess } from '../support/role-process.js';

const tmp = mkdtempSync(join(tmpdir(), 'allium-workers-signals-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** The PIDs of `pid`'s child processes (Linux /proc through pgrep). */
function childrenOf(pid: number): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
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

it('workers survive a SIGHUP to the process group; a worker that dies stops the relay with status 1 and an err line', { timeout: 60_000 }, async (t) => {
  const config = join(tmp, 'relay.toml');
  writeFileSync(
    config,
    `[storage]
data_dir = ${JSON.stringify(join(tmp, 'data'))}

[network]
authorities = ["http://127.0.0.1:1#${'ab'.repeat(32)}"]

[relay]
nickname = "workerSignals"
address = "127.63.0.1"
or_port = 0
reachability_timeout = 0
workers = 2
`,
  );
  const relay = startRoleProcess(t, ['relay', '--config', config]);
  await relay.up(30_000);
  const workers = await until('two worker processes', 10_000, () => {
    const pids = childrenOf(relay.pid);
    return pids.length === 2 ? pids : undefined;
  });

  // SIGHUP to the relay and to both workers, as a hangup of the process group delivers it.
  const reloads = relay.stderr().length;
  relay.signal('SIGHUP');
  for (const pid of workers) process.kill(pid, 'SIGHUP');
  await relay.waitStderr(/SIGHUP/, 10_000, reloads);
  await new Promise((r) => setTimeout(r, 500));
  assert.deepEqual(childrenOf(relay.pid).sort(), [...workers].sort(), 'both workers still run');
  assert.equal(relay.alive, true);

  // One worker killed: the relay stops, saying why, with status 1.
  const exited = new Promise<number | null>((resolve) => relay.child.once('exit', (code) => resolve(code)));
  process.kill(workers[0]!, 'SIGKILL');
  const code = await Promise.race([exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 20_000))]);
  assert.equal(code, 1, `exit status; stderr:\n${relay.stderr()}`);
  assert.match(relay.stderr(), new RegExp(`relay worker ${workers[0]} exited \\(SIGKILL\\); 1 of 2 left`));
  await until('the other worker gone too', 10_000, () => {
    try {
      process.kill(workers[1]!, 0);
      return undefined;
    } catch {
      return true;
    }
  });
});
