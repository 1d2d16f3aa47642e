/**
 * One relay entry of a consensus or a vote (docs/protocol.md §8.4, §8.7):
 * the block of lines an `r` line starts.
 *
 *   r <nickname> <base64 identity> <IPv4> <orport>
 *   [a [<IPv6>]:<orport>]              (IPv6 OR address: §8.4 method ≥ 4, §8.7)
 *   k <base64 link-key> <base64 ntor-onion-key>
 *   d <base64 descriptor digest>
 *   s [flags]
 *   w bandwidth=<n> [<key>=<n> ...]
 *   p <exit summary>
 *   [f <base64 identity> ...]          (family: §8.4 method ≥ 3, §8.7)
 *
 * The consensus and the vote share this grammar; they differ only in the
 * extra `w` items they write (`Unmeasured=1` in a consensus, `Measured=<n>`
 * in a vote).
 */
import { formatSummary, parseSummary, type ExitSummary } from './exit-policy.js';
import { MAX_BANDWIDTH, MAX_FAMILY } from './descriptor.js';
import { formatOrAddress6, parseOrAddress6, type OrAddress6 } from './text.js';
import { b64, compareBytes, malformedDoc, parseAddress, parseNickname, parsePortNumber, parseUint, unb64, type LineCursor } from './text.js';

export interface ConsensusRelay {
  nickname: string;
  identity: Uint8Array;
  address: string;
  orPort: number;
  linkKey: Uint8Array;
  ntorOnionKey: Uint8Array;
  descriptorDigest: Uint8Array;
  /** Sorted (ASCII), distinct keywords; CONSENSUS_FLAGS are the ones Allium assigns, others are kept and ignored. */
  flags: string[];
  /** Bytes per second: the consensus weight (§9.6), or in a vote the relay's advertised bandwidth. */
  bandwidth: number;
  /** Consensus only: fewer than a majority of the voters measured this relay, so `bandwidth` is the advertised median (§9.6). */
  unmeasured?: boolean;
  exitSummary: ExitSummary;
  /**
   * The `f` line (§8.4, §8.7): identities (32 bytes each, ascending, distinct,
   * not the relay's own, 1..MAX_FAMILY). In a vote: the family the relay's
   * descriptor declares. In a consensus (method ≥ 3): only the members that
   * are listed too and declare this relay back (a mutual family). Absent or
   * empty: no line.
   */
  family?: readonly Uint8Array[];
  /** The `a` line (§8.4 method ≥ 4, §8.7): the relay's IPv6 OR address, from its descriptor's `or-address`. */
  orAddress6?: OrAddress6;
}

/** A flag is a keyword (§8.1); flags this code does not know are kept and mean nothing to it. */
const FLAG = /^[A-Za-z0-9][A-Za-z0-9-]{0,63}$/;
/** An extra `w` item: keyword `=` 1-10 digits. */
const W_ITEM = /^([A-Za-z0-9][A-Za-z0-9-]{0,63})=(\d{1,10})$/;

/** The flags authorities assign (§9.4): known good, so the grammar check can skip them. */
const ASSIGNED_FLAGS = new Set(['BadExit', 'Exit', 'Fast', 'Guard', 'HSDir', 'Running', 'Stable', 'Valid']);

/** Flags must be keywords in strictly ascending ASCII order; unknown ones are allowed so new flags can be added (§8.4). */
export function checkFlags(flags: readonly string[], what: string): void {
  let last = '';
  for (const f of flags) {
    if (!ASSIGNED_FLAGS.has(f) && !FLAG.test(f)) throw malformedDoc(what, `bad flag ${JSON.stringify(f.slice(0, 20))}`);
    if (last !== '' && f <= last) throw malformedDoc(what, 'flags not sorted or repeated');
    last = f;
  }
}

function checkKey(value: Uint8Array, len: number, name: string, what: string): void {
  if (!(value instanceof Uint8Array) || value.length !== len) throw malformedDoc(what, `${name} must be ${len} bytes`);
}

/** Family members must be 1..MAX_FAMILY 32-byte identities, strictly ascending, none the relay's own. */
function checkEntryFamily(family: readonly Uint8Array[], self: Uint8Array, what: string): void {
  if (family.length < 1 || family.length > MAX_FAMILY) throw malformedDoc(what, `f lists 1..${MAX_FAMILY} identities`);
  family.forEach((id, i) => {
    checkKey(id, 32, 'family member', what);
    if (compareBytes(id, self) === 0) throw malformedDoc(what, 'f lists the relay itself');
    if (i > 0 && compareBytes(family[i - 1]!, id) >= 0) throw malformedDoc(what, 'f members not sorted or repeated');
  });
}

/**
 * The lines of `r`'s entry (six, and `f` when it has a family), each field checked against the grammar;
 * `wExtras` are appended to the `w` line as `key=value` (keys in strictly ascending ASCII order).
 * Throws DocumentError ERR_MALFORMED.
 */
export function relayEntryLines(r: ConsensusRelay, what: string, wExtras: readonly (readonly [string, number])[] = []): string[] {
  parseNickname(r.nickname, what);
  checkKey(r.identity, 32, 'relay identity', what);
  checkKey(r.linkKey, 32, 'link key', what);
  checkKey(r.ntorOnionKey, 32, 'ntor key', what);
  checkKey(r.descriptorDigest, 32, 'descriptor digest', what);
  parseAddress(r.address, what);
  parsePortNumber(String(r.orPort), what);
  parseUint(String(r.bandwidth), MAX_BANDWIDTH, what);
  checkFlags(r.flags, what);
  let w = `w bandwidth=${r.bandwidth}`;
  let last = '';
  for (const [key, value] of wExtras) {
    const item = `${key}=${value}`;
    if (!W_ITEM.test(item)) throw malformedDoc(what, `bad w item ${JSON.stringify(item.slice(0, 20))}`);
    if (last !== '' && key <= last) throw malformedDoc(what, 'w items not sorted or repeated');
    last = key;
    w += ` ${item}`;
  }
  const summary = formatSummary(r.exitSummary);
  parseSummary(summary);
  return [
    `r ${r.nickname} ${b64(r.identity)} ${r.address} ${r.orPort}`,
    ...(r.orAddress6 !== undefined ? [`a ${formatOrAddress6(r.orAddress6, what)}`] : []),
    `k ${b64(r.linkKey)} ${b64(r.ntorOnionKey)}`,
    `d ${b64(r.descriptorDigest)}`,
    r.flags.length === 0 ? 's' : `s ${r.flags.join(' ')}`,
    w,
    `p ${summary}`,
    ...familyLine(r, what),
  ];
}

function familyLine(r: ConsensusRelay, what: string): string[] {
  if (r.family === undefined || r.family.length === 0) return [];
  checkEntryFamily(r.family, r.identity, what);
  return [`f ${r.family.map(b64).join(' ')}`];
}

/** A parsed entry and the extra items of its `w` line (keys as written; later items are for future use). */
export interface ParsedRelayEntry {
  relay: ConsensusRelay;
  wExtras: Map<string, number>;
}

/**
 * Takes one entry at the cursor (which must be at an `r` line), its `a`
 * and `f` lines included when it has them (the document must list `f` as known). Unknown
 * lines inside the entry are skipped by the cursor (§8.1). The `w` line must
 * start with `bandwidth=N`; its other items must be `key=N` in strictly ascending ASCII order of key (§8.4).
 * Throws DocumentError ERR_MALFORMED.
 */
export function takeRelayEntry(c: LineCursor, what: string): ParsedRelayEntry {
  const [nick, id, addr, port] = c.take('r', 4) as [string, string, string, string];
  const orAddress6 = c.peekKeyword() === 'a' ? parseOrAddress6(c.take('a', 1)[0]!, what) : undefined;
  const [lk, nk] = c.take('k', 2) as [string, string];
  const digest = c.take('d', 1)[0]!;
  const flags = c.take('s');
  checkFlags(flags, what);
  const [first, ...rest] = c.take('w');
  if (first === undefined || !first.startsWith('bandwidth=')) throw malformedDoc(what, 'w line must start with "bandwidth=N"');
  const bandwidth = parseUint(first.slice('bandwidth='.length), MAX_BANDWIDTH, what);
  const wExtras = new Map<string, number>();
  let last = '';
  for (const item of rest) {
    const m = W_ITEM.exec(item);
    if (m === null) throw malformedDoc(what, `bad w item ${JSON.stringify(item.slice(0, 20))}`);
    if (wExtras.has(m[1]!)) throw malformedDoc(what, `repeated w item ${m[1]}`);
    if (last !== '' && m[1]! <= last) throw malformedDoc(what, 'w items not sorted or repeated');
    last = m[1]!;
    wExtras.set(m[1]!, Number(m[2]));
  }
  const summaryText = c.takeRest('p');
  const identity = unb64(id, `${what} relay identity`, 32);
  let family: Uint8Array[] | undefined;
  if (c.peekKeyword() === 'f') {
    family = c.take('f').map((m) => unb64(m, `${what} family member`, 32));
    checkEntryFamily(family, identity, what);
  }
  const relay: ConsensusRelay = {
    nickname: parseNickname(nick, what),
    identity,
    address: parseAddress(addr, what),
    orPort: parsePortNumber(port, what),
    linkKey: unb64(lk, `${what} link key`, 32),
    ntorOnionKey: unb64(nk, `${what} ntor key`, 32),
    descriptorDigest: unb64(digest, `${what} descriptor digest`, 32),
    flags,
    bandwidth,
    exitSummary: parseSummary(summaryText),
  };
  if (family !== undefined) relay.family = family;
  if (orAddress6 !== undefined) relay.orAddress6 = orAddress6;
  return { relay, wExtras };
}
