/**
 * The consensus (docs/protocol.md §8.4): the list of usable relays
 * with their keys, flags and exit summaries, the consensus method, the
 * network parameters (§8.5) and the bandwidth weights, signed by directory
 * authorities with their signing keys (§8.6).
 * Every authority signs the same body bytes (everything up to and including
 * the `directory-footer` line), so one document carries many signatures.
 * Unknown lines are skipped where §8.1 allows them.
 */
import { DocumentError } from '../errors.js';
import type { AuthoritySigner } from './authority-cert.js';
import { bandwidthWeights, formatWeightsLine, parseWeightsLine, type BandwidthWeights, type RawWeights } from './bandwidth-weights.js';
import { bodyDigest, checkSignature, parseSignatureArgs, signatureLine, SIGNATURE_KEYWORD, type DirSignature } from './dir-signature.js';
import { relayEntryLines, takeRelayEntry, type ConsensusRelay } from './relay-entry.js';
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
import { formatParams, networkParams, parseParams, type NetworkParams, type RawParams } from './params.js';

export type { ConsensusRelay } from './relay-entry.js';
export type { BandwidthWeights } from './bandwidth-weights.js';

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
  /** The `bandwidth-weights` line (§8.4, §9.7); absent: no line (every position weighs a relay by its bandwidth alone). */
  bandwidthWeights?: BandwidthWeights;
}

export interface Consensus extends ConsensusBody {
  consensusMethod: number;
  rawParams: RawParams;
  /** Every known parameter, defaulted and clamped (§8.5). */
  params: NetworkParams;
  /** The raw `bandwidth-weights` pairs as written (empty if the line is absent). */
  rawBandwidthWeights: RawWeights;
  signatures: DirSignature[];
}

/** A consensus that passed `verifyConsensus`. */
export interface VerifiedConsensus extends Consensus {
  /** The distinct trusted authorities whose signature counted, in signature order. */
  verifiedSigners: Uint8Array[];
}

export const CONSENSUS_TYPE_LINE = '@type allium-consensus 1';
/** Large enough for 10 000 relays (about 3.3 MB) with room to grow. */
export const MAX_CONSENSUS_BYTES = 8 * 1024 * 1024;
export const MAX_CONSENSUS_LINE = 4096;
export const MAX_AUTHORITIES = 32;
export const MAX_SIGNATURES = 64;
/** The flags Allium assigns today, in ASCII order; a consensus may carry others (§8.4, §9.4). */
export const CONSENSUS_FLAGS = ['BadExit', 'Exit', 'Fast', 'Guard', 'HSDir', 'Running', 'Stable', 'Valid'] as const;
export type ConsensusFlag = (typeof CONSENSUS_FLAGS)[number];

/**
 * The highest consensus method this code computes (§9.6): 1 = the voting
 * rules, 2 = also bandwidth weights, 3 = also mutual families (`f` lines),
 * 4 = also IPv6 OR addresses (`a` lines).
 * A client accepts any method ≥ 1.
 */
export const CONSENSUS_METHOD = 4;
export const MAX_CONSENSUS_METHOD_VALUE = 0x7fff_ffff;
/**
 * How far the client's clock may be from the authorities' (§11): a
 * consensus is accepted from valid-after − this until valid-until + this,
 * and a certificate likewise around its published and expires times.
 */
export const DEFAULT_CLOCK_SKEW_MS = 60_000;

const WHAT = 'consensus';
const FOOTER = 'directory-footer';
const WEIGHTS = 'bandwidth-weights';
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
    'a',
    'k',
    'd',
    's',
    'w',
    'p',
    'f',
    WEIGHTS,
    FOOTER,
    SIGNATURE_KEYWORD,
  ]),
};

function checkMethod(method: number): number {
  if (!Number.isInteger(method) || method < 1 || method > MAX_CONSENSUS_METHOD_VALUE) {
    throw malformedDoc(WHAT, `consensus-method must be 1..${MAX_CONSENSUS_METHOD_VALUE}`);
  }
  return method;
}

function checkTimes(b: { validAfter: number; freshUntil: number; validUntil: number }): void {
  if (!(b.validAfter <= b.freshUntil && b.freshUntil <= b.validUntil)) {
    throw malformedDoc(WHAT, 'times must satisfy valid-after ≤ fresh-until ≤ valid-until');
  }
}

/** The `authority` line of `a`, each field checked. */
export function authorityLine(a: ConsensusAuthority, what: string): string {
  parseNickname(a.nickname, what);
  if (!(a.identity instanceof Uint8Array) || a.identity.length !== 32) throw malformedDoc(what, 'authority identity must be 32 bytes');
  parseAddress(a.address, what);
  parsePortNumber(String(a.dirPort), what);
  return `authority ${a.nickname} ${b64(a.identity)} ${a.address} ${a.dirPort}`;
}

/** Parses the four arguments of an `authority` line. */
export function parseAuthorityArgs(args: readonly string[], what: string): ConsensusAuthority {
  const [nick, id, addr, port] = args as [string, string, string, string];
  return {
    nickname: parseNickname(nick, what),
    identity: unb64(id, `${what} authority identity`, 32),
    address: parseAddress(addr, what),
    dirPort: parsePortNumber(port, what),
  };
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
    if (i > 0 && compareBytes(authorities[i - 1]!.identity, a.identity) === 0) throw malformedDoc(WHAT, 'duplicate authority');
    out.push(authorityLine(a, WHAT));
  });
  const relays = [...body.relays].sort((a, b) => compareBytes(a.identity, b.identity));
  relays.forEach((r, i) => {
    if (i > 0 && compareBytes(relays[i - 1]!.identity, r.identity) === 0) throw malformedDoc(WHAT, 'duplicate relay');
    for (const line of relayEntryLines(r, WHAT, r.unmeasured === true ? [['Unmeasured', 1]] : [])) out.push(line);
  });
  if (body.bandwidthWeights !== undefined) out.push([WEIGHTS, ...formatWeightsLine(body.bandwidthWeights, WHAT)].join(' '));
  out.push(FOOTER);
  for (const l of out) if (l.length > MAX_CONSENSUS_LINE) throw new DocumentError('ERR_OVERSIZED', `${WHAT}: a line longer than ${MAX_CONSENSUS_LINE}`);
  return `${out.join('\n')}\n`;
}

/** One `directory-signature` line (with its LF) by `signer` over the body text (§8.6). */
export function signConsensusBody(bodyText: string, signer: AuthoritySigner): string {
  if (!bodyText.endsWith(`\n${FOOTER}\n`)) throw malformedDoc(WHAT, 'body must end with the directory-footer line');
  return signatureLine(bodyDigest(bodyText), signer);
}

/** The body followed by the signature lines, checked against the size and signature-count limits. */
export function assembleConsensus(bodyText: string, signatureLines: readonly string[]): string {
  if (signatureLines.length < 1 || signatureLines.length > MAX_SIGNATURES) throw malformedDoc(WHAT, `needs 1..${MAX_SIGNATURES} signatures`);
  const out = bodyText + signatureLines.join('');
  if (out.length > MAX_CONSENSUS_BYTES) throw new DocumentError('ERR_OVERSIZED', `${WHAT}: larger than ${MAX_CONSENSUS_BYTES} bytes`);
  return out;
}

export function encodeConsensus(body: ConsensusBody, signers: readonly AuthoritySigner[]): string {
  const text = encodeConsensusBody(body);
  const digest = bodyDigest(text);
  return assembleConsensus(text, signers.map((s) => signatureLine(digest, s)));
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
  const params = networkParams(rawParams);

  const authorities: ConsensusAuthority[] = [];
  while (c.peekKeyword() === 'authority') {
    if (authorities.length >= MAX_AUTHORITIES) throw malformedDoc(WHAT, `more than ${MAX_AUTHORITIES} authorities`);
    const a = parseAuthorityArgs(c.take('authority', 4), WHAT);
    const prev = authorities[authorities.length - 1];
    if (prev !== undefined && compareBytes(prev.identity, a.identity) >= 0) throw malformedDoc(WHAT, 'authorities not sorted by identity or repeated');
    authorities.push(a);
  }
  if (authorities.length === 0) throw malformedDoc(WHAT, 'no authority lines');

  const relays: ConsensusRelay[] = [];
  while (c.peekKeyword() === 'r') {
    const { relay, wExtras } = takeRelayEntry(c, WHAT);
    if (wExtras.get('Unmeasured') === 1) relay.unmeasured = true;
    const prev = relays[relays.length - 1];
    if (prev !== undefined && compareBytes(prev.identity, relay.identity) >= 0) throw malformedDoc(WHAT, 'relays not sorted by identity or repeated');
    relays.push(relay);
  }
  let rawBandwidthWeights: RawWeights = new Map();
  let weights: BandwidthWeights | undefined;
  if (c.peekKeyword() === WEIGHTS) {
    rawBandwidthWeights = parseWeightsLine(c.take(WEIGHTS), WHAT);
    weights = bandwidthWeights(rawBandwidthWeights, params.bwweightscale);
  }
  c.take(FOOTER, 0);
  const bodyEnd = c.offset;

  // Nothing after the footer is signed, so nothing unknown may stand there.
  c.forbidUnknown();
  const signatures: DirSignature[] = [];
  while (!c.done) {
    if (signatures.length >= MAX_SIGNATURES) throw malformedDoc(WHAT, `more than ${MAX_SIGNATURES} signatures`);
    signatures.push(parseSignatureArgs(c.take(SIGNATURE_KEYWORD), WHAT));
  }
  if (signatures.length === 0) throw malformedDoc(WHAT, 'no directory-signature line (truncated?)');
  return {
    consensusMethod,
    rawParams,
    params,
    validAfter,
    freshUntil,
    validUntil,
    authorities,
    relays,
    ...(weights !== undefined ? { bandwidthWeights: weights } : {}),
    rawBandwidthWeights,
    signatures,
    bodyText: text.slice(0, bodyEnd),
  };
}

/** Options of `verifyConsensus`. */
export interface VerifyConsensusOptions {
  /** Clock-skew tolerance in ms (§11); default DEFAULT_CLOCK_SKEW_MS. */
  clockSkewMs?: number;
  /** Names for trusted identities in error messages (hex → name); default the first 8 hex digits. */
  names?: ReadonlyMap<string, string>;
}

const hexOf = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

/**
 * Parses and checks a consensus (§8.4 Verification):
 * 1. a strict majority (more than half) of the distinct `trusted` identities
 *    must have a signature that counts — its certificate names the identity,
 *    both certificate signatures verify, the certificate is within its time
 *    window (± clock skew), and the signature verifies with the certified
 *    signing key. Unknown signers and repeated signers count for nothing.
 *    Otherwise ERR_BAD_SIGNATURE, naming for every trusted authority whose
 *    signature did not count why not (no signature, forged certificate,
 *    certificate expired at …, signature does not verify);
 * 2. valid-after − skew ≤ now ≤ valid-until + skew, else ERR_DOCUMENT
 *    ("not valid until …" / "expired at …").
 * Grammar failures are ERR_MALFORMED / ERR_OVERSIZED.
 */
export function verifyConsensus(text: string, trusted: readonly Uint8Array[], now: number, opts: VerifyConsensusOptions = {}): VerifiedConsensus {
  const skew = opts.clockSkewMs ?? DEFAULT_CLOCK_SKEW_MS;
  const parsed = parseConsensus(text);
  const trustedHex = new Set(trusted.map(hexOf));
  if (trustedHex.size === 0) throw new DocumentError('ERR_BAD_SIGNATURE', `${WHAT}: no trusted authorities configured`);
  const name = (id: string) => opts.names?.get(id) ?? id.slice(0, 8);
  const digest = bodyDigest(parsed.bodyText);
  const good = new Set<string>();
  const problems = new Map<string, string>();
  const verifiedSigners: Uint8Array[] = [];
  for (const s of parsed.signatures) {
    const id = hexOf(s.identity);
    if (!trustedHex.has(id) || good.has(id)) continue;
    const check = checkSignature(s, digest, now, skew);
    if (check.ok) {
      good.add(id);
      problems.delete(id);
      verifiedSigners.push(check.cert.identity);
    } else if (!problems.has(id)) {
      problems.set(id, check.reason);
    }
  }
  if (good.size * 2 <= trustedHex.size) {
    const need = Math.floor(trustedHex.size / 2) + 1;
    const why = [...trustedHex].filter((id) => !good.has(id)).map((id) => `${name(id)}: ${problems.get(id) ?? 'no signature'}`);
    throw new DocumentError(
      'ERR_BAD_SIGNATURE',
      `${WHAT}: signed by ${good.size} of ${trustedHex.size} trusted authorities, need ${need} (${why.join('; ')})`,
    );
  }
  if (now + skew < parsed.validAfter) {
    throw new DocumentError('ERR_DOCUMENT', `${WHAT}: outside its validity window: not valid until ${formatTime(parsed.validAfter)} (clock-skew tolerance ${skew / 1000} s)`);
  }
  if (now - skew > parsed.validUntil) {
    throw new DocumentError('ERR_DOCUMENT', `${WHAT}: outside its validity window: expired at ${formatTime(parsed.validUntil)} (clock-skew tolerance ${skew / 1000} s)`);
  }
  const { bodyText: _bodyText, ...consensus } = parsed;
  return { ...consensus, verifiedSigners };
}
