/**
 * Consensus diffs (docs/protocol.md §8.9): how to turn the consensus a
 * client holds into the next one by sending only what changed, in the
 * spirit of Tor's ed-style consensus diffs (proposal 140).
 *
 *   @type allium-consensus-diff 1
 *   from <base64 SHA-256 of the whole base consensus>
 *   to <base64 SHA-256 of the whole resulting consensus>
 *   <commands, each on the base's line numbers, in strictly decreasing order>
 *
 * Commands: `N,Md` / `Nd` delete lines N..M; `N,Mc` / `Nc` replace them with
 * the lines that follow, up to a line `.`; `Na` appends the lines that follow
 * (up to `.`) after line N (0: before the first). A consensus line never is
 * `.` (§8.1: a keyword starts with a letter or digit), so the terminator is
 * unambiguous. The result must hash to `to`; the client then verifies it as
 * any consensus (§8.4), so a diff needs no signature of its own.
 *
 * `makeConsensusDiff` uses the structure of the consensus (relay entries
 * sorted by identity) to diff in one pass: one command per entry of the
 * base that changed, with new entries folded into the command of the entry
 * they follow.
 */
import { utf8 } from '../bytes.js';
import { crypto } from '../crypto/crypto.js';
import { DocumentError } from '../errors.js';
import { MAX_CONSENSUS_BYTES } from './consensus.js';
import { b64, compareBytes, malformedDoc, unb64 } from './text.js';

export const CONSENSUS_DIFF_TYPE_LINE = '@type allium-consensus-diff 1';
/** A diff is never larger than the consensus it makes. */
export const MAX_CONSENSUS_DIFF_BYTES = MAX_CONSENSUS_BYTES;

const WHAT = 'consensus diff';

/** SHA-256 of a whole consensus (signatures included): what a diff names its base and result by. */
export function consensusDigest(text: string): Uint8Array {
  return crypto.sha256(utf8(text));
}

/** The lines of a document that ends with LF (no empty last element). */
function linesOf(text: string): string[] {
  const lines = text.split('\n');
  lines.pop();
  return lines;
}

interface Section {
  /** Identity bytes (relay entries) or undefined (header, tail). */
  id: Uint8Array | undefined;
  /** 0-based index of the first line, and the lines. */
  start: number;
  lines: string[];
}

/** The header, one section per relay entry (from its `r` line to the next), and the tail (from `bandwidth-weights` or `directory-footer`). */
function sections(lines: string[]): { header: Section; entries: Section[]; tail: Section } {
  let i = 0;
  while (i < lines.length && !lines[i]!.startsWith('r ')) {
    if (lines[i] === 'directory-footer' || lines[i]!.startsWith('bandwidth-weights ')) break;
    i++;
  }
  const header: Section = { id: undefined, start: 0, lines: lines.slice(0, i) };
  const entries: Section[] = [];
  while (i < lines.length && lines[i]!.startsWith('r ')) {
    const start = i;
    const id = unb64(lines[i]!.split(' ')[2] ?? '', `${WHAT} relay identity`, 32);
    i++;
    while (i < lines.length && !lines[i]!.startsWith('r ') && lines[i] !== 'directory-footer' && !lines[i]!.startsWith('bandwidth-weights ')) i++;
    entries.push({ id, start, lines: lines.slice(start, i) });
  }
  return { header, entries, tail: { id: undefined, start: i, lines: lines.slice(i) } };
}

const same = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && a.every((l, i) => l === b[i]);

/** One command for base lines [start, start + count) (1-based in the text), replaced by `lines`. */
function command(start0: number, count: number, lines: readonly string[]): string {
  if (count === 0) return [`${start0}a`, ...lines, '.'].join('\n');
  const range = count === 1 ? `${start0 + 1}` : `${start0 + 1},${start0 + count}`;
  if (lines.length === 0) return `${range}d`;
  return [`${range}c`, ...lines, '.'].join('\n');
}

/**
 * The diff from consensus `from` to consensus `to` (both whole texts, as
 * served). Throws DocumentError ERR_MALFORMED if either does not have the
 * consensus layout (relay entries sorted by identity).
 */
export function makeConsensusDiff(from: string, to: string): string {
  const a = sections(linesOf(from));
  const b = sections(linesOf(to));
  // Replacement text per base section: the header (-1), each entry, with new entries folded into the one they follow.
  const commands: string[] = [];
  const emit = (base: Section, lines: string[]) => {
    if (!same(base.lines, lines)) commands.push(command(base.start, base.lines.length, lines));
  };
  let j = 0;
  const inserted = (before: Uint8Array | undefined): string[] => {
    const out: string[] = [];
    while (j < b.entries.length && (before === undefined || compareBytes(b.entries[j]!.id!, before) < 0)) out.push(...b.entries[j++]!.lines);
    return out;
  };
  if (a.header.lines.length === 0) throw malformedDoc(WHAT, 'the base has no header');
  emit(a.header, [...b.header.lines, ...inserted(a.entries[0]?.id)]);
  for (let i = 0; i < a.entries.length; i++) {
    const base = a.entries[i]!;
    const next = a.entries[i + 1]?.id;
    let lines: string[] = [];
    if (j < b.entries.length && compareBytes(b.entries[j]!.id!, base.id!) === 0) lines = [...b.entries[j++]!.lines];
    lines.push(...inserted(next));
    emit(base, lines);
  }
  emit(a.tail, [...inserted(undefined), ...b.tail.lines]);
  if (j !== b.entries.length) throw malformedDoc(WHAT, 'relay entries not sorted by identity');
  const out = [CONSENSUS_DIFF_TYPE_LINE, `from ${b64(consensusDigest(from))}`, `to ${b64(consensusDigest(to))}`, ...commands.reverse()];
  return `${out.join('\n')}\n`;
}

const COMMAND = /^(\d{1,9})(?:,(\d{1,9}))?([acd])$/;

/** A parsed diff: its base and result digests and its commands (in the order given). */
export interface ConsensusDiff {
  from: Uint8Array;
  to: Uint8Array;
  commands: { start: number; end: number; op: 'a' | 'c' | 'd'; lines: string[] }[];
}

/**
 * Parses a diff (grammar only). Line numbers are positive without leading
 * zeros (`0a` is the one use of 0), `N,M` needs N < M, and the commands must
 * be in strictly decreasing order without overlap. Throws DocumentError
 * ERR_MALFORMED / ERR_OVERSIZED.
 */
export function parseConsensusDiff(text: string): ConsensusDiff {
  if (typeof text !== 'string') throw malformedDoc(WHAT, 'not a string');
  if (text.length > MAX_CONSENSUS_DIFF_BYTES) throw new DocumentError('ERR_OVERSIZED', `${WHAT}: larger than ${MAX_CONSENSUS_DIFF_BYTES} bytes`);
  if (!text.endsWith('\n')) throw malformedDoc(WHAT, 'does not end with LF (truncated?)');
  if (!/^[\x20-\x7e\n]*$/.test(text)) throw malformedDoc(WHAT, 'characters other than printable ASCII and LF');
  const lines = linesOf(text);
  if (lines[0] !== CONSENSUS_DIFF_TYPE_LINE) throw malformedDoc(WHAT, `first line must be "${CONSENSUS_DIFF_TYPE_LINE}"`);
  const fromLine = /^from (\S+)$/.exec(lines[1] ?? '');
  const toLine = /^to (\S+)$/.exec(lines[2] ?? '');
  if (fromLine === null || toLine === null) throw malformedDoc(WHAT, 'needs "from" and "to" lines');
  const diff: ConsensusDiff = { from: unb64(fromLine[1]!, `${WHAT} from`, 32), to: unb64(toLine[1]!, `${WHAT} to`, 32), commands: [] };
  let limit = Infinity;
  for (let i = 3; i < lines.length; ) {
    const m = COMMAND.exec(lines[i]!);
    if (m === null || /^0\d/.test(m[1]!) || (m[2] !== undefined && /^0/.test(m[2]))) throw malformedDoc(WHAT, `line ${i + 1}: not a command`);
    const op = m[3] as 'a' | 'c' | 'd';
    const start = Number(m[1]);
    const end = m[2] === undefined ? start : Number(m[2]);
    if (op === 'a' ? m[2] !== undefined : start < 1 || (m[2] !== undefined && end <= start)) throw malformedDoc(WHAT, `line ${i + 1}: bad range`);
    // Strictly decreasing, no overlap: this command ends before the previous one starts.
    const first = op === 'a' ? start + 1 : start;
    const last = op === 'a' ? start : end;
    if (last >= limit) throw malformedDoc(WHAT, `line ${i + 1}: commands not in decreasing order`);
    limit = first;
    i++;
    const body: string[] = [];
    if (op !== 'd') {
      while (i < lines.length && lines[i] !== '.') body.push(lines[i++]!);
      if (i >= lines.length) throw malformedDoc(WHAT, 'a command\'s lines do not end with "."');
      i++;
      if (body.length === 0) throw malformedDoc(WHAT, 'a command with no lines');
    }
    diff.commands.push({ start, end, op, lines: body });
  }
  return diff;
}

/**
 * Applies a diff to `base` (the whole text it names as `from`) and returns
 * the result, whose SHA-256 must be the diff's `to`. Throws DocumentError
 * ERR_MALFORMED (bad diff, wrong base, lines out of range, result that does
 * not hash to `to`) or ERR_OVERSIZED.
 */
export function applyConsensusDiff(base: string, diffText: string): string {
  const diff = parseConsensusDiff(diffText);
  if (compareBytes(consensusDigest(base), diff.from) !== 0) throw malformedDoc(WHAT, 'made for another base consensus');
  const lines = linesOf(base);
  // The commands are in decreasing order and do not overlap: walk them backwards, copying the
  // base lines between them (one pass, no splicing).
  const out: string[] = [];
  let at = 0; // next base line to copy (0-based)
  for (let k = diff.commands.length - 1; k >= 0; k--) {
    const c = diff.commands[k]!;
    const last = c.op === 'a' ? c.start : c.end;
    if (last > lines.length) throw malformedDoc(WHAT, `line ${last} is past the base's ${lines.length} lines`);
    const keepUntil = c.op === 'a' ? c.start : c.start - 1;
    for (; at < keepUntil; at++) out.push(lines[at]!);
    for (const l of c.lines) out.push(l);
    if (c.op !== 'a') at = c.end;
  }
  for (; at < lines.length; at++) out.push(lines[at]!);
  const text = `${out.join('\n')}\n`;
  if (text.length > MAX_CONSENSUS_BYTES) throw new DocumentError('ERR_OVERSIZED', `${WHAT}: result larger than ${MAX_CONSENSUS_BYTES} bytes`);
  if (compareBytes(consensusDigest(text), diff.to) !== 0) throw malformedDoc(WHAT, 'the result does not hash to the diff\'s "to" digest');
  return text;
}
