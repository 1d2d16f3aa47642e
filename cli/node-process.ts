/**
 * One testnet node as a child process (`node dist/cli/main.js <role> …`):
 * spawned detached with the role's Node flags, its stderr and stdout in its
 * own log file (mode 0600), its stdout's event lines parsed (the `up` line
 * of its role, `bootstrap` progress), stopped by PID. cli/testnet.ts starts
 * and supervises these.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { AlliumError } from '../src/errors.js';
import { describeError } from './lifecycle.js';
import { parseEventLine, type BootstrapEvent, type NodeInfo, type TestnetEvent } from './testnet-events.js';

export type Role = NodeInfo['role'];
/** The `up` line of a role. */
export type UpEvent<R extends Role> = Extract<NodeInfo, { role: R }> & { event: 'up' };

const LOG_TAIL_BYTES = 2_000;

const MAIN_JS = fileURLToPath(new URL('./main.js', import.meta.url));

/**
 * Node flags by role. The relays run with 2 MiB semi-spaces, the client
 * with 1 MiB: under a fast download V8 otherwise grows its young
 * generation to 16 MiB per semi-space (48 MiB of RSS counting its copies
 * and the fragmentation left behind), while the cells and chunks they
 * allocate die young anyway. Measured on a 100 MB download: client RSS
 * 76-78 MiB against 85-99 MiB, CPU per byte unchanged within the noise; a
 * client at 1 MiB held 73 MiB during 100 MB downloads against 77-80 MiB at
 * 2 MiB, CPU per 100 MB the same within the noise (0.94-1.09 s against
 * 0.93-1.02 s, load 14-16). For a relay under the memory cap's load
 * (bench/mem-cap.bench.ts) V8's reserved heap stays at ~26 MiB instead of
 * ~50 MiB; relay-load's CPU per forwarded cell unchanged or lower within
 * the noise. The client also keeps one V8 platform thread
 * (--v8-pool-size=1) instead of four: each thread that allocates gets a
 * malloc arena and a stack of its own, and a client's background work (GC
 * helpers, compilation) does not need four. Anyone running `allium client`
 * or `allium relay` can do the same with NODE_OPTIONS (docs/operators.md,
 * "Memory").
 */
export const NODE_FLAGS: Partial<Record<Role, readonly string[]>> = {
  client: ['--max-semi-space-size=1', '--v8-pool-size=1'],
  relay: ['--max-semi-space-size=2'],
};

/**
 * Environment by role, under the testnet's own (a variable already set
 * wins, so an operator or a benchmark can override any of these).
 *
 * Relays run with MALLOC_MMAP_THRESHOLD_=40960: glibc's malloc then serves
 * every block over 40 KiB (the 64 KiB frames, ciphertexts and socket reads
 * that queued data lives in) with its own mapping, which goes back to the
 * system when freed, instead of from its heap, whose freed pages it keeps.
 * Under the memory cap's load (bench/mem-cap.bench.ts) a relay's RSS then
 * follows what it holds instead of staying at its highest. The threshold is
 * above 32 KiB because V8's optimizing compiler takes its memory in 32 KiB
 * zone segments: mapped on their own, every segment of every compilation was
 * new pages to fault in (tens of µs each in a VM), and a relay's first
 * 100 MB cost it 27,000-36,000 page faults and 3-4 CPU s instead of ~1.5 s.
 * MALLOC_TRIM_THRESHOLD_=1048576 lets each malloc arena keep up to 1 MiB free
 * at its top instead of 128 KiB, so the compiler threads' arenas are not
 * shrunk and grown again by every compilation. Together they cut a fresh
 * relay's faults in its first 100 MB to 9,000-12,500 and a warm one's to
 * almost none (bench/cpu-per-byte.bench.ts); the memory cap's bound holds
 * (mem-cap: highest RSS 1.1 MiB under idle + cap). Anyone running `allium
 * relay` can do the same (docs/operators.md; the systemd unit does).
 *
 * The client runs with at most two glibc malloc arenas (MALLOC_ARENA_MAX)
 * and the malloc thresholds fixed (MALLOC_MMAP_THRESHOLD_ at 128 KiB,
 * MALLOC_TRIM_THRESHOLD_ at 2 MiB): glibc otherwise gives each thread that
 * allocates an arena of its own, and raises its mmap threshold to the
 * largest block freed so far (stream inboxes reach 256 KiB under a
 * download), after which such blocks come from the heap and what a burst of
 * parallel streams freed stays resident. Fixed, a block of 128 KiB or more
 * is mapped and unmapped on its own. The heap keeps up to 2 MiB free at its
 * top: the 64 KiB reads, frame plaintexts and keystream outputs of a
 * download are freed together when V8 collects them, and with glibc's
 * 128 KiB trim the heap gave those pages back after every collection and
 * faulted them in again (about 14 µs a fault on the project machine).
 * Measured alternating with 128 KiB (bench/cpu-per-byte.bench.ts, 16 and 12
 * warm 100 MB runs): faults per 100 MB 0-500 against 300-12,000, client CPU
 * a median of 0.89 s against 0.99 s (0.77-1.07 against 0.85-1.15). The
 * price is up to 2 MiB of RSS per arena: after the side-by-side workload
 * (docs/operators.md, "Memory") a median of 82.5 MiB over 9 runs against
 * 78.6 MiB over 5, single runs swinging by ±4 MiB. Anyone running `allium
 * client` can set the same (docs/operators.md, "Memory").
 */
export const NODE_ENV_VARS: Partial<Record<Role, Readonly<Record<string, string>>>> = {
  relay: { MALLOC_MMAP_THRESHOLD_: '40960', MALLOC_TRIM_THRESHOLD_: '1048576' },
  client: { MALLOC_ARENA_MAX: '2', MALLOC_MMAP_THRESHOLD_: '131072', MALLOC_TRIM_THRESHOLD_: '2097152' },
};

/**
 * Extra Node flags for every node a testnet starts, from the environment
 * variable ALLIUM_NODE_FLAGS (words separated by white space), placed after
 * the role's own (NODE_FLAGS): for flags NODE_OPTIONS refuses, such as
 * `--cpu-prof`. `{nickname}` in a flag becomes the node's nickname, so each
 * node's output file is named after it (docs/testnet.md, "Profiling the
 * nodes"). Throws AlliumError ERR_CONFIG for a word that does not start
 * with `-`: node would run it as its script instead of Allium.
 */
export function extraNodeFlags(nickname: string, env: NodeJS.ProcessEnv = process.env): string[] {
  const words = (env['ALLIUM_NODE_FLAGS'] ?? '').split(/\s+/).filter((w) => w.length > 0);
  for (const w of words) {
    if (!w.startsWith('-')) throw new AlliumError('ERR_CONFIG', `ALLIUM_NODE_FLAGS: "${w}" is not a Node flag (each word must start with -)`);
  }
  return words.map((w) => w.replaceAll('{nickname}', nickname));
}

/** One node's child process: `up` resolves with its `up` line, `exited` once it exits; `onExit` is called then. */
export class NodeProcess {
  readonly child: ChildProcess;
  /** The node's `up` line (its role checked). */
  readonly up: Promise<UpEvent<Role>>;
  readonly exited: Promise<void>;
  #logFd: number | null;

  constructor(
    readonly nickname: string,
    readonly role: Role,
    readonly dir: string,
    readonly logPath: string,
    args: string[],
    onExit: (node: NodeProcess) => void,
    onBootstrap: (node: NodeProcess, event: BootstrapEvent) => void = () => {},
    /** How to run `node MAIN_JS role args` (inside a namespace, say); default as is. */
    wrap: (argv: string[]) => [string, string[]] = (argv) => [argv[0]!, argv.slice(1)],
  ) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    this.#logFd = openSync(logPath, 'a', 0o600);
    // detached: a terminal's Ctrl-C reaches only the testnet, which then
    // stops the children itself, in order. stdin stays a pipe so a child
    // notices a dead parent (end of stdin) even if we are SIGKILLed.
    const [command, argv] = wrap([process.execPath, ...(NODE_FLAGS[role] ?? []), ...extraNodeFlags(nickname), MAIN_JS, role, ...args]);
    this.child = spawn(command, argv, {
      stdio: ['pipe', 'pipe', this.#logFd],
      detached: true,
      env: { ...NODE_ENV_VARS[role], ...process.env },
    });
    this.child.stdin?.on('error', () => {});
    this.exited = new Promise((resolveExit) => this.child.once('exit', () => resolveExit()));
    let resolveUp: (line: UpEvent<Role>) => void = () => {};
    let rejectUp: (error: Error) => void = () => {};
    this.up = new Promise<UpEvent<Role>>((res, rej) => {
      resolveUp = res;
      rejectUp = rej;
    });
    this.up.catch(() => {});
    this.child.once('error', (error) => rejectUp(new Error(`${nickname}: could not start: ${error.message}`)));
    const lines = createInterface({ input: this.child.stdout!, crlfDelay: Infinity });
    lines.on('line', (line) => {
      this.log(`${line}\n`);
      let event: TestnetEvent | null;
      try {
        event = parseEventLine(line);
      } catch (error) {
        rejectUp(new Error(`${nickname}: ${describeError(error)}`));
        return;
      }
      if (event?.event === 'bootstrap') onBootstrap(this, event);
      else if (event?.event === 'up' && event.role === role) resolveUp(event);
      else if (event !== null) rejectUp(new Error(`${nickname}: unexpected line ${line.slice(0, 200)}`));
    });
    this.child.once('exit', (code, signal) => {
      rejectUp(new Error(`${nickname} exited before it was up (${signal ?? `code ${code}`}); see ${logPath}`));
      onExit(this);
    });
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null && this.child.pid !== undefined;
  }

  get exitDescription(): string {
    return this.child.signalCode ?? `code ${this.child.exitCode}`;
  }

  log(text: string): void {
    if (this.#logFd === null) return;
    try {
      writeSync(this.#logFd, text);
    } catch {
      // the log is best effort
    }
  }

  closeLog(): void {
    if (this.#logFd === null) return;
    closeSync(this.#logFd);
    this.#logFd = null;
  }

  kill(signal: NodeJS.Signals): void {
    if (!this.alive || this.child.pid === undefined) return;
    try {
      process.kill(this.child.pid, signal);
    } catch {
      // already gone
    }
  }

  tail(): string {
    return logTail(this.logPath);
  }
}

/** The last `bytes` characters of a log file (with a leading …), or `(no log)`. */
export function logTail(path: string, bytes = LOG_TAIL_BYTES): string {
  try {
    const text = readFileSync(path, 'utf8');
    return text.length > bytes ? `…${text.slice(-bytes)}` : text;
  } catch {
    return '(no log)';
  }
}
