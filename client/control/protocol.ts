/**
 * The control protocol's framing (Tor's control-spec §2, docs/control-port.md):
 * a sans-IO parser that turns the controller's bytes into commands, and the
 * encoders for replies. No I/O, no state beyond the bytes of an incomplete
 * command.
 *
 * A command is one line `Keyword [SP arguments]` ending in CRLF (a bare LF
 * is accepted, as Tor does), or a multi-line command: `+Keyword [SP
 * arguments]` CRLF, data lines, and a line holding only `.`; leading dots in
 * data lines are unescaped. Bounded: MAX_LINE_BYTES per line and
 * MAX_COMMAND_BYTES per command; past either the parser reports an error and
 * the connection is closed.
 */

/** Longest line the controller may send (bytes, line ending excluded). */
export const MAX_LINE_BYTES = 64 * 1024;
/** Largest command, data lines included (bytes). */
export const MAX_COMMAND_BYTES = 1024 * 1024;

/** One command as received. */
export interface ControlCommand {
  /** The keyword as sent (compare case-insensitively). */
  keyword: string;
  /** The rest of the first line after one space, '' when there is none (Latin-1 text: one char per byte). */
  args: string;
  /** The data of a multi-line (`+`) command, dots unescaped, lines joined with LF; null for a one-line command. */
  data: string | null;
}

export type ParseResult = { kind: 'command'; command: ControlCommand } | { kind: 'more' } | { kind: 'error'; message: string };

export class ControlCommandParser {
  #buffer: Buffer = Buffer.alloc(0);
  /** The first line and data lines of a multi-line command being read. */
  #multi: { keyword: string; args: string; lines: string[]; bytes: number } | null = null;
  #failed = false;

  /** Add bytes from the controller. */
  push(bytes: Uint8Array): void {
    if (this.#failed) return;
    this.#buffer = this.#buffer.length === 0 ? Buffer.from(bytes) : Buffer.concat([this.#buffer, bytes]);
  }

  /** The next complete command, 'more' if none is complete yet, or an error (the parser then stays failed). */
  next(): ParseResult {
    if (this.#failed) return { kind: 'error', message: 'parser failed earlier' };
    for (;;) {
      const nl = this.#buffer.indexOf(0x0a);
      if (nl < 0) {
        if (this.#buffer.length > MAX_LINE_BYTES) return this.#fail('Line too long.');
        return { kind: 'more' };
      }
      let end = nl;
      if (end > 0 && this.#buffer[end - 1] === 0x0d) end--;
      if (end > MAX_LINE_BYTES) return this.#fail('Line too long.');
      const line = this.#buffer.toString('latin1', 0, end);
      this.#buffer = this.#buffer.subarray(nl + 1);
      if (this.#multi !== null) {
        if (line === '.') {
          const { keyword, args, lines } = this.#multi;
          this.#multi = null;
          return { kind: 'command', command: { keyword, args, data: lines.join('\n') } };
        }
        this.#multi.bytes += line.length + 1;
        if (this.#multi.bytes > MAX_COMMAND_BYTES) return this.#fail('Command too long.');
        this.#multi.lines.push(line.startsWith('.') ? line.slice(1) : line);
        continue;
      }
      const multi = line.startsWith('+');
      const text = multi ? line.slice(1) : line;
      const space = text.indexOf(' ');
      const keyword = space < 0 ? text : text.slice(0, space);
      const args = space < 0 ? '' : text.slice(space + 1);
      if (multi) {
        this.#multi = { keyword, args, lines: [], bytes: line.length };
        continue;
      }
      return { kind: 'command', command: { keyword, args, data: null } };
    }
  }

  #fail(message: string): ParseResult {
    this.#failed = true;
    this.#buffer = Buffer.alloc(0);
    this.#multi = null;
    return { kind: 'error', message };
  }
}

// ---------------------------------------------------------------- replies

/** One reply line: `code`, then ' ' (last line), '-' (more follow) or '+' (a data block follows). */
export interface ReplyLine {
  code: number;
  text: string;
  /** For a '+' line: the data block (lines joined with LF). */
  data?: string;
}

/**
 * Encode a reply of one or more lines: every line but the last is a
 * MidReplyLine ('-') or DataReplyLine ('+', when it has `data`; the data
 * is dot-escaped and ends with `.`), the last is an EndReplyLine (' ').
 * Lines end in CRLF; text must not contain CR or LF.
 */
export function encodeReply(lines: readonly ReplyLine[]): string {
  let out = '';
  lines.forEach((line, i) => {
    const last = i === lines.length - 1;
    if (line.data !== undefined && !last) {
      out += `${line.code}+${line.text}\r\n${dataBlock(line.data)}`;
    } else {
      out += `${line.code}${last ? ' ' : '-'}${line.text}\r\n`;
    }
  });
  return out;
}

/** A data block: each line dot-escaped, CRLF-terminated, then `.` CRLF. */
export function dataBlock(data: string): string {
  const lines = data === '' ? [] : data.replace(/\r?\n$/, '').split(/\r?\n/);
  return `${lines.map((l) => (l.startsWith('.') ? `.${l}` : l)).join('\r\n')}${lines.length > 0 ? '\r\n' : ''}.\r\n`;
}

/** A one-line reply: `code SP text CRLF`. */
export function reply(code: number, text: string): string {
  return encodeReply([{ code, text }]);
}

// ---------------------------------------------------------------- argument syntax

/** A QuotedString: `"` ... `"` with `\\` and `\"` escaped (control-spec §2.1). */
export function quote(text: string): string {
  return `"${text.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\r/g, '\\r').replace(/\n/g, '\\n')}"`;
}

/**
 * Split arguments into words: runs of non-space characters, or QuotedStrings
 * (unquoted, a backslash taking the next character literally). A word may be
 * `key=value` with a quoted value (`SUMMARY="a b"`): it stays one word,
 * with the quotes removed. Returns null for an unterminated quote.
 */
export function splitArguments(args: string): string[] | null {
  const words: string[] = [];
  let i = 0;
  while (i < args.length) {
    if (args[i] === ' ') {
      i++;
      continue;
    }
    let word = '';
    while (i < args.length && args[i] !== ' ') {
      if (args[i] === '"') {
        const q = readQuoted(args, i);
        if (q === null) return null;
        word += q.value;
        i = q.end;
      } else {
        word += args[i];
        i++;
      }
    }
    words.push(word);
  }
  return words;
}

/** The QuotedString starting at `start` (which is `"`): its value and the index after the closing quote, or null. */
export function readQuoted(text: string, start: number): { value: string; end: number } | null {
  let value = '';
  for (let i = start + 1; i < text.length; i++) {
    const c = text[i]!;
    if (c === '\\') {
      if (i + 1 >= text.length) return null;
      value += text[i + 1];
      i++;
    } else if (c === '"') {
      return { value, end: i + 1 };
    } else {
      value += c;
    }
  }
  return null;
}

/** Printable form of untrusted text for an error reply: at most 64 characters, anything but visible ASCII as `?`. */
export function printable(text: string): string {
  const clipped = text.length > 64 ? `${text.slice(0, 64)}...` : text;
  return clipped.replace(/[^\x20-\x7e]/g, '?').replace(/["\\]/g, '?');
}
