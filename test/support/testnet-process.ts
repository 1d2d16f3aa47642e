/**
 * Runs `node dist/cli/main.js testnet --json --socks-port 0 --data-dir <tmp>`
 * (three voting authorities unless told otherwise) as one child process for
 * end-to-end tests and benchmarks, waits (bounded) for its
 * `ready` line (stdout is read with cli/testnet-events.ts), and tears it down
 * with the test (t.after), also on failure. If the network does not form in time, the error carries the tail of the
 * testnet's stderr and of every node's log. No side effects at import.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseEventLine, parseReadyLine, type NodeExitEvent, type NodeInfo, type ReadyLine } from '../../cli/testnet-events.js';
import { CTL_SOCKET, sendCtlCommand } from '../../cli/testnet-ctl.js';

/** dist/test/support/ → dist/cli/main.js */
export const CLI_MAIN = fileURLToPath(new URL('../../cli/main.js', import.meta.url));

const DEFAULT_READY_TIMEOUT_MS = 90_000;
/** The testnet itself waits 5 s + 2 s for its children; allow a little more. */
const STOP_TIMEOUT_MS = 12_000;
const KILL_WAIT_MS = 3_000;
const TAIL_CHARS = 3_000;

export interface TestnetRelay {
  nickname: string;
  address: string;
  port: number;
  identity: string;
  exit: boolean;
  /** `HOST:PORT` of its metrics port (with `metrics: true`). */
  metrics?: string;
}

export interface TestnetAuthority {
  nickname: string;
  url: string;
  /** 64 hex digits. */
  identity: string;
}

export interface TestnetProcess {
  /** SOCKS5 listener of the testnet's client, always on 127.0.0.1. */
  readonly socksHost: string;
  readonly socksPort: number;
  /** The first authority (the one the `ready` line names). */
  readonly authorityUrl: string;
  readonly authorityIdentity: string;
  /** Every authority, in order (auth1, auth2, …). */
  readonly authorities: TestnetAuthority[];
  readonly dataDir: string;
  readonly relays: TestnetRelay[];
  /** The client's HTTP tunnel and control port (`host:port`), when asked for; the control cookie file. */
  readonly httpTunnel: string | null;
  readonly control: string | null;
  readonly controlCookieFile: string;
  /** Every `node` line the testnet printed, in order (destination and forwarder included). */
  readonly nodes: NodeInfo[];
  /** `HOST:PORT` of each node's metrics port by nickname (auth1, relayN, client), with `metrics: true`. */
  readonly metrics: ReadonlyMap<string, string>;
  /** `http://127.0.0.1:PORT/` of the network dashboard, with `dashboard: true`. */
  readonly dashboardUrl: string | undefined;
  /** The `ready` line as printed. */
  readonly readyLine: string;
  /** Milliseconds from spawn to the `ready` line. */
  readonly startupMs: number;
  readonly pid: number;
  /** Stderr of the testnet process so far (tail). */
  stderrTail(): string;
  /** Send a control command (`kill relay3`, `start relay3`, `status`…) and get its answer. */
  ctl(command: string, timeoutMs?: number): Promise<{ ok: boolean; lines: string[] }>;
  /** `exit` lines printed after `ready`, in order. */
  readonly exits: NodeExitEvent[];
  /** Stops the testnet (`signal`, default SIGTERM, then SIGKILL) and removes its data dir unless kept. Idempotent. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

export interface TestnetProcessOptions {
  /** Directory authorities (default: the testnet's, 3). */
  authorities?: number;
  relays?: number;
  exits?: number;
  votingIntervalMs?: number;
  /** Bound on the wait for `ready` (default 90 s). */
  readyTimeoutMs?: number;
  /** Default: a fresh directory under os.tmpdir(), removed by stop(). */
  dataDir?: string;
  /** Keep the data dir (logs, keys) after stop(). Also: env ALLIUM_KEEP_TESTNET=1. */
  keepDataDir?: boolean;
  /** Give the client an HTTP tunnel port / a control port (any free port). */
  httpTunnel?: boolean;
  control?: boolean;
  /** More `allium testnet` options (--netns, --link-delay 20, --param cc_alg=0 ...). */
  extraArgs?: readonly string[];
  /** More environment for the testnet and its nodes (e.g. NODE_DEBUG). */
  env?: Readonly<Record<string, string>>;
  /** Give every node a metrics port (`allium testnet --metrics`). */
  metrics?: boolean;
  /** Serve the network dashboard (`--dashboard-port 0`); its URL is then `dashboardUrl`. */
  dashboard?: boolean;
  /** Every relay's bandwidth.rate (`--relay-bandwidth-rate`), e.g. "1 MB". */
  relayBandwidthRate?: string;
  /** Every relay's accounting.max (`--relay-accounting-max`), e.g. "20 MB". */
  relayAccountingMax?: string;
}

/** Tail of every node log under `dataDir` (<dataDir>/<node>/<node>.log). */
export function nodeLogTails(dataDir: string, chars = TAIL_CHARS): string {
  const parts: string[] = [];
  let entries: string[] = [];
  try {
    entries = readdirSync(dataDir).sort();
  } catch {
    return '(no data dir)';
  }
  for (const name of entries) {
    const path = join(dataDir, name, `${name}.log`);
    try {
      const text = readFileSync(path, 'utf8');
      parts.push(`--- ${name}.log ---\n${text.length > chars ? `…${text.slice(-chars)}` : text}`);
    } catch {
      // not a node directory
    }
  }
  return parts.join('\n');
}

export async function startTestnetProcess(
  t: Pick<TestContext, 'after'> | undefined,
  opts: TestnetProcessOptions = {},
): Promise<TestnetProcess> {
  const ownDir = opts.dataDir === undefined;
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'allium-test-testnet-'));
  const keep = opts.keepDataDir === true || process.env['ALLIUM_KEEP_TESTNET'] === '1';
  // --json: the node lines come on stdout too (they always go to <dataDir>/events.jsonl).
  const args = [CLI_MAIN, 'testnet', '--json', '--socks-port', '0', '--data-dir', dataDir];
  if (opts.authorities !== undefined) args.push('--authorities', String(opts.authorities));
  if (opts.relays !== undefined) args.push('--relays', String(opts.relays));
  if (opts.exits !== undefined) args.push('--exits', String(opts.exits));
  if (opts.votingIntervalMs !== undefined) args.push('--voting-interval', String(opts.votingIntervalMs));
  if (opts.httpTunnel === true) args.push('--http-tunnel-port', '0');
  if (opts.control === true) args.push('--control-port', '0');
  args.push(...(opts.extraArgs ?? []));
  if (opts.metrics === true) args.push('--metrics');
  if (opts.dashboard === true) args.push('--dashboard-port', '0');
  if (opts.relayBandwidthRate !== undefined) args.push('--relay-bandwidth-rate', opts.relayBandwidthRate);
  if (opts.relayAccountingMax !== undefined) args.push('--relay-accounting-max', opts.relayAccountingMax);
  const readyTimeoutMs = opts.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS;
  // Let the testnet give up (and say why) a little before we do.
  args.push('--start-timeout', String(Math.max(5_000, readyTimeoutMs - 10_000)));

  const spawnedAt = Date.now();
  const child = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...opts.env } });
  child.stdin.on('error', () => {});
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const isAlive = () => child.exitCode === null && child.signalCode === null;

  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (text: string) => {
    stderr = (stderr + text).slice(-4 * TAIL_CHARS);
  });
  const stderrTail = () => stderr;

  let stopped: Promise<void> | null = null;
  const killOnExit = () => {
    if (isAlive() && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
  };
  process.once('exit', killOnExit);
  const stop = (signal: NodeJS.Signals = 'SIGTERM'): Promise<void> => {
    stopped ??= (async () => {
      if (isAlive() && child.pid !== undefined) {
        child.kill(signal);
        if (!(await within(exited, STOP_TIMEOUT_MS))) {
          child.kill('SIGKILL');
          await within(exited, KILL_WAIT_MS);
        }
      }
      process.off('exit', killOnExit);
      if (ownDir && !keep) rmSync(dataDir, { recursive: true, force: true });
    })();
    return stopped;
  };
  t?.after(() => stop());

  const relays: TestnetRelay[] = [];
  const authorities: TestnetAuthority[] = [];
  const exits: NodeExitEvent[] = [];
  let formed = false;
  const nodes: NodeInfo[] = [];
  const metrics = new Map<string, string>();
  let httpTunnel: string | null = null;
  let control: string | null = null;
  const ready = new Promise<{ line: string; fields: ReadyLine }>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout, crlfDelay: Infinity });
    lines.on('line', (line) => {
      try {
        const fields = parseReadyLine(line);
        if (fields !== null) {
          formed = true;
          resolve({ line, fields });
          return;
        }
        const event = parseEventLine(line);
        if (event?.event === 'exit') exits.push(event);
        if (event?.event !== 'node') return;
        // A node started again prints its node line again; its metrics port is pinned, so this keeps the map current.
        if (event.role !== 'destination' && event.role !== 'forward' && event.metrics !== undefined) metrics.set(event.nickname ?? event.role, event.metrics);
        if (formed) return;
        const { event: _kind, ...node } = event;
        nodes.push(node as NodeInfo);
        if (event.role === 'relay') {
          relays.push({ nickname: event.nickname, address: event.address, port: event.port, identity: event.identity, exit: event.exit, ...(event.metrics !== undefined ? { metrics: event.metrics } : {}) });
        } else if (event.role === 'authority') {
          authorities.push({ nickname: event.nickname, url: event.url, identity: event.identity });
        } else if (event.role === 'client') {
          httpTunnel = event.httpTunnel ?? null;
          control = event.control ?? null;
        }
      } catch (error) {
        reject(error as Error);
      }
    });
    child.once('exit', (code, signal) => reject(new Error(`testnet exited before ready (${signal ?? `code ${code}`})`)));
    child.once('error', reject);
  });
  ready.catch(() => {});

  let readyLine: string;
  let readyFields: ReadyLine;
  try {
    const outcome = await Promise.race([ready, delay(readyTimeoutMs).then(() => null)]);
    if (outcome === null) throw new Error(`testnet not ready within ${readyTimeoutMs} ms`);
    readyLine = outcome.line;
    readyFields = outcome.fields;
  } catch (error) {
    const logs = nodeLogTails(dataDir);
    const keptDir = ownDir && !keep ? '' : ` (data dir ${dataDir})`;
    await stop();
    throw new Error(
      `${(error as Error).message}${keptDir}\n--- testnet stderr ---\n${stderr.slice(-TAIL_CHARS)}\n${logs}`,
    );
  }

  return {
    socksHost: readyFields.socksHost,
    socksPort: readyFields.socksPort,
    authorityUrl: readyFields.authorityUrl,
    authorityIdentity: authorities.find((a) => a.url === readyFields.authorityUrl)?.identity ?? '',
    authorities,
    dataDir,
    relays,
    httpTunnel,
    control,
    controlCookieFile: join(dataDir, 'client', 'control_auth_cookie'),
    nodes,
    metrics,
    dashboardUrl: opts.dashboard === true ? await dashboardLine(() => stderr) : undefined,
    readyLine,
    startupMs: Date.now() - spawnedAt,
    pid: child.pid!,
    stderrTail,
    ctl: (command, timeoutMs = 60_000) => sendCtlCommand(join(dataDir, CTL_SOCKET), command, timeoutMs),
    exits,
    stop,
  };
}

/** The dashboard URL from the testnet's stderr (a separate pipe, so it may trail the ready line a little); bounded. */
async function dashboardLine(stderr: () => string): Promise<string | undefined> {
  for (let waited = 0; waited < 5_000; waited += 50) {
    const m = /dashboard on (http:\/\/127\.0\.0\.1:\d+\/)/.exec(stderr());
    if (m !== null) return m[1];
    await delay(50);
  }
  return undefined;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

async function within(promise: Promise<void>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true as const), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
