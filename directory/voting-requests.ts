/**
 * The requests one authority makes to another while voting (docs/protocol.md
 * §9.2): uploads and downloads through src/dirclient/http.ts, each bounded by
 * the time left in its phase. Failures are logged and swallowed: a round goes
 * on with what arrived.
 */
import { debuglog } from 'node:util';
import { dirRequest } from '../src/dirclient/http.js';
import type { AuthorityRef } from './authority-list.js';

const log = debuglog('allium:directory');

const MIN_REQUEST_MS = 50;
const MAX_REQUEST_MS = 10_000;

/** The timeout for a request that must end by `until` (ms since the epoch): 50 ms to 10 s. */
export function timeLeft(until: number, now: number): number {
  return Math.min(MAX_REQUEST_MS, Math.max(MIN_REQUEST_MS, until - now));
}

/** POSTs `body` to `path` at another authority; the answer (at most 4096 bytes) is not used. */
export async function postToAuthority(peer: AuthorityRef, path: string, body: string, what: string, timeoutMs: number): Promise<void> {
  try {
    await dirRequest(new URL(path, peer.url), { what, method: 'POST', body, maxBodyBytes: 4096, timeoutMs });
  } catch (error) {
    log('%s to %s failed: %s', what, peer.url, (error as Error).message);
  }
}

/** GETs `path` from another authority: its body as UTF-8 text, or undefined on any failure (a 404 is not logged). */
export async function getFromAuthority(peer: AuthorityRef, path: string, maxBodyBytes: number, what: string, timeoutMs: number): Promise<string | undefined> {
  try {
    const bytes = await dirRequest(new URL(path, peer.url), { what, maxBodyBytes, timeoutMs, acceptGzip: true });
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch (error) {
    const status = (error as { status?: number }).status;
    if (status !== 404) log('%s from %s failed: %s', what, peer.url, (error as Error).message);
    return undefined;
  }
}
