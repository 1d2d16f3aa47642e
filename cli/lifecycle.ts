/**
 * Process lifecycle shared by the role commands: the one machine-readable
 * `up` line on stdout (./testnet-events.ts), human progress on stderr, and a
 * clean shutdown on SIGINT, SIGTERM or the end of stdin (when stdin is a
 * pipe, so a role spawned by `allium testnet` dies with its parent).
 */
import { fstatSync } from 'node:fs';
import { formatEventLine, type NodeInfo } from './testnet-events.js';
import { currentLogger, type LogLevel } from './log/logger.js';

/** Upper bound on a role's close() during shutdown. */
const CLOSE_TIMEOUT_MS = 5_000;

/** Human progress: through the node's log once it is configured (cli/log/), to stderr before that. */
export function say(role: string, message: string, level: LogLevel = 'notice'): void {
  const logger = currentLogger();
  if (logger !== undefined) logger[level](message);
  else process.stderr.write(`[allium ${role}] ${message}\n`);
}

/** The one machine-readable line a role prints once it is up (./testnet-events.ts). */
export function printUp(node: NodeInfo): void {
  process.stdout.write(`${formatEventLine({ event: 'up', ...node })}\n`);
}

/** True when fd 0 is a pipe or socket: its end means the parent is gone. */
export function stdinIsPipe(): boolean {
  try {
    const st = fstatSync(0);
    return st.isFIFO() || st.isSocket();
  } catch {
    return false;
  }
}

/**
 * Calls `onStop(reason)` once, on SIGINT, SIGTERM or (if stdin is a pipe) its
 * end. Returns a function that removes the listeners.
 */
export function onStopRequest(onStop: (reason: string) => void): () => void {
  let fired = false;
  const fire = (reason: string) => {
    if (fired) return;
    fired = true;
    onStop(reason);
  };
  const sigint = () => fire('SIGINT');
  const sigterm = () => fire('SIGTERM');
  const stdinEnd = () => fire('stdin closed');
  process.on('SIGINT', sigint);
  process.on('SIGTERM', sigterm);
  const watchStdin = stdinIsPipe();
  if (watchStdin) {
    process.stdin.on('end', stdinEnd);
    process.stdin.on('close', stdinEnd);
    process.stdin.on('error', stdinEnd);
    process.stdin.on('data', () => {});
    process.stdin.resume();
  }
  return () => {
    process.off('SIGINT', sigint);
    process.off('SIGTERM', sigterm);
    if (watchStdin) {
      process.stdin.off('end', stdinEnd);
      process.stdin.off('close', stdinEnd);
      process.stdin.off('error', stdinEnd);
      process.stdin.pause();
    }
  };
}

/**
 * Runs a role: starts it, lets `announce` report it (print the `up` line),
 * then keeps it until a stop request and closes it (bounded) before exiting:
 * 0 on a clean close, 1 on any failure. A stop request that arrives while the
 * role is still starting closes it as soon as it is up.
 */
export async function runRole<H extends { close(): Promise<void> }>(
  role: string,
  start: () => Promise<H>,
  announce: (handle: H) => Promise<void> | void,
): Promise<void> {
  let handle: H | undefined;
  let stopping = false;
  const stop = (code: number) => {
    if (stopping) return;
    stopping = true;
    if (handle === undefined) {
      // Still starting: close once start() returns, but never wait forever.
      setTimeout(() => process.exit(code), CLOSE_TIMEOUT_MS);
      return;
    }
    closeBounded(role, handle).then((ok) => process.exit(ok ? code : 1));
  };
  onStopRequest((reason) => {
    say(role, `${reason}: shutting down`);
    stop(0);
  });
  try {
    handle = await start();
  } catch (error) {
    say(role, `failed to start: ${describeError(error)}`, 'err');
    process.exit(1);
  }
  if (stopping) {
    const ok = await closeBounded(role, handle);
    process.exit(ok ? 0 : 1);
  }
  try {
    await announce(handle);
  } catch (error) {
    if (stopping) return;
    say(role, describeError(error), 'err');
    stop(1);
  }
}

async function closeBounded(role: string, handle: { close(): Promise<void> }): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), CLOSE_TIMEOUT_MS);
  });
  try {
    const outcome = await Promise.race([handle.close().then(() => 'closed' as const), timeout]);
    if (outcome === 'timeout') say(role, `close did not finish within ${CLOSE_TIMEOUT_MS} ms; exiting anyway`, 'warn');
    return outcome === 'closed';
  } catch (error) {
    say(role, `close failed: ${describeError(error)}`, 'warn');
    return false;
  } finally {
    clearTimeout(timer);
  }
}

/** A one-line description of an error, without a stack. */
export function describeError(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return typeof code === 'string' ? `${error.message} (${code})` : error.message;
  }
  return String(error);
}
