/**
 * Publishing this relay's descriptor to every configured authority
 * (docs/protocol.md §9.3): each authority is served on its own, so one that
 * is down only delays its own copy. A failed upload is retried with
 * exponential backoff (1 s doubling to 60 s, with jitter) until it succeeds;
 * a descriptor whose content changed (keys, address, bandwidth, policy…) is
 * signed anew and uploaded to all of them at once; an unchanged one is
 * republished every republish interval so it never goes stale (§8.2: 36 h).
 */
import { debuglog } from 'node:util';
import { hex } from '../src/bytes.js';
import { dirRequest, HttpStatusError } from '../src/dirclient/http.js';
import { encodeDescriptor, type RelayDescriptor } from '../src/netdoc/descriptor.js';
import { publish } from '../src/events.js';
import type { SigningKeySigner } from '../src/netdoc/signing-key-cert.js';

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
export async function uploadDescriptor(authority: AuthorityRef, text: string, timeoutMs = UPLOAD_TIMEOUT_MS): Promise<void> {
  await dirRequest(new URL('/allium/v1/descriptor', authority.url), {
    what: 'descriptor upload',
    method: 'POST',
    body: text,
    maxBodyBytes: MAX_UPLOAD_ANSWER_BYTES,
    timeoutMs,
  });
}

export interface DescriptorPublisherOptions {
  authorities: readonly AuthorityRef[];
  /** The relay's signing key and certificate as of now (signs the descriptor; §8.2). */
  signer: () => SigningKeySigner;
  /** The relay's descriptor as of now; its `published` is replaced by the publisher. */
  make: () => RelayDescriptor;
  /** Re-upload an unchanged descriptor this often; default 10 min. */
  republishIntervalMs?: number;
  /** Look for a changed descriptor this often; default 5 s. */
  checkIntervalMs?: number;
  /** First retry delay after a failure; doubles per failure; default 1 s. */
  retryInitialMs?: number;
  /** Largest retry delay; default 60 s. */
  retryMaxMs?: number;
  /** Time limit of one upload; default 10 s. */
  uploadTimeoutMs?: number;
  now?: () => number;
  /** Uniform in [0, 1): jitter of the retry delays. */
  random?: () => number;
}

/** The state of the uploads to one authority, for tests and logs. */
export interface UploadState {
  readonly url: string;
  /** The descriptor text the authority last accepted, if any. */
  readonly uploaded: string | undefined;
  /** Failed uploads in a row. */
  readonly failures: number;
  /** When the last upload succeeded. */
  readonly lastSuccessAt: number | undefined;
}

interface Target {
  authority: AuthorityRef;
  uploaded: string | undefined;
  failures: number;
  lastSuccessAt: number | undefined;
  timer: NodeJS.Timeout | undefined;
  busy: boolean;
}

/** The descriptor as a string with `published` left out: equal keys mean equal content. */
function contentKey(d: RelayDescriptor): string {
  return JSON.stringify({ ...d, published: 0 }, (_k, v: unknown) => (v instanceof Uint8Array ? hex(v) : v));
}

export class DescriptorPublisher {
  readonly #opts: Required<Omit<DescriptorPublisherOptions, 'authorities' | 'signer' | 'make'>> & Pick<DescriptorPublisherOptions, 'signer' | 'make'>;
  readonly #targets: Target[];
  #current: { key: string; text: string; published: number } | undefined;
  #checkTimer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(opts: DescriptorPublisherOptions) {
    this.#opts = {
      signer: opts.signer,
      make: opts.make,
      republishIntervalMs: opts.republishIntervalMs ?? 10 * 60_000,
      checkIntervalMs: opts.checkIntervalMs ?? 5_000,
      retryInitialMs: opts.retryInitialMs ?? 1_000,
      retryMaxMs: opts.retryMaxMs ?? 60_000,
      uploadTimeoutMs: opts.uploadTimeoutMs ?? UPLOAD_TIMEOUT_MS,
      now: opts.now ?? Date.now,
      random: opts.random ?? Math.random,
    };
    this.#targets = opts.authorities.map((authority) => ({ authority, uploaded: undefined, failures: 0, lastSuccessAt: undefined, timer: undefined, busy: false }));
  }

  /** Uploads now to every authority, then keeps every authority up to date until close(). */
  start(): void {
    this.#check();
  }

  /** The descriptor text being published (signed), if any yet. */
  get current(): string | undefined {
    return this.#current?.text;
  }

  /** Per authority: what it holds and how the uploads go. */
  state(): UploadState[] {
    return this.#targets.map((t) => ({ url: t.authority.url, uploaded: t.uploaded, failures: t.failures, lastSuccessAt: t.lastSuccessAt }));
  }

  /** The descriptor may have changed: look now rather than at the next check. */
  refresh(): void {
    if (!this.#closed) this.#check();
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#checkTimer);
    for (const t of this.#targets) clearTimeout(t.timer);
  }

  /** Re-signs the descriptor if its content changed or it is due for republication, then uploads where needed. */
  #check = (): void => {
    clearTimeout(this.#checkTimer);
    if (this.#closed) return;
    const now = this.#opts.now();
    const d = this.#opts.make();
    const key = contentKey(d);
    const cur = this.#current;
    if (cur === undefined || cur.key !== key || now - cur.published >= this.#opts.republishIntervalMs) {
      // Strictly later than the last one, so every authority takes it as newer (§9.3).
      const published = Math.max(Math.floor(now / 1000) * 1000, cur === undefined ? 0 : cur.published + 1000);
      this.#current = { key, text: encodeDescriptor({ ...d, published }, this.#opts.signer()), published };
      if (cur !== undefined && cur.key !== key) log('descriptor changed; uploading it to every authority');
      for (const t of this.#targets) {
        // A new descriptor goes out at once, except to an authority we are backing off from.
        if (t.failures === 0) this.#schedule(t, 0);
      }
    }
    this.#checkTimer = setTimeout(this.#check, this.#opts.checkIntervalMs);
  };

  #schedule(t: Target, delayMs: number): void {
    clearTimeout(t.timer);
    if (this.#closed) return;
    t.timer = setTimeout(() => void this.#upload(t), delayMs);
  }

  async #upload(t: Target): Promise<void> {
    if (this.#closed || t.busy) return;
    const text = this.#current?.text;
    if (text === undefined || t.uploaded === text) return;
    const index = this.#targets.indexOf(t);
    t.busy = true;
    try {
      await uploadDescriptor(t.authority, text, this.#opts.uploadTimeoutMs);
      t.uploaded = text;
      t.failures = 0;
      t.lastSuccessAt = this.#opts.now();
      publish('allium:descriptor:upload', () => ({ authority: index, accepted: true, status: 200 }));
      // A descriptor that changed while this one was on its way goes out now.
      if (this.#current?.text !== text) this.#schedule(t, 0);
    } catch (error) {
      t.failures++;
      const base = Math.min(this.#opts.retryMaxMs, this.#opts.retryInitialMs * 2 ** Math.min(t.failures - 1, 30));
      const delay = Math.round(base * (0.5 + this.#opts.random() / 2));
      const httpStatus = error instanceof HttpStatusError ? error.status : null;
      publish('allium:descriptor:upload', () => ({ authority: index, accepted: false, status: httpStatus }));
      const status = httpStatus !== null ? ` (HTTP ${httpStatus})` : '';
      log('descriptor upload to %s failed%s: %s; retry %d in %d ms', t.authority.url, status, (error as Error).message, t.failures, delay);
      this.#schedule(t, delay);
    } finally {
      t.busy = false;
    }
  }
}
