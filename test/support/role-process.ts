/**
 * One `allium <role> ...` child process for tests: its `up` line
 * (cli/testnet-events.ts), its stderr so far, a bounded wait for a stderr
 * line, signals by PID, and a stop that is registered with the test (t.after)
 * so the process never outlives it. No side effects at import.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { TestContext } from 'node:test';
import { parseEventLine, type NodeInfo } from '../../cli/testnet-events.js';

/** A role's `up` line. */
export type UpLine = { event: 'up' } & NodeInfo;
import { CLI_MAIN } from './testnet-process.js';

const STOP_TIMEOUT_MS = 8_000;

export interface RoleProcess {
  readonly child: ChildProcessWithoutNullStreams;
  readonly pid: number;
  /** Resolves with the role's `up` line; rejects if it exits first or after `timeoutMs`. */
  up(timeoutMs: number): Promise<UpLine>;
  /** Stderr so far. */
  stderr(): string;
  /** Resolves once stderr (from `from` on) matches `pattern`; rejects after `timeoutMs` with the stderr. */
  waitStderr(pattern: RegExp, timeoutMs: number, from?: number): Promise<RegExpMatchArray>;
  readonly alive: boolean;
  signal(sig: NodeJS.Signals): void;
  stop(): Promise<void>;
}

export function startRoleProcess(t: Pick<TestContext, 'after'>, args: string[], env: NodeJS.ProcessEnv = process.env): RoleProcess {
  const child = spawn(process.execPath, [CLI_MAIN, ...args], { stdio: ['pipe', 'pipe', 'pipe'], env });
  child.stdin.on('error', () => {});
  let stderr = '';
  const waiters = new Set<() => void>();
  child.stderr.setEncoding('utf8').on('data', (s: string) => {
    stderr += s;
    for (const w of waiters) w();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let upLine: UpLine | undefined;
  const lines = createInterface({ input: child.stdout, crlfDelay: Infinity });
  lines.on('line', (line) => {
    const event = parseEventLine(line);
    if (event?.event === 'up') {
      upLine = event;
      for (const w of waiters) w();
    }
  });
  child.once('exit', () => {
    for (const w of waiters) w();
  });
  const alive = () => child.exitCode === null && child.signalCode === null;

  const until = <T>(test: () => T | undefined, timeoutMs: number, what: string): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const check = () => {
        const value = test();
        if (value !== undefined) {
          finish();
          resolve(value);
        } else if (!alive()) {
          finish();
          reject(new Error(`allium ${args[0]} exited (${child.signalCode ?? child.exitCode}) before ${what}\nstderr:\n${stderr}`));
        }
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`no ${what} within ${timeoutMs} ms\nstderr:\n${stderr}`));
      }, timeoutMs);
      const finish = () => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      waiters.add(check);
      check();
    });

  let stopped: Promise<void> | undefined;
  const stop = () =>
    (stopped ??= (async () => {
      if (alive()) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
        await exited;
        clearTimeout(timer);
      }
    })());
  t.after(stop);

  return {
    child,
    pid: child.pid!,
    up: (timeoutMs) => until(() => upLine, timeoutMs, 'up line'),
    stderr: () => stderr,
    waitStderr: (pattern, timeoutMs, from = 0) => until(() => stderr.slice(from).match(pattern) ?? undefined, timeoutMs, `stderr matching ${pattern}`),
    get alive() {
      return alive();
    },
    signal(sig) {
      if (alive()) child.kill(sig);
    },
    stop,
  };
}
