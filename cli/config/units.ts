/**
 * Sizes and durations as an operator writes them in the configuration file,
 * in the manner of torrc and arti.toml: `"1 MB"`, `"500 KB"`, `"10 minutes"`,
 * `"1.5 s"`, or a bare integer (bytes, milliseconds). Pure functions.
 */

/** Byte units, as torrc reads them: decimal (KB = 1000) and binary (KiB = 1024); bits (kbit) count /8. */
const BYTE_UNITS: ReadonlyMap<string, number> = new Map([
  ['b', 1], ['byte', 1], ['bytes', 1],
  ['kb', 1e3], ['kbyte', 1e3], ['kbytes', 1e3], ['kib', 1024],
  ['mb', 1e6], ['mbyte', 1e6], ['mbytes', 1e6], ['mib', 1024 ** 2],
  ['gb', 1e9], ['gbyte', 1e9], ['gbytes', 1e9], ['gib', 1024 ** 3],
  ['tb', 1e12], ['tib', 1024 ** 4],
  ['kbit', 1e3 / 8], ['kbits', 1e3 / 8], ['mbit', 1e6 / 8], ['mbits', 1e6 / 8], ['gbit', 1e9 / 8], ['gbits', 1e9 / 8],
]);

const DURATION_UNITS: ReadonlyMap<string, number> = new Map([
  ['ms', 1], ['msec', 1], ['millisecond', 1], ['milliseconds', 1],
  ['s', 1000], ['sec', 1000], ['second', 1000], ['seconds', 1000],
  ['min', 60_000], ['minute', 60_000], ['minutes', 60_000],
  ['h', 3_600_000], ['hour', 3_600_000], ['hours', 3_600_000],
  ['d', 86_400_000], ['day', 86_400_000], ['days', 86_400_000],
  ['week', 604_800_000], ['weeks', 604_800_000],
]);

const QUANTITY = /^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]+)\s*$/;

function quantity(value: unknown, units: ReadonlyMap<string, number>, what: string, bare: string): number {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 0) throw new Error(`${what} must be a non-negative integer (${bare}) or a string with a unit`);
    return value;
  }
  if (typeof value !== 'string') throw new Error(`${what} must be an integer (${bare}) or a string such as ${what === 'size' ? '"1 MB"' : '"10 minutes"'}`);
  const m = QUANTITY.exec(value);
  const unit = m === null ? undefined : units.get(m[2]!.toLowerCase());
  if (m === null || unit === undefined) {
    throw new Error(`not a ${what}: expected a number and one of the units ${[...units.keys()].join(', ')}`);
  }
  const n = Math.round(Number(m[1]) * unit);
  if (!Number.isSafeInteger(n)) throw new Error(`${what} is too large`);
  return n;
}

/** A byte count: an integer (bytes) or a string such as "1 MB", "512 KiB", "8 Mbit". Throws Error with the reason. */
export function parseBytes(value: unknown): number {
  return quantity(value, BYTE_UNITS, 'size', 'bytes');
}

/** A duration in ms: an integer (milliseconds) or a string such as "30 s", "10 minutes", "1 day". Throws Error with the reason. */
export function parseDuration(value: unknown): number {
  return quantity(value, DURATION_UNITS, 'duration', 'milliseconds');
}

/** Bytes as the shortest exact string parseBytes reads back ("1 MB", "1536 bytes"). */
export function formatBytes(n: number): string {
  for (const [unit, size] of [['TB', 1e12], ['GB', 1e9], ['MB', 1e6], ['KB', 1e3], ['GiB', 1024 ** 3], ['MiB', 1024 ** 2], ['KiB', 1024]] as const) {
    if (n >= size && n % size === 0) return `${n / size} ${unit}`;
  }
  return `${n} bytes`;
}

/** A duration as the shortest exact string parseDuration reads back ("10 minutes", "1500 ms"). */
export function formatDuration(ms: number): string {
  for (const [unit, size] of [['days', 86_400_000], ['hours', 3_600_000], ['minutes', 60_000], ['seconds', 1000]] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size} ${ms === size ? unit.slice(0, -1) : unit}`;
  }
  return `${ms} ms`;
}
