/**
 * Ask V8 for a full garbage collection: for the relay's memory cap
 * (relay/mem-cap.ts) once a large amount of queued data has been let go,
 * and for the client when its last stream closes (client/quiet-collect.ts).
 *
 * Why: data a relay held for a while (a stuck link's frames, its socket's
 * unsent frames, a stuck stream's bytes) has been promoted to V8's old
 * generation by the time it is dropped, and its buffers (outside the V8 heap,
 * allocated with malloc) are freed only by a full collection. V8 starts one
 * for such memory only after it has grown by 64 MiB since the last, so
 * without asking, a relay under a cap of 64 MiB carried up to 64 MiB more of
 * dead buffers (bench/mem-cap.bench.ts).
 *
 * The collection is requested asynchronously (V8 runs it as a task soon
 * after; the caller is not blocked). Node exposes the call only with
 * --expose-gc; without it the flag is set at run time and the function taken
 * from a fresh context, which is how V8 installs it. If that is not possible
 * (another engine), nothing is collected and this returns false.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

type GcFunction = (options?: { type?: 'major' | 'minor'; execution?: 'async' | 'sync' }) => unknown;

let gc: GcFunction | null | undefined;

function gcFunction(): GcFunction | null {
  if (gc !== undefined) return gc;
  const exposed = (globalThis as { gc?: GcFunction }).gc;
  if (typeof exposed === 'function') {
    gc = exposed;
    return gc;
  }
  try {
    setFlagsFromString('--expose-gc');
    const fn = runInNewContext('gc') as unknown;
    gc = typeof fn === 'function' ? (fn as GcFunction) : null;
  } catch {
    gc = null;
  }
  return gc;
}

/** Request a full collection (asynchronous); false if this runtime offers none. */
export function collectGarbage(): boolean {
  const fn = gcFunction();
  if (fn === null) return false;
  const pending = fn({ type: 'major', execution: 'async' });
  if (pending instanceof Promise) pending.catch(() => {});
  return true;
}
