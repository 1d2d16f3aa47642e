/**
 * Where each key of a TOML file is: a line scanner that records the 1-based
 * line of every table header and `key = value`, so a validation error can
 * name the line of the key it is about. It follows table headers, dotted and
 * quoted keys, and skips the inside of multi-line strings and arrays; the
 * file has already been parsed by smol-toml, so it only has to be right on
 * valid TOML.
 */

/** A table header line: `[relay]`, `[[x]]`; group 1 is the dotted name. */
const HEADER = /^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$/;
/** A `key = value` line: group 1 is the (dotted, maybe quoted) key, group 2 the value text. */
const ASSIGNMENT = /^\s*((?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*'))*)\s*=(.*)$/;

/** The line of every key path ("relay", "relay.nickname") in `source`. */
export function keyLines(source: string): Map<string, number> {
  const lines = new Map<string, number>();
  let table: string[] = [];
  let depth = 0; // open [ of a multi-line array
  let array: { key: string; next: number } | null = null; // the multi-line array being read, and its next element's index
  let inString: '"""' | "'''" | null = null;
  const rows = source.split(/\r?\n/);
  for (let i = 0; i < rows.length; i++) {
    const line = rows[i]!;
    if (inString !== null) {
      if (line.includes(inString)) inString = null;
      continue;
    }
    if (depth > 0) {
      if (array !== null && depth === 1) array.next = recordElements(lines, array.key, array.next, line, i + 1);
      depth += bracketBalance(line);
      if (depth <= 0) array = null;
      continue;
    }
    const header = HEADER.exec(line);
    if (header !== null) {
      table = splitDotted(header[1]!);
      for (let n = 1; n <= table.length; n++) {
        const key = table.slice(0, n).join('.');
        if (!lines.has(key)) lines.set(key, i + 1);
      }
      continue;
    }
    const assignment = ASSIGNMENT.exec(line);
    if (assignment === null) continue;
    const path = [...table, ...splitDotted(assignment[1]!)];
    for (let n = table.length + 1; n <= path.length; n++) {
      const key = path.slice(0, n).join('.');
      if (!lines.has(key)) lines.set(key, i + 1);
    }
    const value = assignment[2]!;
    const triple = /"""|'''/.exec(value);
    if (triple !== null && value.split(triple[0]).length === 2) inString = triple[0] as '"""' | "'''";
    else {
      depth = Math.max(0, bracketBalance(value));
      if (depth === 1 && /^\s*\[/.test(value)) {
        const key = path.join('.');
        array = { key, next: recordElements(lines, key, 0, value.replace(/^\s*\[/, ''), i + 1) };
      }
    }
  }
  return lines;
}

/** Record `key.N` → `lineNo` for each string element that starts on this line of an array (depth 1); returns the next index. */
function recordElements(lines: Map<string, number>, key: string, next: number, text: string, lineNo: number): number {
  const withoutComment = text.replace(/#[^"']*$/, '');
  const starts = withoutComment.match(/"(?:[^"\\]|\\.)*"|'[^']*'|[^\s,\[\]]+/g) ?? [];
  for (let n = 0; n < starts.length; n++) lines.set(`${key}.${next + n}`, lineNo);
  return next + starts.length;
}

/** The line of the deepest known prefix of `path` (e.g. an array element → its key), or undefined. */
export function lineOf(lines: ReadonlyMap<string, number>, path: readonly (string | number)[]): number | undefined {
  for (let n = path.length; n > 0; n--) {
    const line = lines.get(path.slice(0, n).join('.'));
    if (line !== undefined) return line;
  }
  return undefined;
}

function splitDotted(text: string): string[] {
  const parts: string[] = [];
  const re = /\s*(?:"([^"]*)"|'([^']*)'|([A-Za-z0-9_-]+))\s*(?:\.|$)/gy;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null && m[0] !== '') parts.push(m[1] ?? m[2] ?? m[3]!);
  return parts;
}

/** Open minus closed square brackets outside strings and comments. */
function bracketBalance(text: string): number {
  let balance = 0;
  let quote: string | null = null;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quote !== null) {
      if (c === '\\' && quote === '"') i++;
      else if (c === quote) quote = null;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '#') break;
    else if (c === '[') balance++;
    else if (c === ']') balance--;
  }
  return balance;
}

/**
 * The key path (`relay.nickname`) or table (`relay`) that 1-based `line` of
 * `source` defines, with the table it is in, and the line where the same
 * path was defined before; undefined when the line defines nothing. For
 * naming the key of smol-toml's "redefine" error, which gives only a line.
 */
export function definedOn(source: string, line: number): { key: string; before?: number } | undefined {
  const rows = source.split(/\r?\n/);
  const row = rows[line - 1];
  if (row === undefined) return undefined;
  let key: string;
  const header = HEADER.exec(row);
  if (header !== null) key = splitDotted(header[1]!).join('.');
  else {
    const assignment = ASSIGNMENT.exec(row);
    if (assignment === null) return undefined;
    let table: string[] = [];
    for (let i = line - 2; i >= 0; i--) {
      const above = HEADER.exec(rows[i]!);
      if (above !== null) {
        table = splitDotted(above[1]!);
        break;
      }
    }
    key = [...table, ...splitDotted(assignment[1]!)].join('.');
  }
  const before = keyLines(rows.slice(0, line - 1).join('\n')).get(key);
  return before !== undefined ? { key, before } : { key };
}
