/**
 * The votes and signatures an authority holds per voting round, and the rules
 * for admitting the ones other authorities send (docs/protocol.md §9.2,
 * §9.8): at most one vote per authority per round, stored before it counts;
 * only votes for the round open now (or, when pulled, a round under way);
 * only signatures over the body this authority computed, held until it has
 * computed one. The timetable and this authority's own actions are in
 * voting.ts.
 */
import { debuglog } from 'node:util';
import { hex } from '../src/bytes.js';
import { AlliumError, DocumentError } from '../src/errors.js';
import { verifyDetachedSignature, type DetachedSignature } from '../src/netdoc/detached-signature.js';
import { b64, formatTime } from '../src/netdoc/text.js';
import { verifyVote, type ParsedVote } from '../src/netdoc/vote.js';
import type { AuthorityList } from './authority-list.js';
import type { DataDir } from './data-dir.js';
import { acceptsVotes, roundTimes, type RoundTimes, type Timetable } from './voting-schedule.js';

const log = debuglog('allium:directory');

/** An HTTP answer: status and a short text body. */
export interface Answer {
  status: number;
  body: string;
}

export interface HeldVote {
  text: string;
  vote: ParsedVote;
}

export interface Round {
  times: RoundTimes;
  /** Votes held, by authority identity (hex). */
  votes: Map<string, HeldVote>;
  /** The consensus body this authority computed and signed, and its SHA-256. */
  body?: string;
  relayCount?: number;
  digest?: Uint8Array;
  /** Signature lines over `body`, by authority identity (hex), this authority's included. */
  signatures: Map<string, string>;
  /** Signatures that arrived before `body` was computed (at most one per authority). */
  early: Map<string, DetachedSignature>;
  /** This authority's detached signature document. */
  ownSignature?: string;
  published: boolean;
}

export interface RoundBookOptions {
  timetable: Timetable;
  authorities: AuthorityList;
  dir: DataDir;
  now: () => number;
  /** Clock-skew tolerance when checking other authorities' certificates, ms. */
  skewMs: number;
  /** This authority's identity (hex). */
  selfHex: string;
  /** Called when a signature is added to a round already published (it is then served with it). */
  onLateSignature: (round: Round) => void;
}

/** The rounds under way, by valid-after (ms since the epoch). */
export class RoundBook {
  readonly #opts: RoundBookOptions;
  readonly #rounds = new Map<number, Round>();

  constructor(opts: RoundBookOptions) {
    this.#opts = opts;
  }

  /** The round with this valid-after, made (with the votes stored for it by an earlier run) if new. */
  round(validAfter: number): Round {
    let round = this.#rounds.get(validAfter);
    if (round === undefined) {
      round = { times: roundTimes(this.#opts.timetable, validAfter), votes: new Map(), signatures: new Map(), early: new Map(), published: false };
      this.#rounds.set(validAfter, round);
      this.#restoreVotes(round);
    }
    return round;
  }

  /** Votes stored by an earlier run of this authority for this round (its own included). */
  #restoreVotes(round: Round): void {
    for (const [id, text] of this.#opts.dir.loadVotes(round.times.validAfter)) {
      try {
        const vote = verifyVote(text, this.#opts.now(), this.#opts.skewMs);
        if (hex(vote.authority.identity) === id && vote.validAfter === round.times.validAfter) round.votes.set(id, { text, vote });
      } catch (error) {
        log('ignoring a stored vote: %s', (error as Error).message);
      }
    }
  }

  /** Forgets rounds older than one interval before `validAfter`, and stored rounds older than a consensus lifetime. */
  prune(validAfter: number): void {
    const keepFrom = validAfter - this.#opts.timetable.intervalMs;
    for (const va of this.#rounds.keys()) if (va < keepFrom) this.#rounds.delete(va);
    try {
      this.#opts.dir.pruneRounds(validAfter - this.#opts.timetable.lifetimeMs);
    } catch (error) {
      log('could not prune stored rounds: %s', (error as Error).message);
    }
  }

  /**
   * A vote sent by another authority (uploaded, or `pulled` by this one): see
   * Voting.receiveVote for the answers. Nothing changes unless it is 200.
   */
  acceptVote(text: string, pulled: boolean): Answer {
    let vote: ParsedVote;
    try {
      vote = verifyVote(text, this.#opts.now(), this.#opts.skewMs);
    } catch (error) {
      return refusal(error);
    }
    const id = hex(vote.authority.identity);
    const set = this.#opts.authorities.current();
    if (set === null || !set.identities.has(id)) return { status: 403, body: 'not a configured authority\n' };
    const va = vote.validAfter;
    const round = this.#rounds.get(va);
    const open = acceptsVotes(this.#opts.timetable, va, this.#opts.now());
    if (!(pulled ? round !== undefined : open)) return { status: 409, body: `not accepting votes for ${formatTime(va)} now\n` };
    const t = roundTimes(this.#opts.timetable, va);
    if (vote.freshUntil !== t.freshUntil || vote.validUntil !== t.validUntil) {
      return { status: 409, body: 'times do not follow the timetable (voting interval and consensus lifetime must match)\n' };
    }
    const target = round ?? this.round(va);
    const held = target.votes.get(id);
    if (held !== undefined) {
      if (held.text === text) return { status: 200, body: 'duplicate\n' };
      log('authority %s sent a second, different vote for %s; keeping the first', id.slice(0, 8), formatTime(va));
      return { status: 409, body: 'a different vote by this authority is already held for this round\n' };
    }
    if (id === this.#opts.selfHex) return { status: 409, body: 'this authority makes its own vote\n' };
    try {
      this.#opts.dir.saveVote(va, id, text);
    } catch (error) {
      log('could not store a vote: %s', (error as Error).message);
    }
    target.votes.set(id, { text, vote });
    return { status: 200, body: 'accepted\n' };
  }

  /** A vote held (this authority's own or another's); see Voting.getVote. */
  getVote(validAfterSeconds: number, identityHex: string): Answer {
    const held = this.#rounds.get(validAfterSeconds * 1000)?.votes.get(identityHex);
    return held === undefined ? { status: 404, body: 'no such vote held\n' } : { status: 200, body: held.text };
  }

  /** A detached signature sent by another authority; see Voting.receiveSignature for the answers. */
  receiveSignature(text: string): Answer {
    let sig: DetachedSignature;
    try {
      sig = verifyDetachedSignature(text, this.#opts.now(), this.#opts.skewMs);
    } catch (error) {
      return refusal(error);
    }
    const id = hex(sig.signature.identity);
    const set = this.#opts.authorities.current();
    if (set === null || !set.identities.has(id)) return { status: 403, body: 'not a configured authority\n' };
    const round = this.#rounds.get(sig.validAfter);
    if (round === undefined) return { status: 409, body: `no round ${formatTime(sig.validAfter)} under way here\n` };
    if (round.digest === undefined) {
      if (id === this.#opts.selfHex) return { status: 409, body: 'this authority makes its own signature\n' };
      round.early.set(id, sig);
      return { status: 200, body: 'held\n' };
    }
    return this.addSignature(round, id, sig);
  }

  /** Adds a signature over the round's computed body (`round.digest` set); 409 if it is over another body. */
  addSignature(round: Round, id: string, sig: DetachedSignature): Answer {
    if (b64(sig.digest) !== b64(round.digest!)) return { status: 409, body: 'a signature over another consensus than the one computed here\n' };
    const held = round.signatures.get(id);
    if (held !== undefined) return { status: 200, body: 'duplicate\n' };
    round.signatures.set(id, sig.line);
    // A signature that arrives after publication is added to what is served.
    if (round.published) this.#opts.onLateSignature(round);
    return { status: 200, body: 'accepted\n' };
  }

  /** This authority's detached signature for a round; see Voting.getSignature. */
  getSignature(validAfterSeconds: number): Answer {
    const doc = this.#rounds.get(validAfterSeconds * 1000)?.ownSignature;
    return doc === undefined ? { status: 404, body: 'no signature for that round\n' } : { status: 200, body: doc };
  }
}

/** The answer for a document that failed to parse or verify. */
function refusal(error: unknown): Answer {
  const message = (error as Error).message;
  if (error instanceof DocumentError && error.code === 'ERR_BAD_SIGNATURE') return { status: 403, body: `${message}\n` };
  if (error instanceof AlliumError) return { status: 400, body: `${message}\n` };
  throw error;
}
