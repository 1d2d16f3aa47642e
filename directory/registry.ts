/**
 * The authority's relay registry (docs/protocol.md §9.3):
 * accepted descriptors by identity, their reachability probes (bounded
 * concurrency, bounded time) and the Running state the probes give.
 */
import { debuglog } from 'node:util';
import { equalBytes, hex } from '../src/bytes.js';
import { AlliumError } from '../src/errors.js';
import { isPrivateAddress } from '../src/netdoc/exit-policy.js';
import { DESCRIPTOR_MAX_AGE_MS, parseDescriptor, type RelayDescriptor } from '../src/netdoc/descriptor.js';

const log = debuglog('allium:directory');

export interface RegistryEntry {
  readonly identityHex: string;
  readonly descriptor: RelayDescriptor;
  readonly text: string;
  readonly digest: Uint8Array;
  /** When the last probe of this descriptor finished, and whether it succeeded. */
  lastProbeAt: number | undefined;
  lastProbeOk: boolean;
  lastSuccessAt: number | undefined;
}

export interface RegistryOptions {
  now: () => number;
  probe: (d: RelayDescriptor) => Promise<boolean>;
  probeTimeoutMs: number;
  probeConcurrency: number;
  /** A relay is Running while its last probe succeeded no longer ago than this. */
  runningWindowMs: number;
  maxRelays: number;
  /** Testnet: allow relays on loopback/private addresses. Default true (a testnet-capable authority). */
  allowPrivateAddresses?: boolean;
  /** Called after each accepted descriptor (persistence). */
  onAccepted?: (entry: RegistryEntry) => void;
  /** Called with the outcome of every probe of a relay still held, at the time it finished (uptime history). */
  onProbed?: (entry: RegistryEntry, ok: boolean, at: number) => void;
  onRemoved?: (identityHex: string) => void;
}

/** The outcome of an upload, with the HTTP status the server answers. */
export type SubmitOutcome =
  | { ok: true; status: 200; entry: RegistryEntry; duplicate: boolean }
  | { ok: false; status: 400 | 403 | 409 | 503; reason: string };

export class Registry {
  readonly #opts: RegistryOptions;
  readonly #entries = new Map<string, RegistryEntry>();
  readonly #queue: string[] = [];
  readonly #queued = new Set<string>();
  #active = 0;
  #waiters: (() => void)[] = [];
  #closed = false;

  constructor(opts: RegistryOptions) {
    this.#opts = opts;
  }

  get size(): number {
    return this.#entries.size;
  }

  get(identityHex: string): RegistryEntry | undefined {
    return this.#entries.get(identityHex);
  }

  entries(): RegistryEntry[] {
    return [...this.#entries.values()];
  }

  /** Checks and stores an uploaded descriptor; a new or changed one is queued for a probe. */
  submit(text: string): SubmitOutcome {
    const now = this.#opts.now();
    let parsed: ReturnType<typeof parseDescriptor>;
    try {
      parsed = parseDescriptor(text, { now });
    } catch (error) {
      const code = error instanceof AlliumError ? error.code : 'ERR_MALFORMED';
      const reason = (error as Error).message;
      if (code === 'ERR_BAD_SIGNATURE') return { ok: false, status: 403, reason };
      if (code === 'ERR_DOCUMENT') return { ok: false, status: 409, reason };
      return { ok: false, status: 400, reason };
    }
    const { descriptor, digest } = parsed;
    if (descriptor.address === '0.0.0.0' || descriptor.address === '255.255.255.255') {
      return { ok: false, status: 400, reason: 'address is not a unicast address' };
    }
    if (this.#opts.allowPrivateAddresses === false && isPrivateAddress(descriptor.address)) {
      return { ok: false, status: 400, reason: 'private addresses are not accepted by this authority' };
    }
    const identityHex = hex(descriptor.identity);
    const old = this.#entries.get(identityHex);
    if (old !== undefined) {
      if (equalBytes(old.digest, digest)) return { ok: true, status: 200, entry: old, duplicate: true };
      if (descriptor.published <= old.descriptor.published) {
        return { ok: false, status: 409, reason: 'not newer than the descriptor already held for this identity' };
      }
    } else if (this.#entries.size >= this.#opts.maxRelays) {
      return { ok: false, status: 503, reason: 'relay registry full' };
    }
    const sameEndpoint =
      old !== undefined &&
      old.descriptor.address === descriptor.address &&
      old.descriptor.orPort === descriptor.orPort &&
      equalBytes(old.descriptor.linkKey, descriptor.linkKey);
    const entry: RegistryEntry = {
      identityHex,
      descriptor,
      text,
      digest,
      // A republished descriptor for the same endpoint keeps its reachability.
      lastProbeAt: sameEndpoint ? old.lastProbeAt : undefined,
      lastProbeOk: sameEndpoint ? old.lastProbeOk : false,
      lastSuccessAt: sameEndpoint ? old.lastSuccessAt : undefined,
    };
    this.#entries.set(identityHex, entry);
    this.#opts.onAccepted?.(entry);
    if (!sameEndpoint) this.#enqueue(identityHex);
    log('accepted descriptor %s (%s) %s:%d', identityHex.slice(0, 16), descriptor.nickname, descriptor.address, descriptor.orPort);
    return { ok: true, status: 200, entry, duplicate: false };
  }

  /** Loads a stored descriptor at start; invalid or stale ones are dropped. */
  restore(text: string): boolean {
    const outcome = this.submit(text);
    return outcome.ok;
  }

  isRunning(entry: RegistryEntry, now = this.#opts.now()): boolean {
    // A hibernating relay (docs/protocol.md §8.2.1) accepts no circuits: not Running, as in Tor.
    return entry.lastProbeOk && entry.lastSuccessAt !== undefined && now - entry.lastSuccessAt <= this.#opts.runningWindowMs && entry.descriptor.hibernating !== true;
  }

  /** Drops descriptors published more than 36 h ago. */
  expire(): void {
    const now = this.#opts.now();
    for (const [id, entry] of this.#entries) {
      if (entry.descriptor.published < now - DESCRIPTOR_MAX_AGE_MS) {
        this.#entries.delete(id);
        this.#opts.onRemoved?.(id);
        log('expired descriptor %s', id.slice(0, 16));
      }
    }
  }

  /** Queues a probe of every relay (the periodic reachability test). */
  probeAll(): void {
    for (const id of this.#entries.keys()) this.#enqueue(id);
  }

  /** Resolves once every probe queued so far (and any queued meanwhile) has finished. */
  settled(): Promise<void> {
    if (this.#active === 0 && this.#queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  close(): void {
    this.#closed = true;
    this.#queue.length = 0;
    this.#queued.clear();
    this.#wake();
  }

  #enqueue(identityHex: string): void {
    if (this.#closed || this.#queued.has(identityHex)) return;
    this.#queued.add(identityHex);
    this.#queue.push(identityHex);
    this.#pump();
  }

  #pump(): void {
    while (!this.#closed && this.#active < this.#opts.probeConcurrency && this.#queue.length > 0) {
      const id = this.#queue.shift()!;
      this.#queued.delete(id);
      const entry = this.#entries.get(id);
      if (entry === undefined) continue;
      this.#active++;
      void this.#probeOne(entry).finally(() => {
        this.#active--;
        this.#pump();
        this.#wake();
      });
    }
    this.#wake();
  }

  #wake(): void {
    if ((this.#active === 0 && this.#queue.length === 0) || this.#closed) {
      const waiters = this.#waiters;
      this.#waiters = [];
      for (const w of waiters) w();
    }
  }

  async #probeOne(entry: RegistryEntry): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    let ok: boolean;
    try {
      ok = await Promise.race([
        this.#opts.probe(entry.descriptor).then((r) => r === true),
        new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(false), this.#opts.probeTimeoutMs);
        }),
      ]);
    } catch {
      ok = false;
    } finally {
      clearTimeout(timer);
    }
    if (this.#closed) return;
    const current = this.#entries.get(entry.identityHex);
    if (current === undefined || !equalBytes(current.digest, entry.digest)) {
      // Replaced meanwhile; a same-endpoint replacement inherits the result.
      if (
        current === undefined ||
        current.descriptor.address !== entry.descriptor.address ||
        current.descriptor.orPort !== entry.descriptor.orPort ||
        !equalBytes(current.descriptor.linkKey, entry.descriptor.linkKey)
      ) {
        return;
      }
    }
    const now = this.#opts.now();
    current.lastProbeAt = now;
    current.lastProbeOk = ok;
    if (ok) current.lastSuccessAt = now;
    this.#opts.onProbed?.(current, ok, now);
    log('probe %s %s:%d → %s', entry.identityHex.slice(0, 16), entry.descriptor.address, entry.descriptor.orPort, ok ? 'reachable' : 'unreachable');
  }
}
