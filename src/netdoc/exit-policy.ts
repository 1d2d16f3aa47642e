/**
 * Exit policies (docs/protocol.md §8.3): ordered `accept`/`reject`
 * rules over address patterns and port ranges, first match wins, no match
 * rejects; and the port-only summary the consensus carries for clients.
 *
 * Everything here is pure: no I/O, no clock.
 */
import { DocumentError } from '../errors.js';
import { formatIp, parseIp, unmapIPv4, type IpAddress } from '../net/address.js';
import { isPrivateIp, parsePrefix, prefixContains, prefixIsLoopback, type IpPrefix } from '../net/prefix.js';

export type ExitAction = 'accept' | 'reject';

export type AddressPattern =
  | { readonly kind: 'any' }
  | { readonly kind: 'private' }
  /** An IPv4 or IPv6 prefix (src/net/prefix.ts); a single address is a full-length prefix. */
  | { readonly kind: 'prefix'; readonly prefix: IpPrefix };

export interface ExitRule {
  readonly action: ExitAction;
  readonly address: AddressPattern;
  /** Inclusive port range within 1..65535. */
  readonly portMin: number;
  readonly portMax: number;
}

export type ExitPolicy = readonly ExitRule[];

/** Port-only summary: the listed ports get `action`, every other port the opposite. */
export interface ExitSummary {
  readonly action: ExitAction;
  /** Sorted, disjoint, non-adjacent inclusive ranges within 1..65535; never empty. */
  readonly ranges: readonly (readonly [number, number])[];
}

export const MAX_EXIT_POLICY_RULES = 256;
export const MAX_PORT = 65535;

function bad(message: string): DocumentError {
  return new DocumentError('ERR_MALFORMED', `exit policy: ${message}`);
}

// ---------------------------------------------------------------------------
// Addresses (src/net/)

/** Whether `ip` (IPv4 or IPv6 text, src/net/address.ts) is in one of the `private` ranges. Text that is not an address counts as private. */
export function isPrivateAddress(ip: string): boolean {
  const parsed = parseIp(ip);
  return parsed === null ? true : isPrivateIp(parsed);
}

/** `ip` is already unmapped (an IPv4-mapped IPv6 address is its IPv4 address). */
function patternMatches(p: AddressPattern, ip: IpAddress): boolean {
  switch (p.kind) {
    case 'any':
      return true;
    case 'private':
      return isPrivateIp(ip);
    case 'prefix':
      return prefixContains(p.prefix, ip);
  }
}

/** Whether every address the pattern covers is loopback (127/8 or ::1). */
function patternIsLoopback(p: AddressPattern): boolean {
  return p.kind === 'prefix' && prefixIsLoopback(p.prefix);
}

// ---------------------------------------------------------------------------
// Rules

const PORT = /^(?:[1-9][0-9]{0,4})$/;

function parsePort(text: string): number {
  if (!PORT.test(text)) throw bad(`bad port ${JSON.stringify(text)}`);
  const n = Number(text);
  if (n > MAX_PORT) throw bad(`port ${n} out of range`);
  return n;
}

/** One rule: `accept|reject ADDR[/BITS]:PORT[-PORT]`, ADDR = `*`, `private`, IPv4, or `[IPv6]` (src/net/prefix.ts parsePrefix). */
export function parseExitRule(line: string): ExitRule {
  const m = /^(accept|reject) (\S+)$/.exec(line);
  if (m === null) throw bad(`bad rule ${JSON.stringify(line.slice(0, 80))}`);
  const action = m[1] as ExitAction;
  const spec = m[2]!;
  const colon = spec.lastIndexOf(':');
  if (colon < 0) throw bad(`rule without a port: ${JSON.stringify(spec.slice(0, 80))}`);
  const addrText = spec.slice(0, colon);
  const portText = spec.slice(colon + 1);

  let portMin: number;
  let portMax: number;
  if (portText === '*') {
    portMin = 1;
    portMax = MAX_PORT;
  } else {
    const dash = portText.indexOf('-');
    if (dash < 0) {
      portMin = portMax = parsePort(portText);
    } else {
      portMin = parsePort(portText.slice(0, dash));
      portMax = parsePort(portText.slice(dash + 1));
      if (portMax < portMin) throw bad(`empty port range ${portText}`);
    }
  }

  let address: AddressPattern;
  if (addrText === '*') {
    address = { kind: 'any' };
  } else if (addrText === 'private') {
    address = { kind: 'private' };
  } else {
    const prefix = parsePrefix(addrText, { ipv6: 'bracketed' });
    if (prefix === null) {
      throw bad(`bad address ${JSON.stringify(addrText.slice(0, 80))}: expected *, private, a.b.c.d[/bits] or [IPv6][/bits], no host bits set`);
    }
    address = { kind: 'prefix', prefix };
  }
  return { action, address, portMin, portMax };
}

export function formatExitRule(rule: ExitRule): string {
  let addr: string;
  switch (rule.address.kind) {
    case 'any':
      addr = '*';
      break;
    case 'private':
      addr = 'private';
      break;
    case 'prefix': {
      const { prefix } = rule.address;
      const text = formatIp(prefix);
      addr = (prefix.family === 6 ? `[${text}]` : text) + (prefix.bits === prefix.bytes.length * 8 ? '' : `/${prefix.bits}`);
      break;
    }
  }
  const ports =
    rule.portMin === 1 && rule.portMax === MAX_PORT
      ? '*'
      : rule.portMin === rule.portMax
        ? String(rule.portMin)
        : `${rule.portMin}-${rule.portMax}`;
  return `${rule.action} ${addr}:${ports}`;
}

/** Parses rule lines (one rule each, no surrounding whitespace). Throws DocumentError ERR_MALFORMED. */
export function parseExitPolicy(lines: readonly string[]): ExitPolicy {
  if (lines.length > MAX_EXIT_POLICY_RULES) throw new DocumentError('ERR_OVERSIZED', `exit policy: more than ${MAX_EXIT_POLICY_RULES} rules`);
  return Object.freeze(lines.map((l) => parseExitRule(l)));
}

/** Canonical rule lines; parseExitPolicy(formatExitPolicy(p)) equals p. */
export function formatExitPolicy(policy: ExitPolicy): string[] {
  return policy.map(formatExitRule);
}

/** Whether `ip:port` is allowed: the first matching rule decides, no match rejects, bad input rejects. */
export function exitPolicyAllows(policy: ExitPolicy, ip: string, port: number): boolean {
  if (!Number.isInteger(port) || port < 1 || port > MAX_PORT) return false;
  const parsed = parseIp(ip);
  if (parsed === null) return false;
  const destination = unmapIPv4(parsed);
  for (const rule of policy) {
    if (port < rule.portMin || port > rule.portMax) continue;
    if (patternMatches(rule.address, destination)) return rule.action === 'accept';
  }
  return false;
}

/**
 * Whether `ip` is allowed on at least one port: the first matching rule
 * decides each port, as in exitPolicyAllows. Bad input rejects. (An exit
 * answers a reverse lookup of a private address only if it would let a
 * stream reach that address at all, docs/protocol.md §6.4.)
 */
export function exitPolicyAllowsAddress(policy: ExitPolicy, ip: string): boolean {
  const parsed = parseIp(ip);
  if (parsed === null) return false;
  const destination = unmapIPv4(parsed);
  // Ports no matching rule has decided yet: sorted, disjoint inclusive ranges.
  let open: Array<[number, number]> = [[1, MAX_PORT]];
  for (const rule of policy) {
    if (open.length === 0) return false;
    if (!patternMatches(rule.address, destination)) continue;
    const covered = open.some(([lo, hi]) => rule.portMin <= hi && rule.portMax >= lo);
    if (covered && rule.action === 'accept') return true;
    open = open.flatMap(([lo, hi]): Array<[number, number]> => {
      if (rule.portMax < lo || rule.portMin > hi) return [[lo, hi]];
      const rest: Array<[number, number]> = [];
      if (lo < rule.portMin) rest.push([lo, rule.portMin - 1]);
      if (hi > rule.portMax) rest.push([rule.portMax + 1, hi]);
      return rest;
    });
  }
  return false;
}

/**
 * Whether some address could be allowed on `port` — all a client knows before
 * the exit resolves the name. An `accept` covering the port says yes; a
 * `reject *` covering it says no; narrower rejects are passed over.
 */
export function exitPolicyAllowsPort(policy: ExitPolicy, port: number): boolean {
  if (!Number.isInteger(port) || port < 1 || port > MAX_PORT) return false;
  for (const rule of policy) {
    if (port < rule.portMin || port > rule.portMax) continue;
    if (rule.action === 'accept') return true;
    if (rule.address.kind === 'any') return false;
  }
  return false;
}

// ---------------------------------------------------------------------------
// Summaries

export interface SummarizeOptions {
  /**
   * Testnet: an `accept` whose addresses are all loopback counts as accepting
   * the port (otherwise only `accept *` does).
   */
  readonly loopbackCounts?: boolean;
}

/**
 * The ports a client may expect the exit to allow for an ordinary public
 * address: walking the rules in order, each port is decided by the first
 * `accept *`/`reject *` covering it (with `loopbackCounts`, also by an accept
 * of loopback addresses); rules over narrower addresses are passed over; an
 * undecided port is rejected. Encoded as an accept list or a reject list,
 * whichever is shorter (accept on a tie). Linear in rules × ranges, not in ports.
 */
export function summarizeExitPolicy(policy: ExitPolicy, opts: SummarizeOptions = {}): ExitSummary {
  const merged = acceptedPorts(policy, opts);
  const rejected = portGaps(merged);
  const asAccept: ExitSummary = { action: 'accept', ranges: merged };
  const asReject: ExitSummary = { action: 'reject', ranges: rejected };
  if (merged.length === 0) return asReject;
  if (rejected.length === 0) return asAccept;
  return formatPortList(rejected).length < formatPortList(merged).length ? asReject : asAccept;
}

/**
 * The ports summarizeExitPolicy() finds allowed for an ordinary public
 * address, as sorted, disjoint, non-adjacent ranges.
 */
export function acceptedPorts(policy: ExitPolicy, opts: SummarizeOptions = {}): [number, number][] {
  let undecided: [number, number][] = [[1, MAX_PORT]];
  const accepted: [number, number][] = [];
  for (const rule of policy) {
    if (undecided.length === 0) break;
    let decides: ExitAction | undefined;
    if (rule.address.kind === 'any') decides = rule.action;
    else if (opts.loopbackCounts === true && rule.action === 'accept' && patternIsLoopback(rule.address)) decides = 'accept';
    if (decides === undefined) continue;
    const still: [number, number][] = [];
    for (const [a, b] of undecided) {
      const lo = Math.max(a, rule.portMin);
      const hi = Math.min(b, rule.portMax);
      if (lo > hi) {
        still.push([a, b]);
        continue;
      }
      if (decides === 'accept') accepted.push([lo, hi]);
      if (a < lo) still.push([a, lo - 1]);
      if (hi < b) still.push([hi + 1, b]);
    }
    undecided = still;
  }
  // Merge the accepted ranges.
  accepted.sort((x, y) => x[0] - y[0]);
  const merged: [number, number][] = [];
  for (const [a, b] of accepted) {
    const last = merged[merged.length - 1];
    if (last !== undefined && a <= last[1] + 1) last[1] = Math.max(last[1], b);
    else merged.push([a, b]);
  }
  return merged;
}

/** The ranges of 1–MAX_PORT not in sorted, disjoint `ranges`. */
function portGaps(ranges: readonly (readonly [number, number])[]): [number, number][] {
  const rejected: [number, number][] = [];
  let next = 1;
  for (const [a, b] of ranges) {
    if (a > next) rejected.push([next, a - 1]);
    next = b + 1;
  }
  if (next <= MAX_PORT) rejected.push([next, MAX_PORT]);
  return rejected;
}

function formatPortList(ranges: readonly (readonly [number, number])[]): string {
  return ranges.map(([a, b]) => (a === b ? String(a) : `${a}-${b}`)).join(',');
}

/** `accept 80,443,1000-2000` / `reject 1-65535`. */
export function formatSummary(summary: ExitSummary): string {
  return `${summary.action} ${formatPortList(summary.ranges)}`;
}

/** Strict inverse of formatSummary: sorted, disjoint, non-adjacent ranges, canonical numbers. */
export function parseSummary(text: string): ExitSummary {
  const m = /^(accept|reject) ([0-9,-]+)$/.exec(text);
  if (m === null) throw bad(`bad summary ${JSON.stringify(text.slice(0, 80))}`);
  const ranges: [number, number][] = [];
  let last = 0;
  for (const item of m[2]!.split(',')) {
    const dash = item.indexOf('-');
    let a: number;
    let b: number;
    if (dash < 0) a = b = parsePort(item);
    else {
      a = parsePort(item.slice(0, dash));
      b = parsePort(item.slice(dash + 1));
      if (b <= a) throw bad(`bad summary range ${item}`);
    }
    if (a <= last + 1 && ranges.length > 0) throw bad('summary ranges not sorted, disjoint and non-adjacent');
    ranges.push([a, b]);
    last = b;
  }
  return { action: m[1] as ExitAction, ranges };
}

export function summaryAllowsPort(summary: ExitSummary, port: number): boolean {
  if (!Number.isInteger(port) || port < 1 || port > MAX_PORT) return false;
  const listed = summary.ranges.some(([a, b]) => port >= a && port <= b);
  return summary.action === 'accept' ? listed : !listed;
}

/** True when the summary allows no port at all. */
export function summaryRejectsAll(summary: ExitSummary): boolean {
  if (summary.action === 'accept') return summary.ranges.length === 0;
  const only = summary.ranges.length === 1 ? summary.ranges[0] : undefined;
  return only !== undefined && only[0] === 1 && only[1] === MAX_PORT;
}
