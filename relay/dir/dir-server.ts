/**
 * The relay's directory handler for BEGIN_DIR streams (docs/protocol.md §6.5):
 * one HTTP/1.0 request per stream, answered from a table of fixed paths, then
 * the stream is ended. By default the only document is the relay's own
 * signed descriptor at `/allium/v1/descriptor/self`, and the bandwidth-test
 * document authorities measure it with (src/dirclient/bandwidth-test.ts).
 *
 * Bounded: the request head is at most 8 KiB and must arrive within 10 s;
 * a request body is not read. Answers: 200 (GET or HEAD of a known path),
 * 404 (unknown path), 405 (another method), 400 (not an HTTP request line),
 * 431 (head too large), 408 (too slow; then the stream is ended).
 */
import type { Duplex } from 'node:stream';
import { debuglog } from 'node:util';
import type { DirectoryHandler } from '../relay-circuit.js';
import { BANDWIDTH_TEST_BYTES, BANDWIDTH_TEST_PATH } from '../../src/dirclient/bandwidth-test.js';

const log = debuglog('allium:dir');

/** The longest request head (request line and headers) the handler reads. */
export const DIR_MAX_REQUEST_BYTES = 8 * 1024;
/** How long a directory stream may take to send its request head. */
export const DIR_REQUEST_TIMEOUT_MS = 10_000;
/** Where the relay serves its own descriptor. */
export const DIR_SELF_DESCRIPTOR_PATH = '/allium/v1/descriptor/self';

/** A document body, with its gzip form when the server has one. */
export interface DirBody {
  text: string | Uint8Array;
  gzip?: Uint8Array;
}

/** A document the handler serves: its text (or body) now, or null if it has none (404). */
export type DirDocument = () => string | DirBody | null;

/** Whether a request head's Accept-Encoding lists gzip with a non-zero weight. */
export function acceptsGzip(head: string): boolean {
  for (const line of head.split(/\r?\n/).slice(1)) {
    const colon = line.indexOf(':');
    if (colon < 0 || line.slice(0, colon).trim().toLowerCase() !== 'accept-encoding') continue;
    for (const item of line.slice(colon + 1).split(',')) {
      const [name, ...params] = item.trim().toLowerCase().split(';');
      if (name?.trim() !== 'gzip') continue;
      const q = params.map((p) => /^\s*q\s*=\s*([0-9.]+)\s*$/.exec(p)?.[1]).find((v) => v !== undefined);
      return q === undefined || Number(q) > 0;
    }
  }
  return false;
}

const STATUS_TEXT: Record<number, string> = {
  200: 'OK',
  400: 'Bad Request',
  404: 'Not Found',
  405: 'Method Not Allowed',
  408: 'Request Timeout',
  431: 'Request Header Fields Too Large',
};

const REQUEST_LINE = /^([A-Z]{1,16}) (\/[\x21-\x7e]{0,2048}) HTTP\/1\.[01]$/;

/** A parsed request head, or the status to refuse it with. */
export type DirRequest = { method: string; path: string } | { status: number };

/**
 * Parse the request line of an HTTP/1.x request head (`head` without the
 * blank line). Pure; never throws.
 */
export function parseDirRequest(head: string): DirRequest {
  const line = head.split(/\r?\n/, 1)[0] ?? '';
  const match = REQUEST_LINE.exec(line);
  if (match === null) return { status: 400 };
  return { method: match[1]!, path: match[2]! };
}

/**
 * A DirectoryHandler serving `documents` (path → text). Each stream carries
 * one request; the answer is written and the stream ended. `timeoutMs`
 * bounds the wait for the request head (default DIR_REQUEST_TIMEOUT_MS).
 */
export function serveDirectory(
  documents: ReadonlyMap<string, DirDocument>,
  opts: { timeoutMs?: number; /** Documents under path prefixes (a path not in `documents`): undefined if none matches. */ dynamic?: (path: string) => DirDocument | undefined } = {},
): DirectoryHandler {
  const timeoutMs = opts.timeoutMs ?? DIR_REQUEST_TIMEOUT_MS;
  return (stream: Duplex) => {
    let head = Buffer.alloc(0);
    let done = false;
    const timer = setTimeout(() => answer(408, null), timeoutMs);
    const answer = (status: number, body: string | DirBody | null, headOnly = false, gzip = false) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      stream.off('data', onData);
      const doc: DirBody = body === null ? { text: STATUS_TEXT[status] ?? '' } : typeof body === 'string' ? { text: body } : body;
      const compressed = gzip && doc.gzip !== undefined;
      const raw = compressed ? doc.gzip! : doc.text;
      const bytes = typeof raw === 'string' ? Buffer.from(raw, 'utf8') : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
      const lines = [
        `HTTP/1.0 ${status} ${STATUS_TEXT[status] ?? ''}`,
        'Content-Type: text/plain; charset=utf-8',
        ...(compressed ? ['Content-Encoding: gzip'] : []),
        `Content-Length: ${bytes.length}`,
        ...(status === 405 ? ['Allow: GET, HEAD'] : []),
        '',
        '',
      ];
      stream.end(headOnly ? lines.join('\r\n') : Buffer.concat([Buffer.from(lines.join('\r\n'), 'latin1'), bytes]));
    };
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) {
        if (head.length > DIR_MAX_REQUEST_BYTES) answer(431, null);
        return;
      }
      if (end > DIR_MAX_REQUEST_BYTES) {
        answer(431, null);
        return;
      }
      const headText = head.subarray(0, end).toString('latin1');
      const request = parseDirRequest(headText);
      if ('status' in request) {
        answer(request.status, null);
        return;
      }
      const document = documents.get(request.path) ?? opts.dynamic?.(request.path);
      const text = document === undefined ? null : document();
      if (text === null) answer(404, null);
      else if (request.method !== 'GET' && request.method !== 'HEAD') answer(405, null);
      else answer(200, text, request.method === 'HEAD', acceptsGzip(headText));
    };
    stream.on('data', onData);
    stream.on('error', (error: Error) => log('directory stream failed: %s', error.message));
    stream.once('close', () => {
      done = true;
      clearTimeout(timer);
    });
  };
}

/** The bandwidth-test body: made once, served to every request. */
let bandwidthTestBody: string | undefined;

/** Where a relay serves the consensus it caches (§6.5). */
export const DIR_CONSENSUS_PATH = '/allium/v1/consensus';
/** Where it serves a diff from an earlier consensus (§8.9): the prefix, then the 64 hex digits of that consensus's SHA-256. */
export const DIR_CONSENSUS_DIFF_PREFIX = '/allium/v1/consensus-diff/';
const DIFF_PATH = /^\/allium\/v1\/consensus-diff\/([0-9a-f]{64})$/;

/**
 * The relay's default directory: its own signed descriptor at
 * DIR_SELF_DESCRIPTOR_PATH, the bandwidth-test document (§9.4), and — when
 * it caches one — the consensus at DIR_CONSENSUS_PATH (gzip if asked for)
 * and diffs to it from recent ones under DIR_CONSENSUS_DIFF_PREFIX (§8.9).
 */
export function relayDirectory(
  descriptor: () => string,
  consensus: () => DirBody | null = () => null,
  /** The diff from the consensus whose SHA-256 is the given hex to the current one, or null (404). */
  diffFrom: (digestHex: string) => DirBody | null = () => null,
): DirectoryHandler {
  return serveDirectory(
    new Map<string, DirDocument>([
      [DIR_SELF_DESCRIPTOR_PATH, descriptor],
      [BANDWIDTH_TEST_PATH, () => (bandwidthTestBody ??= 'x'.repeat(BANDWIDTH_TEST_BYTES))],
      [DIR_CONSENSUS_PATH, consensus],
    ]),
    {
      dynamic: (path) => {
        const m = DIFF_PATH.exec(path);
        return m === null ? undefined : () => diffFrom(m[1]!);
      },
    },
  );
}
