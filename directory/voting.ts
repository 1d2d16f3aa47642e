/**
 * The authority's part in the voting protocol (docs/protocol.md §9.5-§9.8):
 * every round it makes and uploads its vote, collects the other authorities'
 * votes (pushed to it, then pulled), computes the consensus from them, signs
 * it and exchanges signatures, and at valid-after publishes the consensus
 * with every signature it collected — if more than half of all authorities
 * signed. An authority that publishes nothing for a round (cut off, late,
 * or it computed a body the others did not sign) then downloads the
 * consensus from the others and serves the newest one a majority signed, so
 * it catches up as soon as it reaches one authority that published.
 *
 * Safety (§9.8): an authority signs at most one consensus body per round,
 * recorded on disk before its signature leaves the process, and only a body
 * it computed itself; it holds at most one vote per authority per round; it
 * never makes two different votes for one round (its own vote is stored
 * before it is uploaded and reused after a restart).
 *
 * Every request to another authority goes through voting-requests.ts and is
 * bounded by the time left in its phase; the votes and signatures held per
 * round, and the rules for admitting other authorities' ones, are in
 * voting-rounds.ts. This file keeps the timetable and this authority's own
 * actions: vote, compute, sign, publish, catch up.
 */
import { debuglog } from 'node:util';
import { fromHex, hex } from '../src/bytes.js';
import { AlliumError } from '../src/errors.js';
import {
  assembleConsensus,
  DEFAULT_CLOCK_SKEW_MS,
  encodeConsensusBody,
  MAX_CONSENSUS_BYTES,
  parseConsensus,
  verifyConsensus,
  type ConsensusAuthority,
} from '../src/netdoc/consensus.js';
import { bodyDigest } from '../src/netdoc/dir-signature.js';
import { encodeDetachedSignature, MAX_DETACHED_SIGNATURE_BYTES, verifyDetachedSignature } from '../src/netdoc/detached-signature.js';
import { b64, formatTime } from '../src/netdoc/text.js';
import { encodeVote, MAX_VOTE_BYTES, verifyVote, type Vote } from '../src/netdoc/vote.js';
import type { AuthorityKeys } from './authority-keys.js';
import type { AuthorityList, VotingSet } from './authority-list.js';
import { computeConsensus } from './consensus-algorithm.js';
import type { DataDir } from './data-dir.js';
import { compress, type Published } from './published.js';
import { getFromAuthority, postToAuthority, timeLeft } from './voting-requests.js';
import { RoundBook, type Answer, type Round } from './voting-rounds.js';
import { nextRound, roundTimes, type RoundTimes, type Timetable } from './voting-schedule.js';

export type { Answer } from './voting-rounds.js';

const log = debuglog('allium:directory');

export interface VotingOptions {
  keys: AuthorityKeys;
  timetable: Timetable;
  authorities: AuthorityList;
  dir: DataDir;
  now: () => number;
  /** This authority's `authority` line (its actual address and port). */
  self: () => ConsensusAuthority;
  /** This authority's unsigned vote for a round, made at the round's vote time. */
  makeVote: (times: RoundTimes) => Vote | Promise<Vote>;
  /** Runs from half a vote delay before the vote time until at most the vote time (e.g. lets reachability tests under way finish). */
  prepareVote?: (deadline: number) => Promise<void>;
  /** Clock-skew tolerance when checking other authorities' certificates; default 60 s. */
  clockSkewMs?: number;
  /** A stored consensus to serve until the first publication. */
  initial?: Published;
}

/** What happened in the last round, for the status page and tests. */
export interface RoundReport {
  validAfter: number;
  votes: number;
  signatures: number;
  authorities: number;
  /** Relays in the consensus computed, if one was. */
  relays?: number;
  published: boolean;
  /** Why nothing was published, if nothing was. */
  problem?: string;
  /** Nothing of its own was published, but the consensus the others published for this round was fetched and is served (§9.5, catching up). */
  fetched?: boolean;
}

const majority = (count: number, of: number): boolean => count * 2 > of;
/** Round reports kept for the status page and tests. */
const REPORTS_KEPT = 32;

export class Voting {
  readonly #opts: VotingOptions;
  readonly #skew: number;
  readonly #selfHex: string;
  readonly #rounds: RoundBook;
  #published: Published | undefined;
  #publishedValidAfter = -Infinity;
  readonly #reports: RoundReport[] = [];
  #closed = false;
  #loop: Promise<void> = Promise.resolve();
  #wake: (() => void) | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(opts: VotingOptions) {
    this.#opts = opts;
    this.#skew = opts.clockSkewMs ?? DEFAULT_CLOCK_SKEW_MS;
    this.#selfHex = hex(opts.keys.identity);
    this.#rounds = new RoundBook({
      timetable: opts.timetable,
      authorities: opts.authorities,
      dir: opts.dir,
      now: opts.now,
      skewMs: this.#skew,
      selfHex: this.#selfHex,
      onLateSignature: (round) => this.#publish(round, false),
    });
    this.#published = opts.initial;
    if (opts.initial !== undefined) {
      try {
        this.#publishedValidAfter = parseConsensus(opts.initial.text).validAfter;
      } catch {
        // a stored consensus that does not parse was already refused by the caller
      }
    }
  }

  /** The consensus being served, if any. */
  get published(): Published | undefined {
    return this.#published;
  }

  /** The outcome of the last round that reached its publication time. */
  get lastReport(): RoundReport | undefined {
    return this.#reports[this.#reports.length - 1];
  }

  /** The outcomes of the last REPORTS_KEPT rounds, oldest first. */
  get reports(): readonly RoundReport[] {
    return [...this.#reports];
  }

  /** Runs the rounds on the timetable until close(). */
  start(): void {
    this.#loop = this.#run().catch((error: unknown) => log('voting stopped: %s', (error as Error).message));
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#wake?.();
    await this.#loop;
  }

  // ---------------------------------------------------------------------------
  // The timetable

  async #run(): Promise<void> {
    while (!this.#closed) {
      const t = roundTimes(this.#opts.timetable, nextRound(this.#opts.timetable, this.#opts.now()));
      const round = this.#rounds.round(t.validAfter);
      await this.#sleepUntil(t.voteAt - Math.floor(this.#opts.timetable.voteDelayMs / 2));
      if (this.#closed) return;
      await this.#step('prepare', () => this.#opts.prepareVote?.(t.voteAt));
      await this.#sleepUntil(t.voteAt);
      if (this.#closed) return;
      const set = this.#opts.authorities.current();
      if (set === null) {
        log('round %s: the list of authorities is not known yet; not voting', formatTime(t.validAfter));
        await this.#sleepUntil(t.publishAt);
        continue;
      }
      await this.#step('vote', () => this.#vote(round, set));
      await this.#sleepUntil(t.fetchVotesAt);
      await this.#step('fetch votes', () => this.#fetchVotes(round));
      await this.#sleepUntil(t.computeAt);
      await this.#step('compute', () => this.#compute(round));
      await this.#sleepUntil(t.fetchSignaturesAt);
      await this.#step('fetch signatures', () => this.#fetchSignatures(round));
      await this.#sleepUntil(t.publishAt);
      if (this.#closed) return;
      this.#publish(round, true);
      if (this.#publishedValidAfter < t.validAfter) {
        // Nothing of its own for this round: the others may have published it (§9.5, catching up).
        await this.#sleepUntil(t.validAfter + Math.floor(this.#opts.timetable.distDelayMs / 2));
        await this.#step('catch up', () => this.#catchUp(t.validAfter + this.#opts.timetable.distDelayMs));
      }
      this.#rounds.prune(t.validAfter);
    }
  }

  async #step(what: string, run: () => Promise<void> | void): Promise<void> {
    if (this.#closed) return;
    try {
      await run();
    } catch (error) {
      log('%s failed: %s', what, (error as Error).message);
    }
  }

  #sleepUntil(at: number): Promise<void> {
    const ms = at - this.#opts.now();
    if (ms <= 0 || this.#closed) return Promise.resolve();
    return new Promise((resolve) => {
      this.#wake = resolve;
      this.#timer = setTimeout(resolve, ms);
    });
  }

  #timeLeft(until: number): number {
    return timeLeft(until, this.#opts.now());
  }

  // ---------------------------------------------------------------------------
  // Phases

  async #vote(round: Round, set: VotingSet): Promise<void> {
    const va = round.times.validAfter;
    let own = round.votes.get(this.#selfHex);
    if (own === undefined) {
      const vote = await this.#opts.makeVote(round.times);
      const text = encodeVote(vote, this.#opts.keys.signerFor(vote.validUntil));
      // Stored before it leaves: after a restart the same vote is reused, never a second one.
      this.#opts.dir.saveVote(va, this.#selfHex, text);
      own = { text, vote: verifyVote(text, this.#opts.now(), this.#skew) };
      round.votes.set(this.#selfHex, own);
    }
    const body = own.text;
    const timeoutMs = this.#timeLeft(round.times.fetchVotesAt);
    await Promise.all(set.peers.map((peer) => postToAuthority(peer, '/allium/v1/vote', body, 'vote upload', timeoutMs)));
  }

  async #fetchVotes(round: Round): Promise<void> {
    const set = this.#opts.authorities.current();
    if (set === null) return;
    const missing = [...set.identities].filter((id) => !round.votes.has(id));
    if (missing.length === 0) return;
    const timeoutMs = this.#timeLeft(round.times.computeAt);
    const va = round.times.validAfter / 1000;
    await Promise.all(
      missing.flatMap((id) =>
        set.peers.map(async (peer) => {
          const text = await getFromAuthority(peer, `/allium/v1/vote/${va}/${id}`, MAX_VOTE_BYTES, 'vote fetch', timeoutMs);
          if (text === undefined || round.votes.has(id)) return;
          const answer = this.#rounds.acceptVote(text, true);
          if (answer.status !== 200) log('vote of %s fetched from %s refused: %s', id.slice(0, 8), peer.url, answer.body.trim());
        }),
      ),
    );
  }

  async #compute(round: Round): Promise<void> {
    const set = this.#opts.authorities.current();
    if (set === null) return;
    const va = round.times.validAfter;
    const votes = [...round.votes].filter(([id]) => set.identities.has(id)).map(([, held]) => held.vote);
    if (!majority(votes.length, set.count)) {
      this.#report(round, set, `only ${votes.length} of ${set.count} votes; a consensus needs more than half`);
      log('round %s: only %d of %d votes, no consensus', formatTime(va), votes.length, set.count);
      return;
    }
    const consensus = computeConsensus(votes);
    const body = encodeConsensusBody(consensus);
    const digest = bodyDigest(body);
    const signed = this.#opts.dir.loadSigned(va);
    if (signed !== undefined && signed !== b64(digest)) {
      // This authority signed another body for this round before (a restart with other votes): never a second one.
      this.#report(round, set, 'already signed another consensus for this round');
      log('round %s: refusing to sign a second, different consensus', formatTime(va));
      return;
    }
    const signer = this.#opts.keys.signerFor(round.times.validUntil);
    this.#opts.dir.saveSigned(va, b64(digest));
    const doc = encodeDetachedSignature(va, digest, signer);
    round.body = body;
    round.relayCount = consensus.relays.length;
    round.digest = digest;
    round.ownSignature = doc;
    round.signatures.set(this.#selfHex, verifyDetachedSignature(doc, this.#opts.now(), this.#skew).line);
    for (const [id, early] of round.early) this.#rounds.addSignature(round, id, early);
    round.early.clear();
    log('round %s: computed a consensus of %d votes (%s)', formatTime(va), votes.length, b64(digest).slice(0, 12));
    const timeoutMs = this.#timeLeft(round.times.fetchSignaturesAt);
    await Promise.all(set.peers.map((peer) => postToAuthority(peer, '/allium/v1/signature', doc, 'signature upload', timeoutMs)));
  }

  async #fetchSignatures(round: Round): Promise<void> {
    const set = this.#opts.authorities.current();
    if (set === null || round.body === undefined) return;
    const timeoutMs = this.#timeLeft(round.times.publishAt);
    const va = round.times.validAfter / 1000;
    await Promise.all(
      set.peers
        .filter((peer) => !round.signatures.has(hex(peer.identity)))
        .map(async (peer) => {
          const text = await getFromAuthority(peer, `/allium/v1/signature/${va}`, MAX_DETACHED_SIGNATURE_BYTES, 'signature fetch', timeoutMs);
          if (text !== undefined) this.receiveSignature(text);
        }),
    );
  }

  /** Publishes the round's consensus if more than half of all authorities signed it. */
  #publish(round: Round, report: boolean): void {
    const set = this.#opts.authorities.current();
    if (set === null || round.body === undefined) {
      if (report && set !== null && this.lastReport?.validAfter !== round.times.validAfter) this.#report(round, set, 'no consensus computed');
      return;
    }
    const va = round.times.validAfter;
    if (va < this.#publishedValidAfter) return;
    const lines = [...round.signatures].filter(([id]) => set.identities.has(id)).sort(([a], [b]) => (a < b ? -1 : 1));
    if (!majority(lines.length, set.count)) {
      if (report) {
        this.#report(round, set, `only ${lines.length} of ${set.count} authorities signed`);
        log('round %s: only %d of %d signatures; keeping the previous consensus', formatTime(va), lines.length, set.count);
      }
      return;
    }
    const text = assembleConsensus(round.body, lines.map(([, line]) => line));
    if (this.#published?.text === text) return;
    this.#published = compress(text);
    this.#publishedValidAfter = va;
    round.published = true;
    this.#report(round, set);
    try {
      this.#opts.dir.saveConsensus(text);
    } catch (error) {
      log('could not store the consensus: %s', (error as Error).message);
    }
    log('round %s: published with %d of %d signatures', formatTime(va), lines.length, set.count);
  }

  /**
   * Downloads the consensus every other authority serves and serves the
   * newest one signed by a majority of the authorities (verified as a client
   * verifies it, §8.4) if it is newer than the one served here. It is stored
   * like one this authority published; nothing is signed. Requests end by
   * `until` (ms since the epoch).
   */
  async #catchUp(until: number): Promise<void> {
    const set = this.#opts.authorities.current();
    if (set === null || set.peers.length === 0) return;
    const trusted = [...set.identities].map(fromHex);
    const timeoutMs = this.#timeLeft(until);
    const texts = await Promise.all(set.peers.map((peer) => getFromAuthority(peer, '/allium/v1/consensus', MAX_CONSENSUS_BYTES, 'consensus fetch', timeoutMs)));
    let best: { text: string; validAfter: number } | undefined;
    for (const text of texts) {
      if (text === undefined) continue;
      try {
        const { validAfter } = verifyConsensus(text, trusted, this.#opts.now(), { clockSkewMs: this.#skew });
        if (validAfter > (best?.validAfter ?? this.#publishedValidAfter)) best = { text, validAfter };
      } catch (error) {
        log('a consensus fetched from another authority does not verify: %s', (error as Error).message);
      }
    }
    if (best === undefined || best.validAfter <= this.#publishedValidAfter) return;
    this.#published = compress(best.text);
    this.#publishedValidAfter = best.validAfter;
    const i = this.#reports.findIndex((r) => r.validAfter === best.validAfter);
    if (i >= 0) this.#reports[i] = { ...this.#reports[i]!, fetched: true };
    try {
      this.#opts.dir.saveConsensus(best.text);
    } catch (error) {
      log('could not store the consensus: %s', (error as Error).message);
    }
    log('round %s: serving the consensus the other authorities published', formatTime(best.validAfter));
  }

  #report(round: Round, set: VotingSet, problem?: string): void {
    const report: RoundReport = {
      validAfter: round.times.validAfter,
      votes: [...round.votes.keys()].filter((id) => set.identities.has(id)).length,
      signatures: [...round.signatures.keys()].filter((id) => set.identities.has(id)).length,
      authorities: set.count,
      ...(round.relayCount !== undefined ? { relays: round.relayCount } : {}),
      published: round.published,
      ...(problem !== undefined ? { problem } : {}),
    };
    const last = this.#reports[this.#reports.length - 1];
    if (last?.validAfter === report.validAfter) this.#reports[this.#reports.length - 1] = report;
    else this.#reports.push(report);
    if (this.#reports.length > REPORTS_KEPT) this.#reports.shift();
  }

  // ---------------------------------------------------------------------------
  // A lone authority on demand

  /**
   * A lone authority (it is the only one configured) runs a whole round now:
   * votes, computes, signs and publishes, for valid-after = now rounded down
   * to the second (or one second after the last one published). A test and
   * operations hook; voting authorities keep to the timetable (ERR_CONFIG).
   */
  async runLoneRound(): Promise<void> {
    const set = this.#opts.authorities.current();
    if (set === null || set.count !== 1) throw new AlliumError('ERR_CONFIG', 'only a lone authority can publish outside the timetable');
    const t = this.#opts.timetable;
    const va = Math.max(Math.floor(this.#opts.now() / 1000) * 1000, this.#publishedValidAfter + 1000);
    const times: RoundTimes = { ...roundTimes(t, va), freshUntil: va + t.intervalMs, validUntil: va + t.lifetimeMs };
    const round = this.#rounds.round(va);
    round.times = times;
    await this.#vote(round, set);
    await this.#compute(round);
    this.#publish(round, true);
  }

  // ---------------------------------------------------------------------------
  // What other authorities send

  /**
   * A vote uploaded by another authority (§9.2): 200 accepted or duplicate;
   * 400 malformed; 403 a signature or certificate that does not count, or a
   * voter that is not a configured authority; 409 not the round being voted
   * now, or a second, different vote by the same authority. Nothing changes
   * unless the answer is 200.
   */
  receiveVote(text: string): Answer {
    return this.#rounds.acceptVote(text, false);
  }

  /** A vote this authority holds (its own or another's), for `GET /allium/v1/vote/<round>/<identity>`. */
  getVote(validAfterSeconds: number, identityHex: string): Answer {
    return this.#rounds.getVote(validAfterSeconds, identityHex);
  }

  /**
   * A detached signature uploaded by another authority (§9.2): 200 accepted,
   * duplicate, or held until this authority has computed its consensus; 400
   * malformed; 403 a signature that does not count or a signer that is not a
   * configured authority; 409 a round this authority is not in, or a
   * signature over another consensus than the one it computed.
   */
  receiveSignature(text: string): Answer {
    return this.#rounds.receiveSignature(text);
  }

  /** This authority's detached signature for a round, for `GET /allium/v1/signature/<round>`. */
  getSignature(validAfterSeconds: number): Answer {
    return this.#rounds.getSignature(validAfterSeconds);
  }
}
