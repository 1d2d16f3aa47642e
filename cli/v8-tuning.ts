/**
 * V8 settings for a process that carries cells (`allium relay`, `allium
 * client`, bench/relay-target), set at run time so that every way of
 * starting one gets them (the testnet, systemd, a shell): NODE_OPTIONS
 * refuses most V8 flags.
 *
 * `--no-concurrent-array-buffer-sweeping`: the buffers a scavenge finds dead
 * are freed during that scavenge, not by a background job that finishes
 * later. Why: V8 counts every ArrayBuffer's memory as external memory until
 * it is swept, and starts a full (mark-compact) collection once the
 * external memory allocated since the last one exceeds the old
 * generation's headroom, which for a node's small heap (about 13 MiB) is
 * V8's minimum of 8 MiB. A relay forwarding 40-60 MB/s allocates about
 * 5 bytes of buffers (link reads, frame plaintexts, keystreams, sealed
 * frames) per byte it forwards, and with the sweeping in the background the
 * count seen after each scavenge held 8 MiB of dead buffers. Past the
 * headroom, a relay fell into a full collection every 50 ms and stayed
 * there: its CPU per 100 MB doubled (0.5-0.6 to 1.2-1.6 s) for the rest of
 * the download and often the next ones, the relay became the circuit's
 * bottleneck and its queues grew, which kept it there. Measured on the
 * testnet (`--trace-gc --trace-gc-verbose`: external memory 7.7-8.1 MiB
 * after each scavenge, then 12-14 MiB and a mark-compact after every
 * scavenge). With the sweeping done in the scavenge the count holds only
 * live buffers. Testnets taken through bench.sh's warm-up and then 5-8
 * downloads of 100 MB on one circuit: without it, one or two relays fell
 * into that state in 8 of 12; with it, none in 9, the guard and middle
 * costing 0.39-0.67 CPU s per 100 MB (mostly 0.40-0.55). docs/operators.md,
 * "CPU".
 */
import { setFlagsFromString } from 'node:v8';

/** Apply the settings above to this process (all its threads); calling it again changes nothing. */
export function tuneV8ForCells(): void {
  setFlagsFromString('--no-concurrent-array-buffer-sweeping');
}
