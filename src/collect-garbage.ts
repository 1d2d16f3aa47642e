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
 * How: `vm.measureMemory({ execution: 'eager' })`, which has V8 start a full
 * collection at once (incremental marking, finished in a task soon after;
 * the caller is not blocked) to take its measurement, which is ignored.
 * Not `gc()` (--expose-gc): V8 runs that as a forced collection, which does
 * not retain the maps (object shapes) that no live object uses at that
 * moment, as V8's own collections do, and throws away every optimized
 * function that embeds one ("weak objects" in --trace-deopt). At a client
 * falling quiet that was about 20 hot functions each time (the socket write
 * path, queueMicrotask, cipher creation, the cell writer), compiled again on
 * the next download: 0.1-0.2 CPU s per 100 MB download on the project
 * machine. A measureMemory collection frees the same dead buffers and keeps
 * a shape (and the code) whenever marking has reached the shape's
 * constructor before the final pause: usually, since V8's concurrent marker
 * starts at once, though not always when the machine's cores are all busy.
 * Measured on the testnet (client CPU per warm 100 MB download, 20 runs
 * each, alternating): a median of 1.01 s against 1.23 s with gc().
 */
import { measureMemory } from 'node:vm';

/**
 * Request a full collection (asynchronous; the measurement is discarded).
 * Returns false if this runtime offers no way to ask (vm.measureMemory
 * missing), true otherwise.
 */
export function collectGarbage(): boolean {
  if (typeof measureMemory !== 'function') return false;
  measureMemory({ mode: 'summary', execution: 'eager' }).catch(() => {});
  return true;
}
