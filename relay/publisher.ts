/**
 * Builds and signs this relay's descriptor and uploads it to every configured
 * authority (docs/protocol.md §8, §9), at start and then periodically.
 */
import { request } from 'node:http';
import { debuglog } from 'node:util';
import { encodeDescriptor, type RelayDescriptor } from '../src/netdoc/descriptor.js';
import { AlliumError } from '../src/errors.js';

const log = debuglog('allium:relay');
const UPLOAD_TIMEOUT_MS = 10_000;

export interface AuthorityRef {
  url: string;
  identity: Uint8Array;
}

export function uploadDescriptor(authority: AuthorityRef, text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const url = new URL('/allium/v1/descriptor', authority.url);
    const body = Buffer.from(text, 'utf8');
    const req = request(url, {
      method: 'POST',
      headers: { 'content-type': 'text/plain; charset=utf-8', 'content-length': body.length },
      timeout: UPLOAD_TIMEOUT_MS,
      agent: false,
    });
    req.on('timeout', () => req.destroy(new AlliumError('ERR_TIMEOUT', 'descriptor upload timed out')));
    req.on('error', reject);
    req.on('response', (res) => {
      res.resume();
      if (res.statusCode === 200) resolve();
      else reject(new AlliumError('ERR_DOCUMENT', `authority refused the descriptor: HTTP ${res.statusCode}`));
    });
    req.end(body);
  });
}

/** Upload now, retry failures a few times, then again every `intervalMs`. */
export class DescriptorPublisher {
  readonly #authorities: AuthorityRef[];
  readonly #make: () => RelayDescriptor;
  readonly #seed: Uint8Array;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(authorities: AuthorityRef[], seed: Uint8Array, make: () => RelayDescriptor) {
    this.#authorities = authorities;
    this.#seed = seed;
    this.#make = make;
  }

  start(intervalMs: number): void {
    const tick = async () => {
      await this.publishOnce();
      if (!this.#closed) this.#timer = setTimeout(tick, intervalMs);
    };
    void tick();
  }

  async publishOnce(): Promise<void> {
    const text = encodeDescriptor(this.#make(), this.#seed);
    await Promise.all(
      this.#authorities.map(async (authority) => {
        for (let attempt = 0; attempt < 5 && !this.#closed; attempt++) {
          try {
            await uploadDescriptor(authority, text);
            return;
          } catch (error) {
            log('descriptor upload failed (attempt %d): %s', attempt + 1, (error as Error).message);
            await new Promise((r) => setTimeout(r, 500 * (attempt + 1)));
          }
        }
      }),
    );
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
  }
}
