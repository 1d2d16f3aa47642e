/**
 * `npm run bench`: runs every benchmark in turn, each in its own process so
 * one cannot warm or slow another. Pass names to run a subset:
 *   npm run bench -- onion-layer testnet
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ALL = ['onion-layer', 'circuit', 'link', 'relay-load', 'testnet', 'resilience', 'wan', 'directory', 'metrics'];
/** Run only when named: `npm run bench -- soak` (SOAK_MINUTES, default 3), `npm run bench -- load`, `npm run bench -- cpu-per-byte`. */
const ON_REQUEST = ['soak', 'load', 'mem-cap', 'cpu-per-byte'];
const wanted = process.argv.slice(2).length > 0 ? process.argv.slice(2) : ALL;
// Every name is checked before any benchmark runs (options go to a benchmark run directly: node dist/bench/NAME.bench.js --help).
const unknown = wanted.filter((name) => !ALL.includes(name) && !ON_REQUEST.includes(name));
if (unknown.length > 0) {
  process.stderr.write(`unknown benchmark ${unknown.join(', ')}; choose from ${[...ALL, ...ON_REQUEST].join(', ')} (options: run node dist/bench/NAME.bench.js directly)\n`);
  process.exit(2);
}
let failed = 0;
for (const name of wanted) {
  process.stdout.write(`\n## ${name}\n\n`);
  const script = fileURLToPath(new URL(`./${name}.bench.js`, import.meta.url));
  const timeout = name === 'soak' ? (Number(process.env.SOAK_MINUTES ?? 3) + 5) * 60_000 : 5 * 60_000;
  const result = spawnSync(process.execPath, [script], { stdio: 'inherit', timeout });
  if (result.status !== 0) {
    failed++;
    process.stderr.write(`benchmark ${name} failed (${result.signal ?? result.status})\n`);
  }
}
process.exit(failed === 0 ? 0 : 1);
