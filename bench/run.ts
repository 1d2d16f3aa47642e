/**
 * `npm run bench`: runs every benchmark in turn, each in its own process so
 * one cannot warm or slow another. Pass names to run a subset, or one name
 * and its options (everything after the name goes to that benchmark):
 *   npm run bench -- onion-layer testnet
 *   npm run bench -- relay-load --workers 1,2,1,2
 * Each benchmark gets 5 minutes (soak: SOAK_MINUTES + 5); one run with
 * options gets 30, since options usually ask for a longer run.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ALL = ['onion-layer', 'circuit', 'link', 'relay-load', 'testnet', 'resilience', 'wan', 'directory', 'metrics'];
/** Run only when named: `npm run bench -- soak` (SOAK_MINUTES, default 3), `npm run bench -- load`, `npm run bench -- cpu-per-byte`. */
const ON_REQUEST = ['soak', 'load', 'mem-cap', 'cpu-per-byte'];
const argv = process.argv.slice(2);
// A name followed by anything that starts with '-': one benchmark, the rest its options.
const withOptions = argv.length > 1 && argv.slice(1).some((a) => a.startsWith('-'));
const wanted = argv.length === 0 ? ALL : withOptions ? [argv[0]!] : argv;
const options = withOptions ? argv.slice(1) : [];
// Every name is checked before any benchmark runs.
const unknown = wanted.filter((name) => !ALL.includes(name) && !ON_REQUEST.includes(name));
if (unknown.length > 0) {
  process.stderr.write(`unknown benchmark ${unknown.join(', ')}; choose from ${[...ALL, ...ON_REQUEST].join(', ')} (npm run bench -- NAME --help for a benchmark's options)\n`);
  process.exit(2);
}
let failed = 0;
for (const name of wanted) {
  process.stdout.write(`\n## ${name}\n\n`);
  const script = fileURLToPath(new URL(`./${name}.bench.js`, import.meta.url));
  const minutes = name === 'soak' ? Number(process.env.SOAK_MINUTES ?? 3) + 5 : options.length > 0 ? 30 : 5;
  const result = spawnSync(process.execPath, [script, ...options], { stdio: 'inherit', timeout: minutes * 60_000 });
  if (result.status !== 0) {
    failed++;
    process.stderr.write(`benchmark ${name} failed (${result.signal ?? result.status})\n`);
  }
}
process.exit(failed === 0 ? 0 : 1);
