/**
 * Client resilience benchmark (plain script):
 *   node dist/bench/resilience.bench.js [--samples 20] [--kills 10] [--base DIR]
 *
 * Starts `allium testnet` and measures, through client processes of its own
 * (`allium client` against the testnet's authority, each with a data dir):
 *   - time to first byte of a small GET (SOCKS connect → first response byte)
 *     under a new SOCKS identity, on a warm circuit (the same identity again),
 *     and to a destination port not used before: median and p90 of --samples;
 *   - the circuit build time distribution (from the client's state file);
 *   - with a client in this process, --kills times: start a download, SIGKILL
 *     the guard, middle or exit of its circuit (in turn) through the testnet's
 *     control socket, and time the download's error, the first successful new
 *     request (one every 0.2 s) and the failed ones; then start the relay again.
 * With --base DIR (a built checkout of another revision, e.g. main), its
 * client runs against the same testnet, samples alternating with ours.
 * Prints a table and one JSON line. Everything started is stopped, also on error or Ctrl-C.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { SocksClient } from 'socks';
import { parseEventLine } from '../cli/testnet-events.js';
import { startClient, type ClientHandle } from '../client/client.js';
import { fromHex } from '../src/bytes.js';
import { startPayloadServer, type PayloadServer } from '../test/support/payload-server.js';
import { startTestnetProcess, type TestnetProcess } from '../test/support/testnet-process.js';

const OUR_MAIN = fileURLToPath(new URL('../cli/main.js', import.meta.url));
const PAYLOAD_HOST = '127.200.0.1';
const REQUEST_TIMEOUT_MS = 10_000;
const KILL_REQUEST_TIMEOUT_MS = 5_000;
const REQUEST_INTERVAL_MS = 200;
const DOWNLOAD_BYTES = 1_000_000_000;
/** Pause between two TTFB samples, ms. */
const PAUSE_MS = 500;

interface Args {
  samples: number;
  kills: number;
  base?: string;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { samples: 20, kills: 10 };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = argv[i + 1];
    if ((flag === '--samples' || flag === '--kills') && value !== undefined && /^\d+$/.test(value)) args[flag === '--samples' ? 'samples' : 'kills'] = Number(value);
    else if (flag === '--base' && value !== undefined) args.base = resolve(value);
    else throw new Error(`usage: node dist/bench/resilience.bench.js [--samples N] [--kills N] [--base DIR] (bad argument ${flag})`);
    i++;
  }
  return args;
}

function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}
const median = (xs: number[]) => percentile(xs, 50);
const r1 = (x: number) => Number(x.toFixed(1));

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}

/** SOCKS connect + GET /hello; ms to the first response byte. Rejects on failure or timeout. */
async function ttfb(socksPort: number, dest: { host: string; port: number }, user: string | undefined, timeoutMs = REQUEST_TIMEOUT_MS): Promise<number> {
  const t0 = performance.now();
  const { socket } = await SocksClient.createConnection({
    proxy: { host: '127.0.0.1', port: socksPort, type: 5, ...(user !== undefined ? { userId: user, password: 'x' } : {}) },
    command: 'connect',
    destination: dest,
    timeout: timeoutMs,
  });
  return new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('no response in time'));
    }, Math.max(1, timeoutMs - (performance.now() - t0)));
    socket.on('error', () => {});
    socket.once('data', () => {
      clearTimeout(timer);
      resolve(performance.now() - t0);
      socket.destroy();
    });
    socket.once('close', () => {
      clearTimeout(timer);
      reject(new Error('closed before any byte'));
    });
    socket.write(`GET /hello HTTP/1.0\r\nHost: ${dest.host}\r\n\r\n`);
  });
}

/** An `allium client` process of a given build against the testnet. */
interface ClientProcess {
  name: string;
  socksPort: number;
  dataDir: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

async function startClientProcess(name: string, main: string, net: TestnetProcess, readyTimeoutMs = 60_000): Promise<ClientProcess> {
  const dataDir = mkdtempSync(join(tmpdir(), `allium-bench-${name}-`));
  // A base revision may not know --data-dir: try with it, then without.
  const attempt = async (withDataDir: boolean): Promise<ClientProcess> => {
    const args = [main, 'client', '--authority', `${net.authorityUrl}#${net.authorityIdentity}`, '--socks-port', '0', ...(withDataDir ? ['--data-dir', dataDir] : [])];
    const child = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    child.stdin!.on('error', () => {});
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr = (stderr + s).slice(-4000)));
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    const up = await new Promise<number>((resolvePort, reject) => {
      const timer = setTimeout(() => reject(new Error(`${name} client not up in time: ${stderr}`)), readyTimeoutMs);
      createInterface({ input: child.stdout! }).on('line', (line) => {
        const event = parseEventLine(line);
        if (event?.event === 'up' && event.role === 'client') {
          clearTimeout(timer);
          resolvePort(event.port);
        }
      });
      child.once('exit', () => {
        clearTimeout(timer);
        reject(new Error(`${name} client exited: ${stderr.slice(-500)}`));
      });
    });
    return {
      name,
      socksPort: up,
      dataDir,
      child,
      async stop() {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGTERM');
          const done = await Promise.race([exited.then(() => true), delay(6000).then(() => false)]);
          if (!done) child.kill('SIGKILL');
        }
        rmSync(dataDir, { recursive: true, force: true });
      },
    };
  };
  try {
    return await attempt(true);
  } catch (error) {
    if (!/unknown option '--data-dir'/.test((error as Error).message)) throw error;
    return attempt(false);
  }
}

interface TtfbFigures {
  newIdentity: number[];
  warm: number[];
  newPort: number[];
  failures: number;
}

function stateBuildTimes(dataDir: string): number[] {
  try {
    const state = JSON.parse(readFileSync(join(dataDir, 'state'), 'utf8')) as { buildTimesMs?: number[] };
    return state.buildTimesMs ?? [];
  } catch {
    return [];
  }
}

// ---- kill measurement (a client in this process) ----

interface KillFigures {
  position: string;
  victim: string;
  downloadErrorMs: number;
  firstSuccessMs: number;
  failed: number;
  requests: number;
}

async function helloOk(socksPort: number, dest: { host: string; port: number }): Promise<boolean> {
  try {
    await ttfb(socksPort, dest, undefined, KILL_REQUEST_TIMEOUT_MS);
    return true;
  } catch {
    return false;
  }
}

async function killOnce(net: TestnetProcess, client: ClientHandle, server: PayloadServer, position: number, run: number): Promise<KillFigures> {
  const dest = { host: PAYLOAD_HOST, port: server.port };
  const { socket } = await SocksClient.createConnection({
    proxy: { host: '127.0.0.1', port: client.socksAddress.port, type: 5, userId: `dl${run}`, password: 'x' },
    command: 'connect',
    destination: dest,
    timeout: REQUEST_TIMEOUT_MS,
  });
  const download: Socket = socket;
  let bytes = 0;
  download.on('error', () => {});
  const started = new Promise<void>((resolve) => download.on('data', (c: Buffer) => (bytes += c.length) >= 1_000_000 && resolve()));
  const closed = new Promise<number>((resolve) => download.once('close', () => resolve(performance.now())));
  download.write(`GET /bytes/${DOWNLOAD_BYTES} HTTP/1.0\r\nHost: x\r\n\r\n`);
  await Promise.race([started, delay(20_000).then(() => Promise.reject(new Error('download did not start')))]);
  const stream = client.streamStatus().filter((s) => s.port === server.port).at(-1);
  const circuit = client.circuitStatus().find((c) => c.id === stream?.circuitId);
  if (circuit === undefined) throw new Error('download circuit not found');
  const victim = circuit.path[position]!.nickname;
  const killedAt = performance.now();
  const killed = await net.ctl(`kill ${victim}`);
  if (!killed.ok) throw new Error(killed.lines.join(' '));
  const endedAt = await Promise.race([closed, delay(10_000).then(() => Infinity)]);
  const results: { at: number; ok: boolean }[] = [];
  const pending: Promise<void>[] = [];
  let streak = 0;
  while (performance.now() - killedAt < 15_000 && streak < 10) {
    const at = performance.now();
    pending.push(helloOk(client.socksAddress.port, dest).then((ok) => void results.push({ at, ok })));
    await delay(REQUEST_INTERVAL_MS);
    const ordered = [...results].sort((a, b) => a.at - b.at);
    streak = 0;
    for (let i = ordered.length - 1; i >= 0 && ordered[i]!.ok; i--) streak++;
  }
  await Promise.all(pending);
  const restarted = await net.ctl(`start ${victim}`);
  if (!restarted.ok) throw new Error(restarted.lines.join(' '));
  const ordered = results.sort((a, b) => a.at - b.at);
  const first = ordered.find((r) => r.ok);
  return {
    position: ['guard', 'middle', 'exit'][position]!,
    victim,
    downloadErrorMs: endedAt - killedAt,
    firstSuccessMs: first === undefined ? Infinity : first.at - killedAt,
    failed: ordered.filter((r) => !r.ok).length,
    requests: ordered.length,
  };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  let testnet: TestnetProcess | undefined;
  const servers: PayloadServer[] = [];
  const clients: ClientProcess[] = [];
  let inProcess: ClientHandle | undefined;
  let stateDir: string | undefined;
  const teardown = async () => {
    await inProcess?.close().catch(() => {});
    for (const c of clients) await c.stop().catch(() => {});
    await testnet?.stop();
    for (const s of servers) await s.close().catch(() => {});
    if (stateDir !== undefined) rmSync(stateDir, { recursive: true, force: true });
  };
  const onSignal = () => {
    process.stderr.write('interrupted; tearing everything down\n');
    teardown().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const builds: { name: string; main: string }[] = [{ name: 'ours', main: OUR_MAIN }];
    if (args.base !== undefined) builds.push({ name: 'base', main: join(args.base, 'dist/cli/main.js') });
    const portsNeeded = 1 + args.samples * builds.length;
    for (let i = 0; i < portsNeeded; i++) servers.push(await startPayloadServer({ host: PAYLOAD_HOST }));
    const main = servers[0]!;
    process.stderr.write(`${servers.length} payload servers on ${PAYLOAD_HOST}; starting the testnet…\n`);
    testnet = await startTestnetProcess(undefined, { readyTimeoutMs: 90_000 });
    for (const b of builds) clients.push(await startClientProcess(b.name, b.main, testnet));
    process.stderr.write(`clients up: ${clients.map((c) => `${c.name} on ${c.socksPort}`).join(', ')}\n`);

    // Time to first byte. Warm each client's circuit for the warm identity first; let circuits built ahead settle.
    const dest = { host: PAYLOAD_HOST, port: main.port };
    for (const c of clients) await ttfb(c.socksPort, dest, 'warm').catch(() => {});
    await delay(1000);
    const figures = new Map<string, TtfbFigures>(clients.map((c) => [c.name, { newIdentity: [], warm: [], newPort: [], failures: 0 }]));
    let nextPort = 1;
    for (let i = 0; i < args.samples; i++) {
      for (const c of clients) {
        const f = figures.get(c.name)!;
        const take = async (list: number[], p: Promise<number>) => {
          try {
            list.push(await p);
          } catch (error) {
            f.failures++;
            process.stderr.write(`${c.name}: ${(error as Error).message}\n`);
          }
        };
        // Between two requests the client may build replacement circuits ahead, as it would between two clicks.
        await take(f.warm, ttfb(c.socksPort, dest, 'warm'));
        await delay(PAUSE_MS);
        await take(f.newIdentity, ttfb(c.socksPort, dest, `identity-${i}`));
        await delay(PAUSE_MS);
        await take(f.newPort, ttfb(c.socksPort, { host: PAYLOAD_HOST, port: servers[nextPort++]!.port }, 'warm'));
        await delay(PAUSE_MS);
      }
    }
    await delay(1500); // the state file is written at most once a second
    const buildTimes = stateBuildTimes(clients[0]!.dataDir);

    // Kills, with a client in this process (it can tell which circuit carries the download).
    const kills: KillFigures[] = [];
    if (args.kills > 0) {
      const killServer = servers[0]!;
      stateDir = mkdtempSync(join(tmpdir(), 'allium-bench-killclient-'));
      inProcess = await startClient({
        authorities: [{ url: testnet.authorityUrl, identity: fromHex(testnet.authorityIdentity) }],
        socksHost: '127.0.0.1',
        socksPort: 0,
        dataDir: stateDir,
      });
      await inProcess.whenReady(60_000);
      for (let run = 0; run < args.kills; run++) {
        try {
          const k = await killOnce(testnet, inProcess, killServer, run % 3, run);
          kills.push(k);
          process.stderr.write(`kill #${run + 1} ${k.position} ${k.victim}: download error after ${k.downloadErrorMs.toFixed(0)} ms, first success after ${k.firstSuccessMs.toFixed(0)} ms, ${k.failed}/${k.requests} failed\n`);
        } catch (error) {
          process.stderr.write(`kill #${run + 1} failed: ${(error as Error).message}\n`);
        }
        await delay(1000);
      }
    }

    const result: Record<string, unknown> = { bench: 'resilience', relays: testnet.relays.length, samples: args.samples };
    const rows: [string, string][] = [];
    for (const [name, f] of figures) {
      const fmt = (xs: number[]) => `${median(xs).toFixed(1)} ms (p90 ${percentile(xs, 90).toFixed(1)}, n=${xs.length})`;
      rows.push([`${name}: TTFB warm circuit`, fmt(f.warm)]);
      rows.push([`${name}: TTFB new SOCKS identity`, fmt(f.newIdentity)]);
      rows.push([`${name}: TTFB new destination port`, fmt(f.newPort)]);
      result[`${name}_ttfb_warm_ms_median`] = r1(median(f.warm));
      result[`${name}_ttfb_warm_ms_p90`] = r1(percentile(f.warm, 90));
      result[`${name}_ttfb_new_identity_ms_median`] = r1(median(f.newIdentity));
      result[`${name}_ttfb_new_identity_ms_p90`] = r1(percentile(f.newIdentity, 90));
      result[`${name}_ttfb_new_port_ms_median`] = r1(median(f.newPort));
      result[`${name}_ttfb_new_port_ms_p90`] = r1(percentile(f.newPort, 90));
      result[`${name}_ttfb_failures`] = f.failures;
    }
    const ours = figures.get('ours')!;
    const goalMet = median(ours.newIdentity) <= median(ours.warm) + 5;
    rows.push(['goal: new identity ≤ warm + 5 ms (medians)', goalMet ? 'met' : 'NOT met']);
    result['goal_new_identity_within_5ms_of_warm'] = goalMet;
    if (buildTimes.length > 0) {
      rows.push([
        `circuit build time (n=${buildTimes.length})`,
        `min ${Math.min(...buildTimes)} / median ${median(buildTimes)} / p90 ${percentile(buildTimes, 90)} / max ${Math.max(...buildTimes)} ms`,
      ]);
      result['build_ms'] = { n: buildTimes.length, min: Math.min(...buildTimes), median: median(buildTimes), p90: percentile(buildTimes, 90), max: Math.max(...buildTimes) };
    }
    if (kills.length > 0) {
      const errors = kills.map((k) => k.downloadErrorMs);
      const firsts = kills.map((k) => k.firstSuccessMs);
      const failedMs = kills.map((k) => k.failed * REQUEST_INTERVAL_MS);
      rows.push([`kill → download error (n=${kills.length})`, `median ${median(errors).toFixed(0)} ms, max ${Math.max(...errors).toFixed(0)} ms`]);
      rows.push(['kill → first successful new request', `median ${median(firsts).toFixed(0)} ms, max ${Math.max(...firsts).toFixed(0)} ms`]);
      rows.push(['failed requests after a kill (× 0.2 s)', `median ${median(failedMs)} ms, max ${Math.max(...failedMs)} ms`]);
      result['kills'] = kills.map((k) => ({ ...k, downloadErrorMs: r1(k.downloadErrorMs), firstSuccessMs: r1(k.firstSuccessMs) }));
      result['kill_download_error_ms_max'] = r1(Math.max(...errors));
      result['kill_first_success_ms_median'] = r1(median(firsts));
      result['kill_first_success_ms_max'] = r1(Math.max(...firsts));
      result['kill_failed_ms_max'] = Math.max(...failedMs);
    }
    const width = Math.max(...rows.map(([k]) => k.length));
    console.log(`\nAllium client resilience benchmark (${testnet.relays.length} relays, loopback, Node ${process.versions.node})`);
    for (const [k, v] of rows) console.log(`  ${k.padEnd(width)}  ${v}`);
    console.log(JSON.stringify(result));
    if (ours.newIdentity.length === 0) process.exitCode = 1;
  } catch (error) {
    process.stderr.write(`benchmark failed: ${(error as Error).message}\n`);
    process.exitCode = 1;
  } finally {
    await teardown();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

await main();
