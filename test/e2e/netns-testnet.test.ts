/**
 * `allium testnet --netns` end to end (docs/testnet.md): every node in its own
 * network namespace. The destination in its own namespace sees the exit's
 * namespace address; curl --socks5-hostname, torsocks and proxychains reach it
 * through the SOCKS port on the host's 127.0.0.1 (each tool skipped, with the
 * reason printed, where it is not installed); a testnet killed with SIGKILL
 * leaves namespaces that the next start removes; Ctrl-C (SIGINT) leaves no
 * namespace and no process. Needs root: skipped with the reason elsewhere
 * (CI runs as root).
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn } from 'node:child_process';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import type { Socket } from 'node:net';
import { SocksClient } from 'socks';
import { netnsUnavailable, removeLeftovers } from '../../cli/netns.js';
import { CLI_MAIN, startTestnetProcess, type TestnetProcess } from '../support/testnet-process.js';
import { until } from '../support/edge-pair.js';

const unavailable = netnsUnavailable();
if (unavailable !== null) process.stdout.write(`# skipping the --netns tests: ${unavailable}\n`);

function namespacesOf(pid: number): string[] {
  const text = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8', timeout: 10_000 });
  return text
    .split('\n')
    .map((line) => line.split(' ')[0] ?? '')
    .filter((name) => name.startsWith(`alm${pid}-`));
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function installed(tool: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(command, args, { timeout: 60_000, encoding: 'utf8', env }, (error, stdout, stderr) => {
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

async function socksGet(net: TestnetProcess, host: string, path: string): Promise<string> {
  const { socket } = await SocksClient.createConnection({
    proxy: { host: net.socksHost, port: net.socksPort, type: 5 },
    command: 'connect',
    destination: { host, port: 80 },
    timeout: 30_000,
  });
  return readBody(socket, host, path);
}

async function readBody(socket: Socket, host: string, path: string): Promise<string> {
  socket.setTimeout(30_000, () => socket.destroy(new Error('HTTP read timed out')));
  socket.write(`GET ${path} HTTP/1.0\r\nHost: ${host}\r\n\r\n`);
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  await once(socket, 'end');
  const text = Buffer.concat(chunks).toString('utf8');
  assert.match(text, /^HTTP\/1\.1 200/);
  return text.slice(text.indexOf('\r\n\r\n') + 4);
}

/** The node PIDs of a testnet (its children), from /proc. */
function childPids(pid: number): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' })
      .split('\n')
      .filter((l) => /^\d+$/.test(l))
      .map(Number);
  } catch {
    return [];
  }
}

function netnsTestnet(t: TestContext): Promise<TestnetProcess> {
  return startTestnetProcess(t, { relays: 3, exits: 1, extraArgs: ['--netns'] });
}

test('--netns: a leftover of a killed run is removed at the next start; tools reach a non-loopback destination that sees the exit; Ctrl-C leaves nothing', { skip: unavailable ?? false, timeout: 240_000 }, async (t) => {
  // Whatever happens below, no namespace of a dead testnet outlives the test.
  t.after(() => void removeLeftovers());
  // A run that dies without cleaning up (SIGKILL): its children notice (their stdin ends), its namespaces stay.
  const crashed = await netnsTestnet(t);
  const crashedChildren = childPids(crashed.pid);
  assert.ok(namespacesOf(crashed.pid).length >= 6, 'bridge, destination, authority, 3 relays, client');
  process.kill(crashed.pid, 'SIGKILL');
  await until(() => crashedChildren.every((pid) => !alive(pid)), 15_000, 'the killed testnet’s nodes to exit');
  assert.ok(namespacesOf(crashed.pid).length >= 6, 'a killed testnet leaves its namespaces');

  const net = await netnsTestnet(t);
  assert.match(net.stderrTail(), new RegExp(`removed \\d+ namespace\\(s\\) a crashed testnet left: .*alm${crashed.pid}-`));
  assert.deepEqual(namespacesOf(crashed.pid), [], 'the next start removed the leftovers');

  const dest = net.nodes.find((n) => n.role === 'destination');
  assert.ok(dest !== undefined && dest.role === 'destination');
  assert.equal(dest.address, '10.127.0.1');
  const exits = net.relays.filter((r) => r.exit).map((r) => r.address);
  assert.deepEqual(exits, ['10.65.0.1']);
  for (const node of net.nodes) if (node.role === 'relay' || node.role === 'authority') assert.match(node.address, /^10\.(6[4-9]|[7-9]\d|1[01]\d|12[0-7])\.0\.1$/);
  assert.equal(net.socksHost, '127.0.0.1', 'the SOCKS port is on the host’s loopback');

  await t.test('the destination sees the exit’s namespace address (socks package)', async () => {
    assert.equal((await socksGet(net, dest.address, '/ip')).trim(), exits[0]);
  });

  await t.test('curl --socks5-hostname', async (tt) => {
    if (!installed('curl')) return tt.skip('curl is not installed');
    const result = await run('curl', ['-sS', '--max-time', '30', '--socks5-hostname', `${net.socksHost}:${net.socksPort}`, `http://${dest.address}/ip`]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout.trim(), exits[0]);
  });

  await t.test('torsocks curl (torsocks refuses loopback destinations; this one is not)', async (tt) => {
    if (!installed('torsocks') || !installed('curl')) return tt.skip('torsocks or curl is not installed');
    const dir = mkdtempSync(join(tmpdir(), 'allium-torsocks-'));
    tt.after(() => rmSync(dir, { recursive: true, force: true }));
    const conf = join(dir, 'torsocks.conf');
    writeFileSync(conf, `TorAddress ${net.socksHost}\nTorPort ${net.socksPort}\n`);
    const result = await run('torsocks', ['curl', '-sS', '--max-time', '30', `http://${dest.address}/hello`], { ...process.env, TORSOCKS_CONF_FILE: conf });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /hello from the allium testnet destination/);
  });

  await t.test('proxychains4 curl', async (tt) => {
    if (!installed('proxychains4') || !installed('curl')) return tt.skip('proxychains4 or curl is not installed (apt-get install proxychains4)');
    const dir = mkdtempSync(join(tmpdir(), 'allium-proxychains-'));
    tt.after(() => rmSync(dir, { recursive: true, force: true }));
    const conf = join(dir, 'proxychains.conf');
    writeFileSync(conf, `strict_chain\nquiet_mode\nproxy_dns\ntcp_read_time_out 30000\ntcp_connect_time_out 30000\n[ProxyList]\nsocks5 ${net.socksHost} ${net.socksPort}\n`);
    const result = await run('proxychains4', ['-f', conf, 'curl', '-sS', '--max-time', '30', `http://${dest.address}/ip`]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout.trim(), exits[0]);
  });

  // Ctrl-C: every node stops, every namespace goes.
  const children = childPids(net.pid);
  assert.ok(children.length >= 7, `destination, authority, 3 relays, client, SOCKS forwarder (${children.length})`);
  await net.stop('SIGINT');
  assert.deepEqual(namespacesOf(net.pid), []);
  assert.deepEqual(children.filter(alive), [], 'no node process left');
});

test('--netns without root says so and exits 1', { timeout: 30_000 }, async (t) => {
  const asRoot = process.getuid?.() === 0;
  if (asRoot && !installed('setpriv')) return t.skip('running as root and setpriv is not installed, so no unprivileged run can be made');
  const argv = [CLI_MAIN, 'testnet', '--netns', '--socks-port', '0'];
  // As root, drop to nobody for this one run.
  const child = asRoot
    ? spawn('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const [code] = (await once(child, 'exit')) as [number | null];
  assert.equal(code, 1);
  assert.match(stderr, /--netns: it must run as root/);
});
