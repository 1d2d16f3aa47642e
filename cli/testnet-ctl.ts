/**
 * Poking a running testnet (docs/testnet.md): one command per line, e.g.
 * `kill relay3`, either on the testnet's stdin (when it is a pipe, or the
 * terminal while the testnet runs in the foreground) or through its control
 * socket `<data dir>/ctl.sock` (a Unix socket inside the 0700 data
 * directory), which `allium testnet ctl kill relay3` uses.
 *
 * Socket protocol: the client sends one command line (at most
 * MAX_COMMAND_BYTES, within REQUEST_TIMEOUT_MS); the testnet answers with
 * zero or more lines and a last line `ok …` or `error …`, then closes.
 * Anything else (an over-long line, no line in time, binary junk) gets an
 * `error` line and a close; the testnet keeps running.
 */
import { existsSync, fstatSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { CommandResult } from './node-supervisor.js';

export const CTL_SOCKET = 'ctl.sock';
export const MAX_COMMAND_BYTES = 256;
export const REQUEST_TIMEOUT_MS = 5_000;
const MAX_CTL_CONNECTIONS = 16;
/** Longest Unix socket path Linux accepts (sun_path is 108 bytes with the NUL). */
const MAX_SOCKET_PATH = 107;

/** Runs one command (verb and optional nickname). */
export type CtlHandler = (verb: string, nickname: string | undefined) => Promise<CommandResult>;

/** `verb [nickname]` → its parts, or an error text. Verbs and nicknames are letters and digits. */
export function parseCtlCommand(line: string): { verb: string; nickname?: string } | { error: string } {
  const words = line.trim().split(/\s+/).filter((w) => w !== '');
  if (words.length === 0) return { error: 'empty command' };
  if (words.length > 2) return { error: 'expected: <command> [nickname]' };
  if (!words.every((w) => /^[A-Za-z0-9]{1,32}$/.test(w))) return { error: 'commands and nicknames are letters and digits' };
  return words.length === 2 ? { verb: words[0]!.toLowerCase(), nickname: words[1]! } : { verb: words[0]!.toLowerCase() };
}

async function runLine(line: string, handler: CtlHandler): Promise<CommandResult> {
  const parsed = parseCtlCommand(line);
  if ('error' in parsed) return { ok: false, lines: [parsed.error] };
  return handler(parsed.verb, parsed.nickname);
}

/** The answer text: result lines, the last prefixed `ok ` or `error `. */
export function formatResult(result: CommandResult): string {
  const lines = result.lines.length > 0 ? [...result.lines] : [''];
  const last = lines.pop()!;
  return [...lines, `${result.ok ? 'ok' : 'error'} ${last}`.trimEnd()].join('\n') + '\n';
}

export interface CtlServer {
  readonly path: string;
  close(): Promise<void>;
}

/** Listen on `<dataDir>/ctl.sock`. Rejects when the socket cannot be made (path too long, in use). */
export async function startCtlServer(dataDir: string, handler: CtlHandler): Promise<CtlServer> {
  const path = join(dataDir, CTL_SOCKET);
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH) throw new Error(`control socket path too long (${path})`);
  if (existsSync(path)) {
    // A socket left by an earlier run: refuse to take over a live one.
    if (await socketAnswers(path)) throw new Error(`another testnet already listens on ${path}`);
    rmSync(path, { force: true });
  }
  const sockets = new Set<net.Socket>();
  // allowHalfOpen: a client that ends its side after the command still gets the answer.
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    socket.on('error', () => {});
    if (sockets.size >= MAX_CTL_CONNECTIONS) {
      socket.end(formatResult({ ok: false, lines: ['too many control connections'] }));
      return;
    }
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    serveOne(socket, handler);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', () => {});
  return {
    path,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(path, { force: true });
    },
  };
}

function serveOne(socket: net.Socket, handler: CtlHandler): void {
  let buffered = '';
  let done = false;
  const answer = (result: CommandResult) => {
    if (socket.destroyed) return;
    socket.end(formatResult(result));
    // A peer that never closes its side does not keep a connection slot.
    setTimeout(() => socket.destroy(), 2_000).unref();
  };
  const timer = setTimeout(() => {
    if (done) return;
    done = true;
    answer({ ok: false, lines: ['no command line in time'] });
  }, REQUEST_TIMEOUT_MS);
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    if (done) return;
    buffered += chunk;
    const nl = buffered.indexOf('\n');
    if (nl < 0) {
      if (buffered.length > MAX_COMMAND_BYTES) {
        done = true;
        clearTimeout(timer);
        answer({ ok: false, lines: ['command line too long'] });
      }
      return;
    }
    done = true;
    clearTimeout(timer);
    const line = buffered.slice(0, nl);
    if (line.length > MAX_COMMAND_BYTES) return answer({ ok: false, lines: ['command line too long'] });
    void runLine(line, handler).then(answer);
  });
  socket.on('end', () => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    // A last line without a newline still counts.
    if (buffered.length > 0 && buffered.length <= MAX_COMMAND_BYTES) void runLine(buffered, handler).then(answer);
    else answer({ ok: false, lines: ['no command'] });
  });
  socket.once('close', () => clearTimeout(timer));
}

/**
 * Read commands from stdin, one per line, answering on stderr. Only when
 * stdin is a pipe or socket, or the terminal with the testnet in the
 * foreground (reading a terminal from the background would stop the testnet).
 * Returns a function that stops reading, or null when stdin is not used.
 */
export function readCtlStdin(handler: CtlHandler, write: (text: string) => void): (() => void) | null {
  if (!stdinUsable()) return null;
  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity, terminal: false });
  lines.on('line', (line) => {
    if (line.trim() === '') return;
    if (line.length > MAX_COMMAND_BYTES) {
      write(formatResult({ ok: false, lines: ['command line too long'] }));
      return;
    }
    void runLine(line, handler).then((result) => write(formatResult(result)));
  });
  return () => lines.close();
}

function stdinUsable(): boolean {
  if (process.stdin.isTTY === true) return inForeground();
  try {
    const st = fstatSync(0);
    return st.isFIFO() || st.isSocket();
  } catch {
    return false;
  }
}

/** Linux: whether this process's group is the terminal's foreground group (/proc/self/stat pgrp == tpgid). */
function inForeground(): boolean {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // After "pid (comm) ": state ppid pgrp session tty_nr tpgid …
    return fields[2] !== undefined && fields[2] === fields[5];
  } catch {
    return false;
  }
}

/** Whether something answers on the Unix socket at `path` (within 1 s). */
function socketAnswers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(path);
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(false);
    }, 1000);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => {
      clearTimeout(timer);
      resolve(false);
    });
  });
}

/**
 * Send one command to the testnet whose control socket is `path`; resolves
 * with its answer lines and whether the last said `ok`. Rejects when nothing
 * answers within `timeoutMs`.
 */
export function sendCtlCommand(path: string, command: string, timeoutMs = 120_000): Promise<{ ok: boolean; lines: string[] }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(path);
    let text = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer from ${path} within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      text += chunk;
      if (text.length > 1024 * 1024) socket.destroy(new Error('answer too long'));
    });
    socket.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    socket.once('close', () => {
      clearTimeout(timer);
      const lines = text.split('\n').filter((l) => l !== '');
      const last = lines.at(-1) ?? '';
      resolve({ ok: last.startsWith('ok'), lines });
    });
    socket.once('connect', () => socket.write(`${command}\n`));
  });
}

/**
 * The control socket of the one running testnet under the OS temp directory
 * (`allium-testnet-*` directories whose socket answers). Throws when there is
 * none or more than one.
 */
export async function findRunningTestnet(): Promise<string> {
  const base = tmpdir();
  let names: string[] = [];
  try {
    names = readdirSync(base).filter((n) => n.startsWith('allium-testnet-'));
  } catch {
    // no temp dir listing: nothing found
  }
  const live: string[] = [];
  for (const name of names) {
    const path = join(base, name, CTL_SOCKET);
    if (existsSync(path) && (await socketAnswers(path))) live.push(path);
  }
  if (live.length === 0) throw new Error(`no running testnet found under ${base}; pass --data-dir DIR (the testnet's data directory)`);
  if (live.length > 1) throw new Error(`several running testnets (${live.join(', ')}); pass --data-dir DIR`);
  return live[0]!;
}
