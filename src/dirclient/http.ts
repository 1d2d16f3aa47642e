/**
 * The one HTTP client for directory requests (docs/protocol.md §9.2):
 * relays uploading descriptors and clients fetching the consensus.
 *
 * Every request is bounded: a whole-request time limit, a cap on the answer's
 * body before and after decompression, and one fresh connection per request
 * (no keep-alive: a pooled socket reused by a periodic refetch collected
 * listeners). Only `200` is success. Failures are AlliumErrors:
 * - ERR_TIMEOUT: the time limit ran out;
 * - ERR_OVERSIZED: the body (as sent or decompressed) exceeds the cap;
 * - ERR_MALFORMED: an unknown or broken Content-Encoding;
 * - ERR_DOCUMENT (`HttpStatusError`, with `status`): an answer other than 200;
 * - ERR_LINK_CLOSED: the connection failed or closed before the answer was complete.
 */
import { request, type IncomingMessage } from 'node:http';
import { gunzipSync } from 'node:zlib';
import { AlliumError } from '../errors.js';

export const DEFAULT_DIR_TIMEOUT_MS = 10_000;

/** The server answered with a status other than 200. */
export class HttpStatusError extends AlliumError {
  readonly status: number;
  constructor(status: number, message: string) {
    super('ERR_DOCUMENT', message);
    this.name = 'HttpStatusError';
    this.status = status;
  }
}

export interface DirRequestOptions {
  /** Default GET; POST sends `body`. */
  method?: 'GET' | 'POST';
  /** The request body for POST, sent as `text/plain; charset=utf-8`. */
  body?: string;
  /** Largest answer body accepted, in bytes, before and after decompression. */
  maxBodyBytes: number;
  /** Whole-request time limit in ms (connect to last byte); default 10 s. */
  timeoutMs?: number;
  /** Ask for and accept `Content-Encoding: gzip`. */
  acceptGzip?: boolean;
  /** What the request is, for error messages (e.g. "consensus fetch"). */
  what: string;
}

function decode(res: IncomingMessage, body: Buffer, opts: DirRequestOptions): Uint8Array {
  const encoding = res.headers['content-encoding'];
  if (encoding === undefined || encoding === 'identity') return new Uint8Array(body);
  if (encoding !== 'gzip' || opts.acceptGzip !== true) {
    throw new AlliumError('ERR_MALFORMED', `${opts.what}: unexpected Content-Encoding ${JSON.stringify(encoding.slice(0, 40))}`);
  }
  try {
    return new Uint8Array(gunzipSync(body, { maxOutputLength: opts.maxBodyBytes }));
  } catch (cause) {
    if ((cause as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new AlliumError('ERR_OVERSIZED', `${opts.what}: body larger than ${opts.maxBodyBytes} bytes after decompression`, { cause });
    }
    throw new AlliumError('ERR_MALFORMED', `${opts.what}: body could not be decompressed`, { cause });
  }
}

/**
 * One HTTP/1.1 request to a directory; resolves with the (decompressed) body
 * of a 200 answer. Rejects only with AlliumError (see the module comment).
 */
export function dirRequest(url: URL, opts: DirRequestOptions): Promise<Uint8Array> {
  const method = opts.method ?? 'GET';
  const body = opts.body === undefined ? undefined : Buffer.from(opts.body, 'utf8');
  const headers: Record<string, string | number> = {};
  if (opts.acceptGzip === true) headers['accept-encoding'] = 'gzip';
  if (body !== undefined) {
    headers['content-type'] = 'text/plain; charset=utf-8';
    headers['content-length'] = body.length;
  }
  return new Promise((resolve, reject) => {
    let settled = false;
    const finish = (error: unknown, result?: Uint8Array) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (error === undefined) {
        resolve(result!);
        return;
      }
      const typed = error instanceof AlliumError ? error : new AlliumError('ERR_LINK_CLOSED', `${opts.what}: ${(error as Error).message}`, { cause: error });
      reject(typed);
      req.destroy();
    };
    // agent: false: one connection per request, closed after it.
    const req = request(url, { method, headers, agent: false });
    const timer = setTimeout(() => finish(new AlliumError('ERR_TIMEOUT', `${opts.what} timed out`)), opts.timeoutMs ?? DEFAULT_DIR_TIMEOUT_MS);
    req.on('error', (error) => finish(error));
    req.on('response', (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        finish(new HttpStatusError(res.statusCode ?? 0, `${opts.what}: HTTP ${res.statusCode}`));
        return;
      }
      const declared = Number(res.headers['content-length']);
      if (declared > opts.maxBodyBytes) {
        finish(new AlliumError('ERR_OVERSIZED', `${opts.what}: body larger than ${opts.maxBodyBytes} bytes`));
        return;
      }
      const chunks: Buffer[] = [];
      let length = 0;
      res.on('data', (chunk: Buffer) => {
        length += chunk.length;
        if (length > opts.maxBodyBytes) finish(new AlliumError('ERR_OVERSIZED', `${opts.what}: body larger than ${opts.maxBodyBytes} bytes`));
        else chunks.push(chunk);
      });
      res.on('error', (error) => finish(error));
      res.on('close', () => {
        if (!res.complete) finish(new AlliumError('ERR_LINK_CLOSED', `${opts.what}: connection closed before the body was complete`));
      });
      res.on('end', () => {
        try {
          finish(undefined, decode(res, Buffer.concat(chunks), opts));
        } catch (error) {
          finish(error);
        }
      });
    });
    req.end(body);
  });
}
