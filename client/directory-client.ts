/**
 * Fetching the consensus (docs/protocol.md §9): ask each configured authority
 * in turn, accept gzip, cap the body before and after decompression, and
 * trust the document only if a majority of the configured authorities signed it.
 */
import { request } from 'node:http';
import { gunzipSync } from 'node:zlib';
import { AlliumError, DocumentError } from '../src/errors.js';
import { verifyConsensus, type Consensus } from '../src/netdoc/consensus.js';

export interface AuthorityRef {
  url: string;
  identity: Uint8Array;
}

export const MAX_CONSENSUS_BYTES = 1024 * 1024;
const FETCH_TIMEOUT_MS = 10_000;

function httpGet(url: URL): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    // agent: false — one short request per fetch; a kept-alive socket would collect listeners.
    const req = request(url, { method: 'GET', headers: { 'accept-encoding': 'gzip' }, timeout: FETCH_TIMEOUT_MS, agent: false });
    req.on('timeout', () => req.destroy(new AlliumError('ERR_TIMEOUT', 'consensus fetch timed out')));
    req.on('error', reject);
    req.on('response', (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        reject(new AlliumError('ERR_DOCUMENT', `consensus fetch: HTTP ${res.statusCode}`));
        return;
      }
      const chunks: Buffer[] = [];
      let length = 0;
      res.on('data', (chunk: Buffer) => {
        length += chunk.length;
        if (length > MAX_CONSENSUS_BYTES) {
          req.destroy(new AlliumError('ERR_OVERSIZED', 'consensus too large'));
          return;
        }
        chunks.push(chunk);
      });
      res.on('error', reject);
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        try {
          const plain = res.headers['content-encoding'] === 'gzip' ? gunzipSync(body, { maxOutputLength: MAX_CONSENSUS_BYTES }) : body;
          resolve(new Uint8Array(plain));
        } catch (cause) {
          reject(new AlliumError('ERR_OVERSIZED', 'consensus body could not be decompressed within the limit', { cause }));
        }
      });
    });
    req.end();
  });
}

function decodeText(body: Uint8Array): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(body);
  } catch {
    throw new DocumentError('ERR_MALFORMED', 'consensus is not UTF-8 text');
  }
}

/** Fetch and verify the consensus from the first authority that serves a valid one. */
export async function fetchConsensus(authorities: AuthorityRef[], now: () => number = Date.now): Promise<Consensus> {
  const trusted = authorities.map((a) => a.identity);
  let lastError: unknown = new AlliumError('ERR_CONFIG', 'no authorities configured');
  for (const authority of authorities) {
    try {
      const body = await httpGet(new URL('/allium/v1/consensus', authority.url));
      return verifyConsensus(decodeText(body), trusted, now());
    } catch (error) {
      lastError = error;
    }
  }
  throw lastError;
}
