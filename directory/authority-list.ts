/**
 * The authorities that vote together (docs/protocol.md §9.5): each one's
 * URL and identity, this authority included. Given either as a fixed list or
 * as a file of `URL#IDENTITYHEX` lines (the lines `allium authority keygen`
 * prints), which is re-read whenever it changes, so a testnet can write it
 * once every authority is up.
 */
import { readFileSync, statSync } from 'node:fs';
import { debuglog } from 'node:util';
import { equalBytes, fromHex, hex } from '../src/bytes.js';
import { AlliumError } from '../src/errors.js';

const log = debuglog('allium:directory');

/** One authority as configured: where to reach it and its identity key. */
export interface AuthorityRef {
  url: string;
  identity: Uint8Array;
}

/** At most this many authorities vote together (a consensus lists at most 32, §8.4). */
export const MAX_VOTING_AUTHORITIES = 32;

/** `http://HOST:PORT#<64 hex digits>` → an AuthorityRef. Throws AlliumError ERR_CONFIG. */
export function parseAuthorityRefLine(line: string): AuthorityRef {
  const hash = line.lastIndexOf('#');
  const idText = line.slice(hash + 1);
  let url: URL;
  try {
    url = new URL(line.slice(0, hash));
  } catch {
    throw new AlliumError('ERR_CONFIG', `not URL#IDENTITYHEX: ${JSON.stringify(line.slice(0, 100))}`);
  }
  if (hash < 0 || url.protocol !== 'http:' || !/^[0-9a-fA-F]{64}$/.test(idText)) {
    throw new AlliumError('ERR_CONFIG', `not http://HOST:PORT#<64 hex digits>: ${JSON.stringify(line.slice(0, 100))}`);
  }
  return { url: url.origin, identity: fromHex(idText) };
}

/**
 * The authorities of an authorities file: one `URL#IDENTITYHEX` per line;
 * blank lines and lines starting with `#` are ignored. Throws AlliumError
 * ERR_CONFIG for a bad line, a repeated identity or too many authorities.
 */
export function parseAuthoritiesFile(text: string): AuthorityRef[] {
  const out: AuthorityRef[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const ref = parseAuthorityRefLine(line);
    if (out.some((r) => equalBytes(r.identity, ref.identity))) throw new AlliumError('ERR_CONFIG', `authority ${hex(ref.identity)} listed twice`);
    out.push(ref);
  }
  if (out.length > MAX_VOTING_AUTHORITIES) throw new AlliumError('ERR_CONFIG', `more than ${MAX_VOTING_AUTHORITIES} authorities`);
  return out;
}

/** The voting authorities as known now. */
export interface VotingSet {
  /** Every voting authority's identity (hex), this one included. */
  readonly identities: ReadonlySet<string>;
  /** The others, with their URLs. */
  readonly peers: readonly AuthorityRef[];
  /** How many authorities vote: the majority is more than half of this. */
  readonly count: number;
}

/**
 * The configured authorities. With a file, `current()` re-reads it when it
 * changed and is null until it exists (so the authority does not vote alone
 * while a testnet is still writing it); a file that cannot be parsed keeps
 * the last good list.
 */
export class AuthorityList {
  readonly #self: Uint8Array;
  readonly #file: string | undefined;
  #set: VotingSet | null;
  #stamp = '';

  constructor(self: Uint8Array, opts: { authorities?: readonly AuthorityRef[]; file?: string }) {
    this.#self = self;
    this.#file = opts.file;
    this.#set = opts.file === undefined ? this.#make(opts.authorities ?? []) : null;
  }

  current(): VotingSet | null {
    if (this.#file !== undefined) this.#reload(this.#file);
    return this.#set;
  }

  #make(list: readonly AuthorityRef[]): VotingSet {
    const peers = list.filter((a) => !equalBytes(a.identity, this.#self));
    const identities = new Set([hex(this.#self), ...peers.map((p) => hex(p.identity))]);
    if (identities.size > MAX_VOTING_AUTHORITIES) throw new AlliumError('ERR_CONFIG', `more than ${MAX_VOTING_AUTHORITIES} authorities`);
    return { identities, peers, count: identities.size };
  }

  #reload(file: string): void {
    let stamp: string;
    try {
      const st = statSync(file);
      stamp = `${st.ino}:${st.mtimeMs}:${st.size}`;
    } catch {
      return;
    }
    if (stamp === this.#stamp) return;
    this.#stamp = stamp;
    try {
      this.#set = this.#make(parseAuthoritiesFile(readFileSync(file, 'utf8')));
      log('authorities file: %d authorities', this.#set.count);
    } catch (error) {
      log('ignoring authorities file %s: %s', file, (error as Error).message);
    }
  }
}
