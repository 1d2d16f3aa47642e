/**
 * Builds and signs this relay's descriptor and uploads it to every configured
 * authority (docs/protocol.md §8, §9), at start and then periodically.
 */
import { debuglog } from 'node:util';
import { dirRequest } from '../src/dirclient/http.js';
import { encodeDescriptor, type RelayDescriptor } from '../src/netdoc/descriptor.js';
import { HttpStatusError } from '../src/dirclient/http.js';
import { publish } from '../src/events.js';

const log = debuglog('allium:relay');
const UPLOAD_TIMEOUT_MS = 10_000;
/** The authority answers `accepted` or `duplicate`; anything longer is not an answer we read. */
const MAX_UPLOAD_ANSWER_BYTES = 64 * 1024;

export interface AuthorityRef {
  url: string;
  identity: Uint8Array;
}

/**
 * POSTs a descriptor to one authority (§9.2). Resolves on 200; rejects with
 * the AlliumErrors of src/dirclient/http.ts (HttpStatusError carries the
 * authority's status, e.g. 409 for a stale descriptor).
 */
export async function uploadDescriptor(authority: AuthorityRef, text: string): Promise<void> {
  await dirRequest(new URL('/allium/v1/descriptor', authority.url), {
    what: 'descriptor upload',
    method: 'POST',
    body: text,
    maxBodyBytes: MAX_UPLOAD_ANSWER_BYTES,
    timeoutMs: UPLOAD_TIMEOUT_MS,
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
      this.#authorities.map(async (authority, index) => {
        let status: number | null = null;
        for (let attempt = 0; attempt < 5 && !this.#closed; attempt++) {
          try {
            await uploadDescriptor(authority, text);
            publish('allium:descriptor:upload', () => ({ authority: index, accepted: true, status: 200 }));
            return;
          } catch (error) {
            if (error instanceof HttpStatusError) status = error.status;
            log('descriptor upload failed (attempt %d): %s', attempt + 1, (error as Error).message);
            await new Promise((r) => setTimeout(r, 500 * (attempt + 1)));
          }
        }
        if (!this.#closed) publish('allium:descriptor:upload', () => ({ authority: index, accepted: false, status }));
      }),
    );
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
  }
}
