/**
 * The fuzzing engine shared by `npm run fuzz` (fuzz/run.ts, a million inputs
 * per target, one child process each) and the smoke test inside `npm test`
 * (test/fuzz/fuzz-smoke.test.ts, a few thousand).
 *
 * A target (fuzz/targets/*.ts) is one network-facing parser or state
 * machine. Its inputs come in batches of BATCH_SIZE, each batch fully
 * determined by (seed, batch index), so any input can be replayed:
 *
 * - generated: a value of the target's fast-check arbitrary (grammar-aware:
 *   mostly valid messages, with edge values fast-check biases towards);
 * - generated then mutated: the same, passed through 1-4 byte or text
 *   mutations (near-valid inputs the grammar alone would not produce);
 * - corpus mutations: a committed valid message (fuzz/corpus/) mutated;
 * - random: bytes or printable text of random length.
 *
 * Each input must either be accepted (and round-trip: the target checks
 * decode(encode(decode(x))) equals decode(x), or byte equality where the
 * encoding is canonical) or be refused with an AlliumError, within the
 * target's time bound. Anything else — another exception, a round-trip
 * mismatch, an input slower than the bound — is a crash.
 */
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import { AlliumError } from '../src/errors.js';
import { Rng, mutate, mutateText, randomText } from '../test/fuzz/fuzz-util.js';

/** An input: bytes for binary protocols, text for documents and HTTP. */
export type FuzzInput = Uint8Array | string;

/** Thrown by a target when an accepted input breaks a law (round trip, invariant). */
export class FuzzFailure extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FuzzFailure';
  }
}

/** One network-facing parser or state machine under test. */
export interface FuzzTarget<I extends FuzzInput = FuzzInput> {
  /** Short name used on the command line (`npm run fuzz -- relay-msg`). */
  readonly name: string;
  /** What is exercised, one line. */
  readonly description: string;
  /** 'bytes' or 'text': which mutators and random inputs apply. */
  readonly kind: I extends string ? 'text' : 'bytes';
  /** Repository paths (.ts) whose branch coverage is reported for this target. */
  readonly modules: readonly string[];
  /** Longest random input, bytes or characters. */
  readonly maxRandomLength: number;
  /** Per-input time bound, ms (default DEFAULT_TIME_BOUND_MS). */
  readonly timeBoundMs?: number;
  /**
   * Distinct generated values per batch (default half the batch); targets
   * whose generator signs documents or runs handshakes use fewer, reused.
   */
  readonly generatedPerBatch?: number;
  /** The grammar-aware generator. Called once per process. */
  arbitrary(): fc.Arbitrary<I>;
  /** The committed seed corpus of valid messages (fuzz/corpus/<name>/). */
  corpus(): readonly I[];
  /**
   * Run one input. Return normally if it was accepted (after checking its
   * round trip), throw an AlliumError if it was refused, and throw
   * FuzzFailure if an accepted input breaks a law.
   */
  run(input: I): void;
}

export const BATCH_SIZE = 1000;
/**
 * No single input may take longer (ms). Wall-clock time on a shared machine
 * includes being descheduled, so an input over the bound is timed twice more
 * and the fastest run counts; a hang or a catastrophic regex is far above it.
 */
export const DEFAULT_TIME_BOUND_MS = 1000;

/** Where an input came from. */
export type Origin = 'generated' | 'generated+mutated' | 'corpus+mutated' | 'random';

export interface Crash {
  origin: Origin;
  batch: number;
  index: number;
  /** Hex for bytes, JSON for text. */
  input: string;
  error: string;
}

export interface Slowest {
  ms: number;
  origin: Origin;
  batch: number;
  index: number;
  length: number;
}

export interface TargetResult {
  target: string;
  inputs: number;
  accepted: number;
  refused: number;
  crashes: number;
  /** The first few crashes in full. */
  crashList: Crash[];
  slowest: Slowest | null;
  elapsedMs: number;
  /** Highest RSS and V8 heap seen between batches, bytes. */
  peakRss: number;
  peakHeap: number;
}

export interface RunOptions {
  runs: number;
  seed: number;
  /** Called after every batch (progress, watchdog heartbeats). */
  onBatch?: (batch: number, result: TargetResult) => void;
  /** Keep at most this many crashes in full (default 20). */
  keepCrashes?: number;
}

/** A 32-bit seed for batch `batch` of a run seeded `seed` on `target`. */
export function batchSeed(target: string, seed: number, batch: number): number {
  return createHash('sha256').update(`${target}/${seed}/${batch}`).digest().readUInt32LE(0);
}

interface Planned<I> {
  input: I;
  origin: Origin;
}

/** The inputs of one batch, in order: deterministic in (target, seed, batch). */
export function batchInputs<I extends FuzzInput>(target: FuzzTarget<I>, arbitrary: fc.Arbitrary<I>, corpus: readonly I[], seed: number, batch: number, size: number): Planned<I>[] {
  const rng = new Rng(batchSeed(target.name, seed, batch));
  const generated = fc.sample(arbitrary, { seed: rng.u32() | 0, numRuns: Math.max(1, Math.min(target.generatedPerBatch ?? size, Math.ceil(size * 0.5))) });
  const text = target.kind === 'text';
  const mut = (x: I): I => (text ? (mutateText(rng, x as string) as I) : (mutate(rng, x as Uint8Array) as I));
  const out: Planned<I>[] = [];
  let g = 0;
  for (let i = 0; i < size; i++) {
    const r = rng.int(100);
    if (r < 30 || (corpus.length === 0 && r < 85)) {
      out.push({ input: generated[g++ % generated.length]!, origin: 'generated' });
    } else if (r < 50) {
      out.push({ input: mut(generated[g++ % generated.length]!), origin: 'generated+mutated' });
    } else if (r < 90 && corpus.length > 0) {
      out.push({ input: mut(rng.pick(corpus)), origin: 'corpus+mutated' });
    } else {
      const input = text ? randomText(rng, target.maxRandomLength) : rng.bytes(rng.length(target.maxRandomLength));
      out.push({ input: input as I, origin: 'random' });
    }
  }
  return out;
}

function describeInput(input: FuzzInput, max = 4096): string {
  if (typeof input === 'string') {
    const j = JSON.stringify(input);
    return j.length > max ? `${j.slice(0, max)}…` : j;
  }
  const h = Buffer.from(input).toString('hex');
  return h.length > max ? `${h.slice(0, max)}…` : h;
}

function describeError(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}\n${(error.stack ?? '').split('\n').slice(1, 6).join('\n')}`;
  return `non-Error thrown: ${String(error)}`;
}

/**
 * Run `opts.runs` inputs against `target` (in whole batches, the last one
 * cut short) and tally the outcomes. Never throws for a target's failure:
 * crashes are counted and the first few kept.
 */
export function runTarget<I extends FuzzInput>(target: FuzzTarget<I>, opts: RunOptions): TargetResult {
  const arbitrary = target.arbitrary();
  const corpus = target.corpus();
  const bound = target.timeBoundMs ?? DEFAULT_TIME_BOUND_MS;
  const keep = opts.keepCrashes ?? 20;
  const result: TargetResult = {
    target: target.name,
    inputs: 0,
    accepted: 0,
    refused: 0,
    crashes: 0,
    crashList: [],
    slowest: null,
    elapsedMs: 0,
    peakRss: 0,
    peakHeap: 0,
  };
  const started = performance.now();
  const batches = Math.ceil(opts.runs / BATCH_SIZE);
  for (let batch = 0; batch < batches; batch++) {
    const size = Math.min(BATCH_SIZE, opts.runs - batch * BATCH_SIZE);
    const planned = batchInputs(target, arbitrary, corpus, opts.seed, batch, size);
    for (let index = 0; index < planned.length; index++) {
      const { input, origin } = planned[index]!;
      let failure: unknown = null;
      const t0 = performance.now();
      try {
        target.run(input);
        result.accepted++;
      } catch (error) {
        if (error instanceof AlliumError) result.refused++;
        else failure = error;
      }
      let ms = performance.now() - t0;
      result.inputs++;
      for (let retry = 0; retry < 2 && failure === null && ms > bound; retry++) {
        // A GC pause or a busy machine can stretch one run: time it again and keep the fastest.
        const t1 = performance.now();
        try {
          target.run(input);
        } catch {
          // Outcome already counted.
        }
        ms = Math.min(ms, performance.now() - t1);
      }
      if (failure === null && ms > bound) failure = new FuzzFailure(`took ${ms.toFixed(1)} ms, over the ${bound} ms bound`);
      if (failure !== null) {
        result.crashes++;
        if (result.crashList.length < keep) result.crashList.push({ origin, batch, index, input: describeInput(input), error: describeError(failure) });
      }
      if (result.slowest === null || ms > result.slowest.ms) {
        result.slowest = { ms, origin, batch, index, length: input.length };
      }
    }
    const mem = process.memoryUsage();
    result.peakRss = Math.max(result.peakRss, mem.rss);
    result.peakHeap = Math.max(result.peakHeap, mem.heapUsed);
    result.elapsedMs = performance.now() - started;
    opts.onBatch?.(batch, result);
  }
  result.elapsedMs = performance.now() - started;
  return result;
}

/** The one input (batch, index) of a run, for replaying a crash or a hang. */
export function replayInput<I extends FuzzInput>(target: FuzzTarget<I>, seed: number, batch: number, index: number): Planned<I> {
  const planned = batchInputs(target, target.arbitrary(), target.corpus(), seed, batch, BATCH_SIZE);
  const p = planned[index];
  if (p === undefined) throw new RangeError(`no input ${index} in a batch`);
  return p;
}

/** Deep equality for round-trip checks: throws FuzzFailure naming `what` on a mismatch. */
export function sameValue(what: string, got: unknown, want: unknown): void {
  if (!deepEqual(got, want)) throw new FuzzFailure(`${what}: round trip changed the value\n  got  ${show(got)}\n  want ${show(want)}`);
}

export function sameBytes(what: string, got: Uint8Array, want: Uint8Array): void {
  if (!Buffer.from(got.buffer, got.byteOffset, got.byteLength).equals(Buffer.from(want.buffer, want.byteOffset, want.byteLength))) {
    throw new FuzzFailure(`${what}: re-encoding differs\n  got  ${describeInput(got, 300)}\n  want ${describeInput(want, 300)}`);
  }
}

/**
 * Run `fn`, a law about an input that was accepted: any exception it throws,
 * even an AlliumError (an encoder refusing what its decoder accepted), is a
 * FuzzFailure.
 */
export function law(what: string, fn: () => void): void {
  try {
    fn();
  } catch (error) {
    if (error instanceof FuzzFailure) throw error;
    throw new FuzzFailure(`${what}: ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`);
  }
}

export function check(condition: boolean, message: () => string): void {
  if (!condition) throw new FuzzFailure(message());
}

function show(v: unknown): string {
  const s = JSON.stringify(v, (_k, x: unknown) => (x instanceof Uint8Array ? Buffer.from(x).toString('hex') : x instanceof Map ? [...x] : x));
  return s === undefined ? String(v) : s.length > 400 ? `${s.slice(0, 400)}…` : s;
}

function deepEqual(a: unknown, b: unknown): boolean {
  return isDeepStrictEqual(normalize(a), normalize(b));
}

/** Uint8Array subclasses (Buffer) and views compare by content. */
function normalize(v: unknown): unknown {
  if (v instanceof Uint8Array) return Array.from(v);
  if (Array.isArray(v)) return v.map(normalize);
  if (v instanceof Map) return new Map([...v].map(([k, x]) => [k, normalize(x)]));
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, normalize(x)]));
  return v;
}
