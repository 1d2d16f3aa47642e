/**
 * The vote (docs/protocol.md §8.7): one authority's view of the network for
 * one voting round — the relays it accepts with the flags it assigns, their
 * advertised and measured bandwidths, the network parameters it wants and the
 * consensus methods it can compute — signed with its signing key (§8.6).
 * Authorities exchange votes and each computes the consensus from them (§9.6).
 */
import { DocumentError } from '../errors.js';
import type { AuthoritySigner } from './authority-cert.js';
import { authorityLine, parseAuthorityArgs, type ConsensusAuthority } from './consensus.js';
import { bodyDigest, checkSignature, parseSignatureArgs, signatureLine, SIGNATURE_KEYWORD, type DirSignature } from './dir-signature.js';
import { formatParams, parseParams, type RawParams } from './params.js';
import { checkFlags, relayEntryLines, takeRelayEntry, type ConsensusRelay } from './relay-entry.js';
import { compareBytes, formatTime, malformedDoc, openDocument, parseTime, parseUint, type DocumentType } from './text.js';
import { MAX_BANDWIDTH } from './descriptor.js';

/** A relay as one authority votes it: `bandwidth` is the advertised bandwidth, `measured` the authority's own measurement, if any. */
export interface VoteRelay extends ConsensusRelay {
  /** Bytes per second measured by this authority (§9.4); absent if it has no measurement. */
  measured?: number;
}

export interface Vote {
  /** The consensus methods the voter can compute, ascending, distinct, including 1. */
  consensusMethods: number[];
  /** When the vote was made (ms, whole second). */
  published: number;
  /** The round: the valid-after time of the consensus this vote is for. */
  validAfter: number;
  freshUntil: number;
  validUntil: number;
  /** The flags this voter votes on, ASCII order; an entry may carry only these. */
  knownFlags: string[];
  /** The parameters the voter wants (§8.5), written as configured. */
  rawParams: RawParams;
  /** The voter. */
  authority: ConsensusAuthority;
  relays: VoteRelay[];
}

/** A parsed vote: the fields, its signed part, that part's SHA-256 and its one signature (not yet checked). */
export interface ParsedVote extends Vote {
  bodyText: string;
  digest: Uint8Array;
  signature: DirSignature;
}

export const VOTE_TYPE_LINE = '@type allium-vote 1';
/** A vote lists every relay its authority knows, so it may be as large as a consensus. */
export const MAX_VOTE_BYTES = 8 * 1024 * 1024;
export const MAX_VOTE_LINE = 4096;
/** Most consensus methods a vote may list. */
export const MAX_VOTE_METHODS = 64;

const WHAT = 'vote';
const FOOTER = 'directory-footer';
const VOTE: DocumentType = {
  what: WHAT,
  typeLine: VOTE_TYPE_LINE,
  maxBytes: MAX_VOTE_BYTES,
  maxLine: MAX_VOTE_LINE,
  keywords: new Set([
    'consensus-methods',
    'published',
    'valid-after',
    'fresh-until',
    'valid-until',
    'known-flags',
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
    FOOTER,
    SIGNATURE_KEYWORD,
  ]),
};

function checkMethods(methods: readonly number[]): void {
  if (methods.length < 1 || methods.length > MAX_VOTE_METHODS) throw malformedDoc(WHAT, `consensus-methods needs 1..${MAX_VOTE_METHODS} methods`);
  let last = 0;
  for (const m of methods) {
    if (!Number.isInteger(m) || m < 1 || m > 0x7fff_ffff) throw malformedDoc(WHAT, 'consensus method must be 1..2147483647');
    if (m <= last) throw malformedDoc(WHAT, 'consensus-methods not ascending or repeated');
    last = m;
  }
  if (methods[0] !== 1) throw malformedDoc(WHAT, 'consensus-methods must include method 1');
}

function checkVoteTimes(v: { published: number; validAfter: number; freshUntil: number; validUntil: number }): void {
  if (!(v.validAfter < v.freshUntil && v.freshUntil <= v.validUntil)) {
    throw malformedDoc(WHAT, 'times must satisfy valid-after < fresh-until ≤ valid-until');
  }
  if (v.published > v.validAfter) throw malformedDoc(WHAT, 'published after valid-after');
}

function relayKnows(relay: VoteRelay, known: ReadonlySet<string>): void {
  for (const f of relay.flags) if (!known.has(f)) throw malformedDoc(WHAT, `flag ${f} is not in known-flags`);
}

/**
 * Encodes the signed part of a vote, up to and including `directory-footer\n`.
 * Relays are written sorted by identity; duplicates, flags outside
 * `knownFlags` and fields the grammar cannot carry are refused
 * (DocumentError ERR_MALFORMED; ERR_OVERSIZED for a long line).
 */
export function encodeVoteBody(vote: Vote): string {
  checkMethods(vote.consensusMethods);
  checkVoteTimes(vote);
  checkFlags(vote.knownFlags, WHAT);
  let times: string[];
  try {
    times = [vote.published, vote.validAfter, vote.freshUntil, vote.validUntil].map(formatTime);
  } catch {
    throw malformedDoc(WHAT, 'times must be whole seconds');
  }
  const out = [
    VOTE_TYPE_LINE,
    `consensus-methods ${vote.consensusMethods.join(' ')}`,
    `published ${times[0]}`,
    `valid-after ${times[1]}`,
    `fresh-until ${times[2]}`,
    `valid-until ${times[3]}`,
    vote.knownFlags.length === 0 ? 'known-flags' : `known-flags ${vote.knownFlags.join(' ')}`,
    ['params', ...formatParams(vote.rawParams, WHAT)].join(' '),
    authorityLine(vote.authority, WHAT),
  ];
  const known = new Set(vote.knownFlags);
  const relays = [...vote.relays].sort((a, b) => compareBytes(a.identity, b.identity));
  relays.forEach((r, i) => {
    if (i > 0 && compareBytes(relays[i - 1]!.identity, r.identity) === 0) throw malformedDoc(WHAT, 'duplicate relay');
    relayKnows(r, known);
    if (r.measured !== undefined) parseUint(String(r.measured), MAX_BANDWIDTH, WHAT);
    for (const line of relayEntryLines(r, WHAT, r.measured === undefined ? [] : [['Measured', r.measured]])) out.push(line);
  });
  out.push(FOOTER);
  for (const l of out) if (l.length > MAX_VOTE_LINE) throw new DocumentError('ERR_OVERSIZED', `${WHAT}: a line longer than ${MAX_VOTE_LINE}`);
  return `${out.join('\n')}\n`;
}

/** Encodes and signs a vote. The signer must be the vote's authority (else DocumentError ERR_MALFORMED). */
export function encodeVote(vote: Vote, signer: AuthoritySigner): string {
  if (compareBytes(signer.cert.identity, vote.authority.identity) !== 0) throw malformedDoc(WHAT, 'the signer is not the voting authority');
  const body = encodeVoteBody(vote);
  const text = body + signatureLine(bodyDigest(body), signer);
  if (text.length > MAX_VOTE_BYTES) throw new DocumentError('ERR_OVERSIZED', `${WHAT}: larger than ${MAX_VOTE_BYTES} bytes`);
  return text;
}

/**
 * Grammar only (no signature checked, no clock read): every known keyword
 * once in the order of §8.7, relays sorted by identity, flags within
 * known-flags, exactly one `directory-signature` whose certificate names the
 * `authority`. Unknown lines are skipped where §8.1 allows them.
 * Throws DocumentError ERR_MALFORMED / ERR_OVERSIZED.
 */
export function parseVote(text: string): ParsedVote {
  const c = openDocument(text, VOTE);
  const consensusMethods = c.take('consensus-methods').map((m) => parseUint(m, 0x7fff_ffff, WHAT));
  checkMethods(consensusMethods);
  const published = parseTime(c.take('published', 2).join(' '), WHAT);
  const validAfter = parseTime(c.take('valid-after', 2).join(' '), WHAT);
  const freshUntil = parseTime(c.take('fresh-until', 2).join(' '), WHAT);
  const validUntil = parseTime(c.take('valid-until', 2).join(' '), WHAT);
  checkVoteTimes({ published, validAfter, freshUntil, validUntil });
  const knownFlags = c.take('known-flags');
  checkFlags(knownFlags, WHAT);
  const known = new Set(knownFlags);
  const rawParams = parseParams(c.take('params'), WHAT);
  const authority = parseAuthorityArgs(c.take('authority', 4), WHAT);
  const relays: VoteRelay[] = [];
  while (c.peekKeyword() === 'r') {
    const { relay, wExtras } = takeRelayEntry(c, WHAT);
    const vr: VoteRelay = relay;
    const measured = wExtras.get('Measured');
    if (measured !== undefined) {
      if (measured > MAX_BANDWIDTH) throw malformedDoc(WHAT, 'Measured out of range');
      vr.measured = measured;
    }
    relayKnows(vr, known);
    const prev = relays[relays.length - 1];
    if (prev !== undefined && compareBytes(prev.identity, vr.identity) >= 0) throw malformedDoc(WHAT, 'relays not sorted by identity or repeated');
    relays.push(vr);
  }
  c.take(FOOTER, 0);
  const bodyEnd = c.offset;
  c.forbidUnknown();
  const signature = parseSignatureArgs(c.take(SIGNATURE_KEYWORD), WHAT);
  if (!c.done) throw malformedDoc(WHAT, 'a vote has exactly one directory-signature and nothing after it');
  if (compareBytes(signature.identity, authority.identity) !== 0) throw malformedDoc(WHAT, 'signed by another authority than the one voting');
  const bodyText = text.slice(0, bodyEnd);
  return {
    consensusMethods,
    published,
    validAfter,
    freshUntil,
    validUntil,
    knownFlags,
    rawParams,
    authority,
    relays,
    bodyText,
    digest: bodyDigest(bodyText),
    signature,
  };
}

/**
 * Parses a vote and checks its signature (§8.6) at `now` with `skewMs` of
 * tolerance. Throws DocumentError ERR_MALFORMED / ERR_OVERSIZED (grammar) or
 * ERR_BAD_SIGNATURE naming why the signature does not count. Whether the
 * voter is a configured authority is the caller's question.
 */
export function verifyVote(text: string, now: number, skewMs: number): ParsedVote {
  const vote = parseVote(text);
  const check = checkSignature(vote.signature, vote.digest, now, skewMs);
  if (!check.ok) throw new DocumentError('ERR_BAD_SIGNATURE', `${WHAT}: ${check.reason}`);
  return vote;
}
