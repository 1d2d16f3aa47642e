/**
 * The consensus (docs/protocol.md §8.4): the list of usable relays
 * with their keys, flags and exit summaries, the consensus method and the
 * network parameters (§8.5), signed by directory authorities.
 * Every authority signs the same body bytes (everything up to and including
 * the `directory-footer` line), so one document carries many signatures.
 * Unknown lines are skipped where §8.1 allows them.
 */
import { utf8 } from '../bytes.js';
import { crypto } from '../crypto/crypto.js';
import { DocumentError } from '../errors.js';
import { formatSummary, parseSummary, type ExitSummary } from './exit-policy.js';
import {
  b64,
  compareBytes,
  formatTime,
  malformedDoc,
  openDocument,
  parseAddress,
  parseNickname,
  parsePortNumber,
  parseTime,
  parseUint,
  unb64,
  type DocumentType,
} from './text.js';
import { MAX_BANDWIDTH } from './descriptor.js';
import { formatParams, networkParams, parseParams, type NetworkParams, type RawParams } from './params.js';

export interface ConsensusRelay {
  nickname: string;
  identity: Uint8Array;
  address: string;
  orPort: number;
  linkKey: Uint8Array;
  ntorOnionKey: Uint8Array;
  descriptorDigest: Uint8Array;
  /** Sorted (ASCII), distinct keywords; CONSENSUS_FLAGS are the ones Allium reads, others are kept and ignored. */
  flags: string[];
  bandwidth: number;
  exitSummary: ExitSummary;
}

export interface ConsensusAuthority {
  nickname: string;
  identity: Uint8Array;
  address: string;
  dirPort: number;
}

export interface ConsensusBody {
  /** The consensus method (§8.4); the encoder writes CONSENSUS_METHOD if absent. */
  consensusMethod?: number;
  /** The `params` line as raw pairs (§8.5), known or not; the encoder writes none if absent. */
  rawParams?: RawParams;
  validAfter: number;
  freshUntil: number;
  validUntil: number;
  authorities: ConsensusAuthority[];
  relays: ConsensusRelay[];
}

export interface Consensus extends ConsensusBody {
  consensusMethod: number;
  rawParams: RawParams;
  /** Every known parameter, defaulted and clamped (§8.5). */
  params: NetworkParams;
  signatures: { identity: Uint8Array; signature: Uint8Array }[];
}

/** A consensus that passed `verifyConsensus`. */
export interface VerifiedConsensus extends Consensus {
  /** The distinct trusted authorities whose signature verified. */
  verifiedSigners: Uint8Array[];
}

export const CONSENSUS_TYPE_LINE = '@type allium-consensus 1';
export const MAX_CONSENSUS_BYTES = 1024 * 1024;
export const MAX_CONSENSUS_LINE = 4096;
export const MAX_AUTHORITIES = 32;
export const MAX_SIGNATURES = 64;
/** The flags Allium assigns and reads today, in ASCII order; a consensus may carry others (§8.4). */
export const CONSENSUS_FLAGS = ['Exit', 'Fast', 'Guard', 'Running', 'Stable', 'Valid'] as const;
export type ConsensusFlag = (typeof CONSENSUS_FLAGS)[number];

/** The consensus method a version-1 authority writes (the highest it supports). A client accepts any method ≥ 1 (§8.4). */
export const CONSENSUS_METHOD = 1;
export const MAX_CONSENSUS_METHOD_VALUE = 0x7fff_ffff;

const WHAT = 'consensus';
const FOOTER = 'directory-footer';
const SIGNATURE = 'directory-signature';
/** Framing and known keywords of the consensus (§8.4); any other keyword is an unknown line. */
const CONSENSUS: DocumentType = {
  what: WHAT,
  typeLine: CONSENSUS_TYPE_LINE,
  maxBytes: MAX_CONSENSUS_BYTES,
  maxLine: MAX_CONSENSUS_LINE,
  keywords: new Set([
    'consensus-method',
    'valid-after',
    'fresh-until',
    'valid-until',
    'params',
    'authority',
    'r',
    'k',
    'd',
    's',
    'w',
    'p',
    FOOTER,
    SIGNATURE,
  ]),
};

function checkMethod(method: number): number {
  if (!Number.isInteger(method) || method < 1 || method > MAX_CONSENSUS_METHOD_VALUE) {
    throw malformedDoc(WHAT, `consensus-method must be 1..${MAX_CONSENSUS_METHOD_VALUE}`);
  }
  return method;
}

/** A flag is a keyword (§8.1); flags this code does not know are kept and mean nothing to it. */
const FLAG = /^[A-Za-z0-9][A-Za-z0-9-]{0,63}$/;

/** Flags must be keywords in strictly ascending ASCII order; unknown ones are allowed so new flags can be added (§8.4). */
function checkFlags(flags: readonly string[]): void {
  let last = '';
  for (const f of flags) {
    if (!FLAG.test(f)) throw malformedDoc(WHAT, `bad flag ${JSON.stringify(f.slice(0, 20))}`);
    if (last !== '' && f <= last) throw malformedDoc(WHAT, 'flags not sorted or repeated');
    last = f;
  }
}

/** `w bandwidth=N [key=N ...]`: bandwidth first, then keys in ascending ASCII order, each once; later keys are for future use and ignored here (§8.4). */
function parseWeightLine(args: readonly string[]): number {
  const [first, ...rest] = args;
  if (first === undefined || !first.startsWith('bandwidth=')) throw malformedDoc(WHAT, 'w line must start with "bandwidth=N"');
  let last = '';
  for (const item of rest) {
    const eq = item.indexOf('=');
    const key = item.slice(0, eq);
    if (eq <= 0 || !FLAG.test(key) || !/^\d{1,10}$/.test(item.slice(eq + 1))) {
      throw malformedDoc(WHAT, `bad w item ${JSON.stringify(item.slice(0, 20))}`);
    }
    if (last !== '' && key <= last) throw malformedDoc(WHAT, 'w items not sorted or repeated');
    last = key;
  }
  return parseUint(first.slice('bandwidth='.length), MAX_BANDWIDTH, WHAT);
}

function checkTimes(b: { validAfter: number; freshUntil: number; validUntil: number }): void {
  if (!(b.validAfter <= b.freshUntil && b.freshUntil <= b.validUntil)) {
    throw malformedDoc(WHAT, 'times must satisfy valid-after ≤ fresh-until ≤ valid-until');
  }
}

function checkKey(value: Uint8Array, len: number, name: string): void {
  if (!(value instanceof Uint8Array) || value.length !== len) throw malformedDoc(WHAT, `${name} must be ${len} bytes`);
}

/**
 * Encodes the signed part, up to and including `directory-footer\n`.
 * Authorities and relays are written sorted by identity; duplicates are refused.
 * Throws DocumentError ERR_MALFORMED for a field the grammar cannot carry and
 * ERR_OVERSIZED for a line over MAX_CONSENSUS_LINE.
 */
export function encodeConsensusBody(body: ConsensusBody): string {
  checkTimes(body);
  let times: string[];
  try {
    times = [formatTime(body.validAfter), formatTime(body.freshUntil), formatTime(body.validUntil)];
  } catch {
    throw malformedDoc(WHAT, 'times must be whole seconds');
  }
  if (body.authorities.length < 1 || body.authorities.length > MAX_AUTHORITIES) throw malformedDoc(WHAT, `needs 1..${MAX_AUTHORITIES} authorities`);
  const method = checkMethod(body.consensusMethod ?? CONSENSUS_METHOD);
  const params = ['params', ...formatParams(body.rawParams ?? new Map(), WHAT)].join(' ');
  const out: string[] = [
    CONSENSUS_TYPE_LINE,
    `consensus-method ${method}`,
    `valid-after ${times[0]}`,
    `fresh-until ${times[1]}`,
    `valid-until ${times[2]}`,
    params,
  ];
  const authorities = [...body.authorities].sort((a, b) => compareBytes(a.identity, b.identity));
  authorities.forEach((a, i) => {
    parseNickname(a.nickname, WHAT);
    checkKey(a.identity, 32, 'authority identity');
    parseAddress(a.address, WHAT);
    parsePortNumber(String(a.dirPort), WHAT);
    if (i > 0 && compareBytes(authorities[i - 1]!.identity, a.identity) === 0) throw malformedDoc(WHAT, 'duplicate authority');
    out.push(`authority ${a.nickname} ${b64(a.identity)} ${a.address} ${a.dirPort}`);
  });
  const relays = [...body.relays].sort((a, b) => compareBytes(a.identity, b.identity));
  relays.forEach((r, i) => {
    parseNickname(r.nickname, WHAT);
    checkKey(r.identity, 32, 'relay identity');
    checkKey(r.linkKey, 32, 'link key');
    checkKey(r.ntorOnionKey, 32, 'ntor key');
    checkKey(r.descriptorDigest, 32, 'descriptor digest');
    parseAddress(r.address, WHAT);
    parsePortNumber(String(r.orPort), WHAT);
    parseUint(String(r.bandwidth), MAX_BANDWIDTH, WHAT);
    checkFlags(r.flags);
    if (i > 0 && compareBytes(relays[i - 1]!.identity, r.identity) === 0) throw malformedDoc(WHAT, 'duplicate relay');
    const summary = formatSummary(r.exitSummary);
    parseSummary(summary);
    out.push(
      `r ${r.nickname} ${b64(r.identity)} ${r.address} ${r.orPort}`,
      `k ${b64(r.linkKey)} ${b64(r.ntorOnionKey)}`,
      `d ${b64(r.descriptorDigest)}`,
      r.flags.length === 0 ? 's' : `s ${r.flags.join(' ')}`,
      `w bandwidth=${r.bandwidth}`,
      `p ${summary}`,
    );
  });
  out.push(FOOTER);
  if (out.some((l) => l.length > MAX_CONSENSUS_LINE)) throw new DocumentError('ERR_OVERSIZED', `${WHAT}: a line longer than ${MAX_CONSENSUS_LINE}`);
  return out.map((l) => `${l}\n`).join('');
}

/** One `directory-signature` line (with its LF) by the authority whose seed is given. */
export function signConsensusBody(bodyText: string, identitySeed: Uint8Array): string {
  if (!bodyText.endsWith(`\n${FOOTER}\n`)) throw malformedDoc(WHAT, 'body must end with the directory-footer line');
  const identity = crypto.ed25519PublicKey(identitySeed);
  const sig = crypto.ed25519Sign(identitySeed, utf8(bodyText));
  return `${SIGNATURE} ${b64(identity)} ${b64(sig)}\n`;
}

export function encodeConsensus(body: ConsensusBody, signerSeeds: Uint8Array[]): string {
  if (signerSeeds.length < 1 || signerSeeds.length > MAX_SIGNATURES) throw malformedDoc(WHAT, `needs 1..${MAX_SIGNATURES} signatures`);
  const text = encodeConsensusBody(body);
  const out = text + signerSeeds.map((s) => signConsensusBody(text, s)).join('');
  if (out.length > MAX_CONSENSUS_BYTES) throw new DocumentError('ERR_OVERSIZED', `${WHAT}: larger than ${MAX_CONSENSUS_BYTES} bytes`);
  return out;
}

/**
 * Grammar only: no signature is checked, no clock consulted. Unknown lines
 * are skipped where §8.1 allows them (and stay in `bodyText`, so signatures
 * cover them). Throws DocumentError ERR_MALFORMED / ERR_OVERSIZED.
 */
export function parseConsensus(text: string): Consensus & { bodyText: string } {
  const c = openDocument(text, CONSENSUS);
  const consensusMethod = checkMethod(parseUint(c.take('consensus-method', 1)[0]!, MAX_CONSENSUS_METHOD_VALUE, WHAT));
  const validAfter = parseTime(c.take('valid-after', 2).join(' '), WHAT);
  const freshUntil = parseTime(c.take('fresh-until', 2).join(' '), WHAT);
  const validUntil = parseTime(c.take('valid-until', 2).join(' '), WHAT);
  checkTimes({ validAfter, freshUntil, validUntil });
  const rawParams = parseParams(c.take('params'), WHAT);

  const authorities: ConsensusAuthority[] = [];
  while (c.peekKeyword() === 'authority') {
    if (authorities.length >= MAX_AUTHORITIES) throw malformedDoc(WHAT, `more than ${MAX_AUTHORITIES} authorities`);
    const [nick, id, addr, port] = c.take('authority', 4) as [string, string, string, string];
    const a: ConsensusAuthority = {
      nickname: parseNickname(nick, WHAT),
      identity: unb64(id, `${WHAT} authority identity`, 32),
      address: parseAddress(addr, WHAT),
      dirPort: parsePortNumber(port, WHAT),
    };
    const prev = authorities[authorities.length - 1];
    if (prev !== undefined && compareBytes(prev.identity, a.identity) >= 0) throw malformedDoc(WHAT, 'authorities not sorted by identity or repeated');
    authorities.push(a);
  }
  if (authorities.length === 0) throw malformedDoc(WHAT, 'no authority lines');

  const relays: ConsensusRelay[] = [];
  while (c.peekKeyword() === 'r') {
    const [nick, id, addr, port] = c.take('r', 4) as [string, string, string, string];
    const [lk, nk] = c.take('k', 2) as [string, string];
    const digest = c.take('d', 1)[0]!;
    const flags = c.take('s');
    checkFlags(flags);
    const bandwidth = parseWeightLine(c.take('w'));
    const summaryText = c.takeRest('p');
    const r: ConsensusRelay = {
      nickname: parseNickname(nick, WHAT),
      identity: unb64(id, `${WHAT} relay identity`, 32),
      address: parseAddress(addr, WHAT),
      orPort: parsePortNumber(port, WHAT),
      linkKey: unb64(lk, `${WHAT} link key`, 32),
      ntorOnionKey: unb64(nk, `${WHAT} ntor key`, 32),
      descriptorDigest: unb64(digest, `${WHAT} descriptor digest`, 32),
      flags,
      bandwidth,
      exitSummary: parseSummary(summaryText),
    };
    const prev = relays[relays.length - 1];
    if (prev !== undefined && compareBytes(prev.identity, r.identity) >= 0) throw malformedDoc(WHAT, 'relays not sorted by identity or repeated');
    relays.push(r);
  }
  c.take(FOOTER, 0);
  const bodyEnd = c.offset;

  // Nothing after the footer is signed, so nothing unknown may stand there.
  c.forbidUnknown();
  const signatures: { identity: Uint8Array; signature: Uint8Array }[] = [];
  while (!c.done) {
    if (signatures.length >= MAX_SIGNATURES) throw malformedDoc(WHAT, `more than ${MAX_SIGNATURES} signatures`);
    const [id, sig] = c.take(SIGNATURE, 2) as [string, string];
    signatures.push({ identity: unb64(id, `${WHAT} signer`, 32), signature: unb64(sig, `${WHAT} signature`, 64) });
  }
  if (signatures.length === 0) throw malformedDoc(WHAT, 'no directory-signature line (truncated?)');
  return {
    consensusMethod,
    rawParams,
    params: networkParams(rawParams),
    validAfter,
    freshUntil,
    validUntil,
    authorities,
    relays,
    signatures,
    bodyText: text.slice(0, bodyEnd),
  };
}

/**
 * Parses and checks a consensus: a strict majority (more than half) of the
 * distinct `trusted` identities must have a valid signature on the body
 * (unknown signers and repeated signatures count for nothing) →
 * else ERR_BAD_SIGNATURE; and validAfter ≤ now ≤ validUntil → else ERR_DOCUMENT.
 */
export function verifyConsensus(text: string, trusted: Uint8Array[], now: number): VerifiedConsensus {
  const parsed = parseConsensus(text);
  const trustedHex = new Set(trusted.map((t) => Buffer.from(t).toString('hex')));
  if (trustedHex.size === 0) throw new DocumentError('ERR_BAD_SIGNATURE', `${WHAT}: no trusted authorities configured`);
  const body = utf8(parsed.bodyText);
  const good = new Set<string>();
  const verifiedSigners: Uint8Array[] = [];
  for (const s of parsed.signatures) {
    const id = Buffer.from(s.identity).toString('hex');
    if (!trustedHex.has(id) || good.has(id)) continue;
    if (crypto.ed25519Verify(s.identity, body, s.signature)) {
      good.add(id);
      verifiedSigners.push(s.identity);
    }
  }
  if (good.size * 2 <= trustedHex.size) {
    throw new DocumentError('ERR_BAD_SIGNATURE', `${WHAT}: ${good.size} of ${trustedHex.size} trusted authorities signed; need more than half`);
  }
  if (now < parsed.validAfter) throw new DocumentError('ERR_DOCUMENT', `${WHAT}: not valid yet`);
  if (now > parsed.validUntil) throw new DocumentError('ERR_DOCUMENT', `${WHAT}: expired`);
  return {
    consensusMethod: parsed.consensusMethod,
    rawParams: parsed.rawParams,
    params: parsed.params,
    validAfter: parsed.validAfter,
    freshUntil: parsed.freshUntil,
    validUntil: parsed.validUntil,
    authorities: parsed.authorities,
    relays: parsed.relays,
    signatures: parsed.signatures,
    verifiedSigners,
  };
}
