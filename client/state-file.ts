/**
 * The client's state file (docs/protocol.md §11.1): `<data dir>/state`, mode
 * 0600 in a 0700 directory, replaced atomically (write, then rename). It
 * keeps what must survive a restart: the guard sample and the confirmed
 * guards (./guard-set.ts), and recent circuit build times (./build-timeout.ts).
 *
 * JSON, version 1:
 *   {"version":1,
 *    "guards":[{"identity":"<64 hex>","nickname":"…","addedOn":<ms>,"confirmedOn":<ms>|null,"unlistedSince":<ms>|null}, …],
 *    "confirmed":["<64 hex>", …],
 *    "buildTimesMs":[<ms>, …]}
 * Unknown fields are ignored (a later version may add some); anything else
 * that does not fit is ERR_MALFORMED, and the client then starts afresh.
 */
import { chmodSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AlliumError, malformed } from '../src/errors.js';
import type { GuardRecord, GuardState } from './guard-set.js';

export const STATE_FILE = 'state';
/** A state file larger than this is refused, bytes. */
export const MAX_STATE_BYTES = 1024 * 1024;
const MAX_GUARDS = 1000;
const MAX_BUILD_TIMES = 1000;

export interface ClientState extends GuardState {
  /** Recent three-hop build times, ms, oldest first. */
  buildTimesMs: number[];
}

export const EMPTY_STATE: ClientState = Object.freeze({ guards: [], confirmed: [], buildTimesMs: [] }) as ClientState;

const HEX64 = /^[0-9a-f]{64}$/;
const NICKNAME = /^[A-Za-z0-9]{1,19}$/;

function isTime(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function parseGuard(v: unknown, i: number): GuardRecord {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw malformed(`state file: guard ${i} is not an object`);
  const o = v as Record<string, unknown>;
  if (typeof o['identity'] !== 'string' || !HEX64.test(o['identity'])) throw malformed(`state file: guard ${i}: bad identity`);
  if (typeof o['nickname'] !== 'string' || !NICKNAME.test(o['nickname'])) throw malformed(`state file: guard ${i}: bad nickname`);
  if (!isTime(o['addedOn'])) throw malformed(`state file: guard ${i}: bad addedOn`);
  if (o['confirmedOn'] !== null && !isTime(o['confirmedOn'])) throw malformed(`state file: guard ${i}: bad confirmedOn`);
  if (o['unlistedSince'] !== null && !isTime(o['unlistedSince'])) throw malformed(`state file: guard ${i}: bad unlistedSince`);
  return {
    identity: o['identity'],
    nickname: o['nickname'],
    addedOn: o['addedOn'],
    confirmedOn: o['confirmedOn'] as number | null,
    unlistedSince: o['unlistedSince'] as number | null,
  };
}

/** Parse a state file's text. Throws DecodeError ERR_MALFORMED (ERR_OVERSIZED past the limits). */
export function parseClientState(text: string): ClientState {
  if (text.length > MAX_STATE_BYTES) throw new AlliumError('ERR_OVERSIZED', 'state file too large');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw malformed('state file: not JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw malformed('state file: not an object');
  const o = value as Record<string, unknown>;
  if (o['version'] !== 1) throw malformed('state file: unknown version');
  const guardsIn = o['guards'] ?? [];
  const confirmedIn = o['confirmed'] ?? [];
  const timesIn = o['buildTimesMs'] ?? [];
  if (!Array.isArray(guardsIn) || guardsIn.length > MAX_GUARDS) throw malformed('state file: bad guards');
  if (!Array.isArray(confirmedIn) || confirmedIn.length > MAX_GUARDS) throw malformed('state file: bad confirmed');
  if (!Array.isArray(timesIn) || timesIn.length > MAX_BUILD_TIMES) throw malformed('state file: bad buildTimesMs');
  const guards = guardsIn.map(parseGuard);
  const ids = new Set(guards.map((g) => g.identity));
  if (ids.size !== guards.length) throw malformed('state file: a guard is listed twice');
  const confirmed: string[] = [];
  for (const id of confirmedIn) {
    if (typeof id !== 'string' || !ids.has(id) || confirmed.includes(id)) throw malformed('state file: bad confirmed entry');
    confirmed.push(id);
  }
  const buildTimesMs: number[] = [];
  for (const t of timesIn) {
    if (typeof t !== 'number' || !Number.isFinite(t) || t < 0 || t > 3600_000) throw malformed('state file: bad build time');
    buildTimesMs.push(t);
  }
  return { guards, confirmed, buildTimesMs };
}

/** The text of a state file (one JSON object and a newline). */
export function formatClientState(state: ClientState): string {
  return `${JSON.stringify({
    version: 1,
    guards: state.guards.map((g) => ({
      identity: g.identity,
      nickname: g.nickname,
      addedOn: g.addedOn,
      confirmedOn: g.confirmedOn,
      unlistedSince: g.unlistedSince,
    })),
    confirmed: state.confirmed,
    buildTimesMs: state.buildTimesMs.slice(-MAX_BUILD_TIMES).map((t) => Math.round(t)),
  })}\n`;
}

/** The client's data directory: created 0700; the state file in it is 0600. */
export class StateFile {
  readonly path: string;

  constructor(dataDir: string) {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    if (!statSync(dataDir).isDirectory()) throw new AlliumError('ERR_CONFIG', `${dataDir} is not a directory`);
    chmodSync(dataDir, 0o700);
    this.path = join(dataDir, STATE_FILE);
  }

  /**
   * The stored state; EMPTY_STATE when there is no file. A file that cannot
   * be read or parsed gives EMPTY_STATE and `problem` (the client logs it and
   * overwrites the file on its next save).
   */
  load(): { state: ClientState; problem?: string } {
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { state: EMPTY_STATE };
      return { state: EMPTY_STATE, problem: `cannot read ${this.path}: ${(error as Error).message}` };
    }
    try {
      return { state: parseClientState(text) };
    } catch (error) {
      return { state: EMPTY_STATE, problem: `ignoring ${this.path}: ${(error as Error).message}` };
    }
  }

  /** Replace the file atomically (mode 0600). Throws what fs throws. */
  save(state: ClientState): void {
    const tmp = `${this.path}.tmp-${process.pid}`;
    writeFileSync(tmp, formatClientState(state), { mode: 0o600 });
    chmodSync(tmp, 0o600);
    renameSync(tmp, this.path);
  }
}
