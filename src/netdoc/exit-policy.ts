/**
 * Exit policies (docs/protocol.md §8.3): ordered `accept`/`reject`
 * rules over address patterns and port ranges, first match wins, no match
 * rejects; and the port-only summary the consensus carries for clients.
 *
 * Everything here is pure: no I/O, no clock.
 */
import { DocumentError } from '../errors.js';

export type ExitAction = 'accept' | 'reject';

export type AddressPattern =
  | { readonly kind: 'any' }
  | { readonly kind: 'private' }
  | { readonly kind: 'ipv4'; readonly bytes: Uint8Array; readonly bits: number }
  | { readonly kind: 'ipv6'; readonly bytes: Uint8Array; readonly bits: number };

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

export const DEFAULT_EXIT_POLICY_LINES: readonly string[] = ['reject private:*', 'accept *:*'];
export const NON_EXIT_POLICY_LINES: readonly string[] = ['reject private:*', 'reject *:*'];
export const TESTNET_EXIT_POLICY_LINES: readonly string[] = ['accept 127.0.0.0/8:*', 'reject private:*', 'accept *:*'];

function bad(message: string): DocumentError {
  return new DocumentError('ERR_MALFORMED', `exit policy: ${message}`);
}

// ---------------------------------------------------------------------------
// Addresses

const DEC_OCTET = /^(?:0|[1-9][0-9]{0,2})$/;

/** Strict dotted-quad IPv4 (no leading zeros) → 4 bytes, or null. */
export function parseIPv4(text: string): Uint8Array | null {
  const parts = text.split('.');
  if (parts.length !== 4) return null;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!;
    if (!DEC_OCTET.test(p)) return null;
    const n = Number(p);
    if (n > 255) return null;
    out[i] = n;
  }
  return out;
}

/** IPv6 text (RFC 4291 §2.2, with optional dotted-quad tail, no zone) → 16 bytes, or null. */
export function parseIPv6(text: string): Uint8Array | null {
  if (text.length === 0 || text.length > 45 || !/^[0-9A-Fa-f:.]+$/.test(text)) return null;
  let head = text;
  let v4: Uint8Array | null = null;
  const lastColon = text.lastIndexOf(':');
  if (text.includes('.')) {
    v4 = parseIPv4(text.slice(lastColon + 1));
    if (v4 === null) return null;
    head = text.slice(0, lastColon + 1);
    // "::1.2.3.4" leaves "::"; "a:b::1.2.3.4" leaves "a:b::"; "a:b:c:d:e:f:1.2.3.4" leaves "a:…:f:".
    if (head.endsWith(':') && !head.endsWith('::')) head = head.slice(0, -1);
  }
  const groupsWanted = v4 === null ? 8 : 6;
  const parseGroups = (s: string): number[] | null => {
    if (s === '') return [];
    const out: number[] = [];
    for (const g of s.split(':')) {
      if (!/^[0-9A-Fa-f]{1,4}$/.test(g)) return null;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  let groups: number[];
  const dbl = head.indexOf('::');
  if (dbl >= 0) {
    if (head.indexOf('::', dbl + 1) >= 0) return null;
    const left = parseGroups(head.slice(0, dbl));
    const right = parseGroups(head.slice(dbl + 2));
    if (left === null || right === null) return null;
    const fill = groupsWanted - left.length - right.length;
    if (fill < 1) return null;
    groups = [...left, ...new Array<number>(fill).fill(0), ...right];
  } else {
    const all = parseGroups(head);
    if (all === null || all.length !== groupsWanted) return null;
    groups = all;
  }
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    out[2 * i] = g >> 8;
    out[2 * i + 1] = g & 0xff;
  });
  if (v4 !== null) out.set(v4, 12);
  return out;
}

function formatIPv4(b: Uint8Array): string {
  return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
}

/** RFC 5952 canonical text of 16 bytes (longest zero run of ≥ 2 groups compressed). */
function formatIPv6(b: Uint8Array): string {
  const groups: number[] = [];
  for (let i = 0; i < 8; i++) groups.push((b[2 * i]! << 8) | b[2 * i + 1]!);
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hexes = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hexes.join(':');
  return `${hexes.slice(0, bestStart).join(':')}::${hexes.slice(bestStart + bestLen).join(':')}`;
}

function prefixMatch(addr: Uint8Array, net: Uint8Array, bits: number): boolean {
  let i = 0;
  for (; bits >= 8; bits -= 8, i++) if (addr[i] !== net[i]) return false;
  if (bits === 0) return true;
  const mask = (0xff << (8 - bits)) & 0xff;
  return ((addr[i]! ^ net[i]!) & mask) === 0;
}

function maskOff(bytes: Uint8Array, bits: number): boolean {
  // true when no host bits are set beyond the prefix
  for (let i = 0; i < bytes.length; i++) {
    const keep = Math.max(0, Math.min(8, bits - 8 * i));
    const mask = keep === 0 ? 0 : (0xff << (8 - keep)) & 0xff;
    if ((bytes[i]! & ~mask & 0xff) !== 0) return false;
  }
  return true;
}

const PRIVATE_V4: readonly [string, number][] = [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.168.0.0', 16],
  ['100.64.0.0', 10],
];
const PRIVATE_V6: readonly [string, number][] = [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7],
  ['fe80::', 10],
];
const PRIVATE_V4_NETS = PRIVATE_V4.map(([a, bits]) => [parseIPv4(a)!, bits] as const);
const PRIVATE_V6_NETS = PRIVATE_V6.map(([a, bits]) => [parseIPv6(a)!, bits] as const);
const V4_MAPPED_PREFIX = parseIPv6('::ffff:0:0')!;

/** A parsed address: IPv4-mapped IPv6 (::ffff:a.b.c.d) is treated as the IPv4 address. */
type Ip = { v: 4 | 6; bytes: Uint8Array };

function parseIp(text: string): Ip | null {
  const v4 = parseIPv4(text);
  if (v4 !== null) return { v: 4, bytes: v4 };
  const v6 = parseIPv6(text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text);
  if (v6 === null) return null;
  if (prefixMatch(v6, V4_MAPPED_PREFIX, 96)) return { v: 4, bytes: v6.slice(12) };
  return { v: 6, bytes: v6 };
}

/** Whether `ip` (IPv4 or IPv6 text) is in one of the `private` ranges. Unparseable text counts as private. */
export function isPrivateAddress(ip: string): boolean {
  const parsed = parseIp(ip);
  return parsed === null ? true : isPrivateIp(parsed);
}

function isPrivateIp(ip: Ip): boolean {
  const nets = ip.v === 4 ? PRIVATE_V4_NETS : PRIVATE_V6_NETS;
  return nets.some(([net, bits]) => prefixMatch(ip.bytes, net, bits));
}

function patternMatches(p: AddressPattern, ip: Ip): boolean {
  switch (p.kind) {
    case 'any':
      return true;
    case 'private':
      return isPrivateIp(ip);
    case 'ipv4':
      return ip.v === 4 && prefixMatch(ip.bytes, p.bytes, p.bits);
    case 'ipv6':
      return ip.v === 6 && prefixMatch(ip.bytes, p.bytes, p.bits);
  }
}

/** Whether every address the pattern covers is loopback (127/8 or ::1). */
function patternIsLoopback(p: AddressPattern): boolean {
  if (p.kind === 'ipv4') return p.bits >= 8 && p.bytes[0] === 127;
  if (p.kind === 'ipv6') return p.bits === 128 && prefixMatch(p.bytes, parseIPv6('::1')!, 128);
  return false;
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

function parseBits(text: string, max: number): number {
  if (!/^(?:0|[1-9][0-9]{0,2})$/.test(text)) throw bad(`bad prefix length ${JSON.stringify(text)}`);
  const n = Number(text);
  if (n > max) throw bad(`prefix length ${n} exceeds ${max}`);
  return n;
}

/** One rule: `accept|reject ADDR[/BITS]:PORT[-PORT]`, ADDR = `*`, `private`, IPv4, or `[IPv6]`. */
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
    const slash = addrText.indexOf('/');
    const host = slash < 0 ? addrText : addrText.slice(0, slash);
    const bitsText = slash < 0 ? undefined : addrText.slice(slash + 1);
    if (host.startsWith('[')) {
      if (!host.endsWith(']')) throw bad(`bad IPv6 address ${JSON.stringify(host)}`);
      const bytes = parseIPv6(host.slice(1, -1));
      if (bytes === null) throw bad(`bad IPv6 address ${JSON.stringify(host)}`);
      const bits = bitsText === undefined ? 128 : parseBits(bitsText, 128);
      if (!maskOff(bytes, bits)) throw bad(`host bits set in ${addrText}`);
      address = { kind: 'ipv6', bytes, bits };
    } else {
      const bytes = parseIPv4(host);
      if (bytes === null) throw bad(`bad address ${JSON.stringify(host)}`);
      const bits = bitsText === undefined ? 32 : parseBits(bitsText, 32);
      if (!maskOff(bytes, bits)) throw bad(`host bits set in ${addrText}`);
      address = { kind: 'ipv4', bytes, bits };
    }
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
    case 'ipv4':
      addr = formatIPv4(rule.address.bytes) + (rule.address.bits === 32 ? '' : `/${rule.address.bits}`);
      break;
    case 'ipv6':
      addr = `[${formatIPv6(rule.address.bytes)}]` + (rule.address.bits === 128 ? '' : `/${rule.address.bits}`);
      break;
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
  for (const rule of policy) {
    if (port < rule.portMin || port > rule.portMax) continue;
    if (patternMatches(rule.address, parsed)) return rule.action === 'accept';
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
  // Merge the accepted ranges; the rejected ones are the gaps.
  accepted.sort((x, y) => x[0] - y[0]);
  const merged: [number, number][] = [];
  for (const [a, b] of accepted) {
    const last = merged[merged.length - 1];
    if (last !== undefined && a <= last[1] + 1) last[1] = Math.max(last[1], b);
    else merged.push([a, b]);
  }
  const rejected: [number, number][] = [];
  let next = 1;
  for (const [a, b] of merged) {
    if (a > next) rejected.push([next, a - 1]);
    next = b + 1;
  }
  if (next <= MAX_PORT) rejected.push([next, MAX_PORT]);
  const asAccept: ExitSummary = { action: 'accept', ranges: merged };
  const asReject: ExitSummary = { action: 'reject', ranges: rejected };
  if (merged.length === 0) return asReject;
  if (rejected.length === 0) return asAccept;
  return formatPortList(rejected).length < formatPortList(merged).length ? asReject : asAccept;
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
