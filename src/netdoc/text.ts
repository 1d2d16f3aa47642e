/**
 * Shared pieces of the line-oriented document grammar (docs/protocol.md §8.1):
 * strict unpadded base64, UTC times with whole seconds, dotted-quad IPv4,
 * ports and integers, the framing every document type shares (`openDocument`)
 * and a line cursor that enforces keyword order and the unknown-line rule.
 */
import { DocumentError } from '../errors.js';
import { formatIPv6, isIPv4Mapped, parseIPv4, parseIPv6 } from '../net/address.js';

export function malformedDoc(what: string, message: string): DocumentError {
  return new DocumentError('ERR_MALFORMED', `${what}: ${message}`);
}

/** Standard alphabet, no padding. */
export function b64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64').replace(/=+$/, '');
}

/** Value of each base64 character (standard alphabet), -1 for anything else. */
const B64_VALUE = (() => {
  const table = new Int8Array(128).fill(-1);
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  for (let i = 0; i < alphabet.length; i++) table[alphabet.charCodeAt(i)] = i;
  return table;
})();

/**
 * Strict decode: only [A-Za-z0-9+/], no padding, canonical (the unused low
 * bits of the last character are zero, so re-encoding gives the same text),
 * exact length if given. One pass over the text, no intermediate strings.
 */
export function unb64(text: string, what: string, length?: number): Uint8Array {
  const n = text.length;
  if (n % 4 === 1) throw malformedDoc(what, 'bad base64');
  const size = Math.floor((n * 3) / 4);
  if (length !== undefined && size !== length) {
    for (let i = 0; i < n; i++) {
      const c = text.charCodeAt(i);
      if (c > 127 || B64_VALUE[c]! < 0) throw malformedDoc(what, 'bad base64');
    }
    throw malformedDoc(what, `expected ${length} bytes, got ${size}`);
  }
  const out = new Uint8Array(size);
  let acc = 0;
  let bits = 0;
  let o = 0;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    const v = c > 127 ? -1 : B64_VALUE[c]!;
    if (v < 0) throw malformedDoc(what, 'bad base64');
    acc = ((acc << 6) | v) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >>> bits) & 0xff;
    }
  }
  if ((acc & ((1 << bits) - 1)) !== 0) throw malformedDoc(what, 'non-canonical base64');
  return out;
}

/** 9999-12-31 23:59:59 UTC, the last time the grammar can write. */
const MAX_TIME_MS = 253402300799000;

/** `YYYY-MM-DD HH:MM:SS` in UTC; `ms` must be a whole second. */
export function formatTime(ms: number): string {
  if (!Number.isSafeInteger(ms) || ms % 1000 !== 0 || ms < 0 || ms > MAX_TIME_MS) {
    throw new RangeError(`time ${ms}: not a whole second in years 1970..9999`);
  }
  return new Date(ms).toISOString().replace('T', ' ').replace('.000Z', '');
}

export function parseTime(text: string, what: string): number {
  const m = /^([0-9]{4})-([0-9]{2})-([0-9]{2}) ([0-9]{2}):([0-9]{2}):([0-9]{2})$/.exec(text);
  if (m === null) throw malformedDoc(what, `bad time ${JSON.stringify(text.slice(0, 40))}`);
  const ms = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
  // Date.UTC rolls out-of-range fields over (9999-12-31 23:59:60 is year 10000), so bound ms before formatTime.
  if (!Number.isFinite(ms) || ms < 0 || ms > MAX_TIME_MS || formatTime(ms) !== text) throw malformedDoc(what, `invalid time ${JSON.stringify(text)}`);
  return ms;
}

/** Lexicographic byte order (shorter first on a common prefix). */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

export function isIPv4(text: string): boolean {
  return parseIPv4(text) !== null;
}

export function parseAddress(text: string, what: string): string {
  if (!isIPv4(text)) throw malformedDoc(what, `bad IPv4 address ${JSON.stringify(text.slice(0, 40))}`);
  return text;
}

export function parsePortNumber(text: string, what: string): number {
  if (!/^[1-9][0-9]{0,4}$/.test(text) || Number(text) > 65535) throw malformedDoc(what, `bad port ${JSON.stringify(text.slice(0, 10))}`);
  return Number(text);
}

/** Decimal, no leading zeros, 0 ≤ n ≤ max. */
export function parseUint(text: string, max: number, what: string): number {
  if (!/^(?:0|[1-9][0-9]{0,15})$/.test(text)) throw malformedDoc(what, `bad integer ${JSON.stringify(text.slice(0, 20))}`);
  const n = Number(text);
  if (n > max) throw malformedDoc(what, `integer ${n} exceeds ${max}`);
  return n;
}

export const NICKNAME = /^[A-Za-z0-9]{1,19}$/;

export function parseNickname(text: string, what: string): string {
  if (!NICKNAME.test(text)) throw malformedDoc(what, `bad nickname ${JSON.stringify(text.slice(0, 40))}`);
  return text;
}

/**
 * Splits a document into lines after the checks every document shares:
 * size limit, printable ASCII plus LF only (so no CR, tabs or NUL), ends with
 * LF, no empty lines, each line at most `maxLine` characters.
 * Returns the lines and each line's start offset.
 */
export function splitDocument(text: string, what: string, maxBytes: number, maxLine: number): { lines: string[]; offsets: number[] } {
  if (typeof text !== 'string') throw malformedDoc(what, 'not a string');
  if (text.length > maxBytes) throw new DocumentError('ERR_OVERSIZED', `${what}: larger than ${maxBytes} bytes`);
  if (!/^[\x20-\x7e\n]*$/.test(text)) throw malformedDoc(what, 'characters other than printable ASCII and LF');
  if (!text.endsWith('\n')) throw malformedDoc(what, 'does not end with LF (truncated?)');
  const lines = text.slice(0, -1).split('\n');
  const offsets: number[] = [];
  let at = 0;
  for (const line of lines) {
    if (line.length === 0) throw malformedDoc(what, 'empty line');
    if (line.length > maxLine) throw new DocumentError('ERR_OVERSIZED', `${what}: line longer than ${maxLine}`);
    offsets.push(at);
    at += line.length + 1;
  }
  return { lines, offsets };
}

/** How one document type is framed (§8.1): its first line, its limits and its known keywords. */
export interface DocumentType {
  /** Name used in error messages ("relay descriptor", "consensus"). */
  readonly what: string;
  /** The exact first line, e.g. `@type allium-consensus 1`. */
  readonly typeLine: string;
  readonly maxBytes: number;
  readonly maxLine: number;
  /** Every keyword the type lists; any other keyword is an unknown line. */
  readonly keywords: ReadonlySet<string>;
}

/**
 * Splits `text` as `splitDocument` does, checks its first line, and returns a
 * cursor on the second line. Throws DocumentError ERR_MALFORMED / ERR_OVERSIZED.
 */
export function openDocument(text: string, type: DocumentType): LineCursor {
  const { lines, offsets } = splitDocument(text, type.what, type.maxBytes, type.maxLine);
  const c = new LineCursor(lines, [...offsets, text.length], type.what, type.keywords);
  if (c.takeLine() !== type.typeLine) throw malformedDoc(type.what, `first line must be "${type.typeLine}"`);
  return c;
}

/**
 * Grammar of a keyword that a parser does not know (§8.1): an ASCII letter or
 * digit, then up to 63 letters, digits or `-`. `@` annotations and object
 * lines (`-----BEGIN ...`) are not keywords, so they never count as unknown.
 */
const UNKNOWN_KEYWORD = /^[A-Za-z0-9][A-Za-z0-9-]{0,63}$/;

function keywordOf(line: string): string {
  const sp = line.indexOf(' ');
  return sp < 0 ? line : line.slice(0, sp);
}

/**
 * Walks a document's lines in order (§8.1).
 *
 * `known` is every keyword of the document type, wherever the grammar puts
 * it. A line whose keyword is not in `known` is an **unknown line**: while
 * unknown lines are allowed, `take`, `takeRest` and `peekKeyword` skip them
 * first (after checking that each is a well-formed line); `takeLine` and
 * `peekRawKeyword` never skip, and after `forbidUnknown()` nothing is skipped,
 * so an unknown line there fails the next `take`. A known keyword is never
 * skipped: out of its place it is malformed.
 */
export class LineCursor {
  readonly #lines: string[];
  readonly #offsets: readonly number[];
  readonly #what: string;
  readonly #known: ReadonlySet<string>;
  #unknownAllowed = true;
  #at = 0;

  /** `offsets[i]` is where line i starts in the text; one more entry holds the text's length. */
  constructor(lines: string[], offsets: readonly number[], what: string, known: ReadonlySet<string>) {
    this.#lines = lines;
    this.#offsets = offsets;
    this.#what = what;
    this.#known = known;
  }

  /** Index of the next line (0-based). */
  get index(): number {
    return this.#at;
  }

  /** Where the next line starts in the text: the length of everything taken so far. */
  get offset(): number {
    return this.#offsets[this.#at]!;
  }

  /** No lines left (unknown lines are not skipped here). */
  get done(): boolean {
    return this.#at >= this.#lines.length;
  }

  /** From now on unknown lines are malformed (signature sections, §8.1). */
  forbidUnknown(): void {
    this.#unknownAllowed = false;
  }

  /**
   * Skips unknown lines at the cursor, if they are allowed here.
   * Throws DocumentError ERR_MALFORMED if an unknown line is not a well-formed line.
   */
  skipUnknown(): void {
    if (!this.#unknownAllowed) return;
    for (let line = this.#lines[this.#at]; line !== undefined; line = this.#lines[++this.#at]) {
      const keyword = keywordOf(line);
      if (this.#known.has(keyword)) return;
      if (!UNKNOWN_KEYWORD.test(keyword)) {
        throw malformedDoc(this.#what, `line ${this.#at + 1}: bad keyword ${JSON.stringify(keyword.slice(0, 40))}`);
      }
      if (line.endsWith(' ') || line.includes('  ')) throw malformedDoc(this.#what, `line ${this.#at + 1}: stray whitespace`);
    }
  }

  /** The next known keyword after skipping unknown lines, or undefined at the end. */
  peekKeyword(): string | undefined {
    this.skipUnknown();
    return this.peekRawKeyword();
  }

  /** The next line's keyword without skipping anything, or undefined at the end. */
  peekRawKeyword(): string | undefined {
    const line = this.#lines[this.#at];
    return line === undefined ? undefined : keywordOf(line);
  }

  /**
   * Skips unknown lines, then takes the next line, which must start with
   * `keyword`; returns its arguments split on single spaces.
   */
  take(keyword: string, argCount?: number): string[] {
    this.skipUnknown();
    const line = this.#lines[this.#at];
    if (line === undefined) throw malformedDoc(this.#what, `missing "${keyword}" (truncated?)`);
    const args = line.split(' ');
    const first = args.shift()!;
    if (first !== keyword) {
      throw malformedDoc(this.#what, `line ${this.#at + 1}: expected "${keyword}", found ${JSON.stringify(first.slice(0, 40))}`);
    }
    for (const a of args) if (a.length === 0) throw malformedDoc(this.#what, `line ${this.#at + 1}: stray whitespace`);
    if (argCount !== undefined && args.length !== argCount) {
      throw malformedDoc(this.#what, `line ${this.#at + 1}: "${keyword}" takes ${argCount} argument(s), found ${args.length}`);
    }
    this.#at++;
    return args;
  }

  /** Skips unknown lines, then takes the next line verbatim with its keyword removed (free text such as platform). */
  takeRest(keyword: string): string {
    this.skipUnknown();
    const line = this.#lines[this.#at];
    if (line === undefined) throw malformedDoc(this.#what, `missing "${keyword}" (truncated?)`);
    if (!line.startsWith(`${keyword} `)) {
      throw malformedDoc(this.#what, `line ${this.#at + 1}: expected "${keyword}"`);
    }
    this.#at++;
    return line.slice(keyword.length + 1);
  }

  /** The next raw line; nothing is skipped. */
  takeLine(): string {
    const line = this.#lines[this.#at];
    if (line === undefined) throw malformedDoc(this.#what, 'truncated');
    this.#at++;
    return line;
  }
}

/** A relay's IPv6 OR address (§8.2 `or-address`, §8.4 `a`): canonical RFC 5952 text without brackets, port 1..65535. */
export interface OrAddress6 {
  address: string;
  port: number;
}

/** Whether `text` is the canonical form of a usable IPv6 address: not `::`, not IPv4-mapped. */
export function isUsableIPv6(text: string): boolean {
  const bytes = parseIPv6(text);
  return bytes !== null && formatIPv6(bytes) === text && !isIPv4Mapped(bytes) && bytes.some((b) => b !== 0);
}

/** `[<IPv6>]:<port>` → OrAddress6. Throws DocumentError ERR_MALFORMED unless the address is canonical and usable (isUsableIPv6). */
export function parseOrAddress6(text: string, what: string): OrAddress6 {
  const m = /^\[([0-9a-f:.]{2,45})\]:([0-9]{1,5})$/.exec(text);
  if (m === null || !isUsableIPv6(m[1]!)) throw malformedDoc(what, `bad IPv6 OR address ${JSON.stringify(text.slice(0, 60))} (want [canonical IPv6]:port)`);
  return { address: m[1]!, port: parsePortNumber(m[2]!, what) };
}

/** OrAddress6 → `[<IPv6>]:<port>`, checked as parseOrAddress6 checks it. */
export function formatOrAddress6(a: OrAddress6, what: string): string {
  const text = `[${a.address}]:${a.port}`;
  parseOrAddress6(text, what);
  return text;
}
