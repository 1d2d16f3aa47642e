/**
 * Per-cell cost of tor1 relay crypto (src/crypto/onion-layer.ts) through the
 * default backend (node:crypto). No options:
 *   npm run build && node dist/bench/onion-layer.bench.js   (or npm run bench -- onion-layer)
 * Each row: warm-up, then SAMPLES timed runs of CELLS cells, taken round-robin
 * across the rows (so drifts in machine load hit every row alike); the median
 * run gives CPU µs per cell (process.cpuUsage: less sensitive than wall time
 * to other load on the machine) and MB/s of 509-byte payloads. The rows that read the
 * running digest run twice: with the backend's SHA-1 (src/crypto/sha1.ts) and
 * with node:crypto's Hash (`hash.copy().digest()` per cell), labelled "node Hash".
 */
import { crypto } from '../src/crypto/crypto.js';
import { nodeHashRunningSha1 } from '../src/crypto/node-backend.js';
import type { CryptoBackend } from '../src/crypto/backend.js';
import { peelBackward, tor1Layers } from '../src/crypto/onion-layer.js';
import type { HopLayers } from '../src/crypto/onion-layer.js';

const PAYLOAD = 509;
/** A multiple of BATCH, so the batched rows crypt every cell they count. */
const CELLS = 20_480;
const WARMUP_CELLS = 20_480;
/** Cells per batch in the batched rows (one link read, one burst of a stream). */
const BATCH = 128;
const SAMPLES = 9;

interface Row {
  name: string;
  /** Per-sample setup outside the timed part; returns the timed body. */
  prepare: () => (i: number) => void;
}

/** The default backend with node:crypto's Hash for the running digests, to compare against. */
const nodeHash: CryptoBackend = { ...crypto, name: 'node Hash', runningSha1: nodeHashRunningSha1 };

/** One pool of payload buffers, allocated once and refilled by each sample's setup. */
const pool: Uint8Array[] = Array.from({ length: CELLS }, () => new Uint8Array(PAYLOAD));
const base = crypto.randomBytes(PAYLOAD);

/** Fill the pool with the sender's next CELLS sealed cells. */
function sealedStream(sender: HopLayers['forward']): Uint8Array[] {
  for (const p of pool) {
    p.set(base);
    sender.seal(p);
  }
  return pool;
}

function rows(backend: CryptoBackend, suffix: string): Row[] {
  const cell = crypto.randomBytes(PAYLOAD);
  const km = () => crypto.randomBytes(72);
  const hop = (seed: Uint8Array): [HopLayers, HopLayers] => [tor1Layers(seed, backend), tor1Layers(seed, backend)];

  const cryptLayer = tor1Layers(km(), backend).forward;
  const sealLayer = tor1Layers(km(), backend).forward;

  const [exitClient, exitRelay] = hop(km());
  const [midClient, midRelay] = hop(km());

  const client = [tor1Layers(km(), backend), tor1Layers(km(), backend), tor1Layers(km(), backend)];
  // A three-hop circuit both ways: relays[h] holds the same keys as clientSide[h].
  const path = [hop(km()), hop(km()), hop(km())];
  const clientSide = path.map(([c]) => c);
  const relaySide = path.map(([, r]) => r);
  const exitSeal = tor1Layers(km(), backend).backward;
  /** CELLS 514-byte channel cells (payload at byte 5), in batches of BATCH views. */
  const channelCells = (): { cells: Uint8Array[]; batches: Uint8Array[][] } => {
    const cells = Array.from({ length: CELLS }, () => {
      const c = new Uint8Array(5 + PAYLOAD);
      c.set(base, 5);
      return c;
    });
    const batches: Uint8Array[][] = [];
    for (let i = 0; i < CELLS; i += BATCH) batches.push(cells.slice(i, i + BATCH));
    return { cells, batches };
  };

  return [
    { name: 'crypt()' + suffix, prepare: () => () => cryptLayer.crypt(cell) },
    { name: 'seal()' + suffix, prepare: () => () => sealLayer.seal(cell) },
    {
      name: 'crypt()+open() exit, recognized' + suffix,
      prepare: () => {
        const cells = sealedStream(exitClient.forward);
        return (i) => {
          const p = cells[i]!;
          exitRelay.forward.crypt(p);
          if (!exitRelay.forward.open(p)) throw new Error('bench: exit did not recognize its cell');
        };
      },
    },
    {
      // The exit's and the client's path on a built circuit: a cell not recognized ends it.
      name: 'crypt()+openDigest(final) exit' + suffix,
      prepare: () => {
        const cells = sealedStream(exitClient.forward);
        return (i) => {
          const p = cells[i]!;
          exitRelay.forward.crypt(p);
          if (exitRelay.forward.openDigest(p, true) === null) throw new Error('bench: exit did not recognize its cell');
        };
      },
    },
    {
      name: 'crypt()+open() middle, not for us' + suffix,
      prepare: () => {
        // Cells for a later hop: after this layer, recognized is random (nonzero).
        const cells = sealedStream(midClient.forward);
        const other = tor1Layers(km(), backend).forward;
        for (const p of cells) other.crypt(p);
        return (i) => {
          const p = cells[i]!;
          midRelay.forward.crypt(p);
          midRelay.forward.open(p);
        };
      },
    },
    {
      // The exit's side of a download: each cell digested as its stream sends it, a batch crypted with one keystream call.
      name: `exit seal, batched (sealDigest each, cryptCells per ${BATCH})` + suffix,
      prepare: () => {
        const { cells, batches } = channelCells();
        const payloads = cells.map((c) => c.subarray(5));
        return (i) => {
          exitSeal.sealDigest(payloads[i]!);
          if (i % BATCH === BATCH - 1) exitSeal.cryptCells(batches[(i - (BATCH - 1)) / BATCH]!);
        };
      },
    },
    // The client's side of a download: cells from the exit, peeled a batch at a time; the payloads
    // copied back into the cells, or handed out as views of the last keystream output (as the client does).
    ...[false, true].map((handOut): Row => ({
      name: `client 3-hop peel, batched (peelBackward per ${BATCH}${handOut ? ', payloads handed out' : ''})` + suffix,
      prepare: () => {
        const { cells, batches } = channelCells();
        for (const c of cells) {
          const p = c.subarray(5);
          relaySide[2]!.backward.seal(p);
          relaySide[1]!.backward.crypt(p);
          relaySide[0]!.backward.crypt(p);
        }
        const layers = clientSide.map((h) => h.backward);
        const hops: number[] = [];
        const digests = new Uint8Array(20 * BATCH);
        const payloads: Uint8Array[] | undefined = handOut ? [] : undefined;
        return (i) => {
          if (i % BATCH !== BATCH - 1) return;
          peelBackward(layers, batches[(i - (BATCH - 1)) / BATCH]!, hops, digests, true, payloads);
          if (hops[BATCH - 1] !== 2) throw new Error('bench: the client did not recognize the exit\'s cell');
        };
      },
    })),
    {
      name: 'client 3-hop seal' + suffix,
      prepare: () => () => {
        client[2]!.forward.seal(cell);
        client[1]!.forward.crypt(cell);
        client[0]!.forward.crypt(cell);
      },
    },
  ];
}

function runOnce(row: Row, count: number): number {
  const body = row.prepare();
  const start = process.cpuUsage();
  for (let i = 0; i < count; i++) body(i);
  const used = process.cpuUsage(start);
  return (used.user + used.system) / count; // CPU µs per cell
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

const USAGE = 'usage: node dist/bench/onion-layer.bench.js (no options)';

function main(): void {
  const argv = process.argv.slice(2);
  if (argv.length > 0) {
    const help = argv[0] === '--help' || argv[0] === '-h';
    (help ? process.stdout : process.stderr).write(`${USAGE}\n`);
    process.exit(help ? 0 : 2);
  }
  console.log(`tor1 onion layer, backend ${crypto.name}, node ${process.version}`);
  console.log(`${CELLS} cells x ${SAMPLES} samples per row (median), ${PAYLOAD}-byte payloads\n`);
  const table: Array<{ op: string; 'µs/cell': string; 'MB/s': string; 'cells/s': string }> = [];
  const all = [...rows(crypto, ''), ...rows(nodeHash, ', node Hash').filter((r) => r.name !== 'crypt(), node Hash')];
  const samples: number[][] = all.map(() => []);
  for (const row of all) runOnce(row, WARMUP_CELLS);
  for (let s = 0; s < SAMPLES; s++) all.forEach((row, r) => samples[r]!.push(runOnce(row, CELLS)));
  for (const [r, row] of all.entries()) {
    const us = median(samples[r]!);
    table.push({
      op: row.name,
      'µs/cell': us.toFixed(2),
      'MB/s': (PAYLOAD / us).toFixed(1),
      'cells/s': Math.round(1e6 / us).toLocaleString('en-US'),
    });
  }
  console.table(table);
}

main();
