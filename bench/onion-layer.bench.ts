/**
 * Per-cell cost of tor1 relay crypto (src/crypto/onion-layer.ts) through the
 * default backend (node:crypto). A plain script:
 *   npx tsc -p . && node dist/bench/onion-layer.bench.js
 * Each row: warm-up, then SAMPLES timed runs of CELLS cells; the median run
 * gives µs per cell and MB/s of 509-byte payloads.
 */
import { crypto } from '../src/crypto/crypto.js';
import { tor1Layers } from '../src/crypto/onion-layer.js';
import type { HopLayers } from '../src/crypto/onion-layer.js';

const PAYLOAD = 509;
const CELLS = 20_000;
const WARMUP_CELLS = 20_000;
const SAMPLES = 9;

interface Row {
  name: string;
  /** Per-sample setup outside the timed part; returns the timed body. */
  prepare: () => (i: number) => void;
}

function hop(seed: Uint8Array): [HopLayers, HopLayers] {
  return [tor1Layers(seed), tor1Layers(seed)];
}

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

function rows(): Row[] {
  const cell = crypto.randomBytes(PAYLOAD);
  const km = () => crypto.randomBytes(72);

  const cryptLayer = tor1Layers(km()).forward;
  const sealLayer = tor1Layers(km()).forward;

  const [exitClient, exitRelay] = hop(km());
  const [midClient, midRelay] = hop(km());

  const client = [tor1Layers(km()), tor1Layers(km()), tor1Layers(km())];

  return [
    { name: 'crypt()', prepare: () => () => cryptLayer.crypt(cell) },
    { name: 'seal()', prepare: () => () => sealLayer.seal(cell) },
    {
      name: 'crypt()+open() exit, recognized',
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
      name: 'crypt()+open() middle, not for us',
      prepare: () => {
        // Cells for a later hop: after this layer, recognized is random (nonzero).
        const cells = sealedStream(midClient.forward);
        const other = tor1Layers(km()).forward;
        for (const p of cells) other.crypt(p);
        return (i) => {
          const p = cells[i]!;
          midRelay.forward.crypt(p);
          midRelay.forward.open(p);
        };
      },
    },
    {
      name: 'client 3-hop seal',
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
  const start = process.hrtime.bigint();
  for (let i = 0; i < count; i++) body(i);
  return Number(process.hrtime.bigint() - start) / 1e3 / count; // µs per cell
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function main(): void {
  console.log(`tor1 onion layer, backend ${crypto.name}, node ${process.version}`);
  console.log(`${CELLS} cells x ${SAMPLES} samples per row (median), ${PAYLOAD}-byte payloads\n`);
  const table: Array<{ op: string; 'µs/cell': string; 'MB/s': string; 'cells/s': string }> = [];
  for (const row of rows()) {
    runOnce(row, WARMUP_CELLS);
    const samples: number[] = [];
    for (let s = 0; s < SAMPLES; s++) samples.push(runOnce(row, CELLS));
    const us = median(samples);
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
