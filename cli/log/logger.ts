/**
 * A node's log (pino): Tor's levels (debug, info, notice, warn, err), to
 * stderr or a file, one human-readable line per message by default
 * (`2026-11-30 14:02:33.123 [notice] Bootstrapped 100%`) or one JSON object
 * per line on request, with safe logging (./scrub.ts) on by default. Log
 * volume is small (one line per important event), so lines are written
 * synchronously and never lost on exit.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { pino, type Logger as PinoLogger } from 'pino';
import { publicForm, scrubAddresses } from './scrub.js';

export const LOG_LEVELS = ['debug', 'info', 'notice', 'warn', 'err'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
const LEVEL_VALUES: Record<LogLevel, number> = { debug: 20, info: 30, notice: 35, warn: 40, err: 50 };

/** Where and how the lines go (the part of LogSettings that SIGHUP can change). */
export type LogOutput = Pick<LogSettings, 'destination' | 'file' | 'format'>;

export interface LogSettings {
  level: LogLevel;
  /** 'stderr', or 'file' (then `file` is the path; created with mode 0600, appended to). */
  destination: 'stderr' | 'file';
  file?: string;
  format: 'text' | 'json';
  /** Scrub addresses other than the node's own (default on). */
  safe: boolean;
  /** Goes into JSON lines as `role`. */
  role: string;
}

export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  notice(message: string): void;
  warn(message: string): void;
  err(message: string): void;
  setLevel(level: LogLevel): void;
  setSafe(safe: boolean): void;
  /**
   * Write to another destination and/or in another format from the next line
   * on (SIGHUP). The new destination is opened first: if that throws (a file
   * that cannot be created), the old one stays. A file destination is opened
   * again even when it is the same path (after log rotation moved it).
   */
  setOutput(output: LogOutput): void;
  /** An address of this node (a listener, an authority) that safe logging leaves readable. */
  addPublic(address: string): void;
  /** The last RECENT_LINES lines at notice or above, always address-scrubbed (for the dashboard), oldest first. */
  recent(): RecentLine[];
  /** Flush and release the file. */
  close(): void;
}

/** A recent log line. */
export interface RecentLine {
  /** ms since the epoch. */
  time: number;
  level: LogLevel;
  message: string;
}

export const RECENT_LINES = 30;

/** `2026-11-30 14:02:33.123` in UTC. */
function stamp(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').replace('Z', '');
}

/** The stream pino writes to: JSON lines as they are, or turned into text lines. */
function destination(settings: LogOutput): { write(line: string): void; flushSync?(): void; end?(): void } {
  let dest: ReturnType<typeof pino.destination>;
  if (settings.destination === 'file') {
    if (settings.file === undefined) throw new Error('log.file is required when log.destination is "file"');
    mkdirSync(dirname(settings.file), { recursive: true, mode: 0o700 });
    dest = pino.destination({ dest: settings.file, sync: true, append: true, mode: 0o600 });
  } else {
    dest = pino.destination({ dest: 2, sync: true });
  }
  if (settings.format === 'json') return dest;
  return {
    write(line: string) {
      const o = JSON.parse(line) as { time: number; level: string; msg: string };
      dest.write(`${stamp(o.time)} [${o.level}] ${o.msg}\n`);
    },
    flushSync: () => dest.flushSync(),
    end: () => dest.end(),
  };
}

export function createLogger(settings: LogSettings): Logger {
  const publicAddresses = new Set<string>();
  let safe = settings.safe;
  let output: LogOutput = { destination: settings.destination, format: settings.format, ...(settings.file !== undefined ? { file: settings.file } : {}) };
  let out = destination(output);
  const release = (o: LogOutput, stream: typeof out) => {
    stream.flushSync?.();
    if (o.destination === 'file') stream.end?.();
  };
  const log: PinoLogger<LogLevel, true> = pino(
    {
      level: settings.level,
      customLevels: LEVEL_VALUES,
      useOnlyCustomLevels: true,
      base: { role: settings.role },
      formatters: { level: (label) => ({ level: label }) },
    },
    // Through `out` as it is at each line, so setOutput can swap it.
    { write: (line: string) => out.write(line) } as unknown as NodeJS.WritableStream,
  );
  const recent: RecentLine[] = [];
  const write = (level: LogLevel) => (message: string) => {
    const scrubbed = scrubAddresses(message, publicAddresses);
    (log as unknown as Record<LogLevel, (m: string) => void>)[level](safe ? scrubbed : message);
    if (LEVEL_VALUES[level] >= LEVEL_VALUES.notice) {
      recent.push({ time: Date.now(), level, message: scrubbed });
      if (recent.length > RECENT_LINES) recent.shift();
    }
  };
  return {
    debug: write('debug'),
    info: write('info'),
    notice: write('notice'),
    warn: write('warn'),
    err: write('err'),
    setLevel(level) {
      log.level = level;
    },
    setSafe(value) {
      safe = value;
    },
    setOutput(next) {
      const opened = destination(next);
      const [old, oldOutput] = [out, output];
      out = opened;
      output = { destination: next.destination, format: next.format, ...(next.file !== undefined ? { file: next.file } : {}) };
      release(oldOutput, old);
    },
    addPublic(address) {
      publicAddresses.add(publicForm(address));
    },
    recent: () => [...recent],
    close() {
      release(output, out);
    },
  };
}

let processLogger: Logger | undefined;

/** The logger of this process (set by the role command once its configuration is read), if any. */
export function currentLogger(): Logger | undefined {
  return processLogger;
}

/** Make `logger` the process's logger: lifecycle's say() writes through it from now on. */
export function setProcessLogger(logger: Logger | undefined): void {
  processLogger = logger;
}
