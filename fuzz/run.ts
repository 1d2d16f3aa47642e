/**
 * `npm run fuzz`: every network-facing parser and state machine
 * (fuzz/targets/), FUZZ_RUNS inputs each (default 1,000,000), each target in
 * its own process under V8 coverage, FUZZ_JOBS at a time (default 2). Prints
 * per target: inputs, accepted / refused, crashes, the slowest input, peak
 * memory, and the branch coverage (c8) of the target's modules. Exits 1 if
 * any target crashed or hung.
 *
 *   npm run fuzz                         every target
 *   npm run fuzz -- relay-msg socks5     some targets
 *   npm run fuzz -- --list               the targets and what they exercise
 *   npm run fuzz -- --help               this usage
 *   npm run fuzz -- --replay T B I       print input I of batch B of target T (same FUZZ_SEED)
 *   npm run fuzz -- --make-corpus        rewrite fuzz/corpus/ from the targets' generators
 *
 * Environment: FUZZ_RUNS, FUZZ_SEED (default 1; inputs are a pure function
 * of target, seed, batch and index), FUZZ_JOBS, FUZZ_HANG_MS (no batch of
 * 1000 inputs may take longer; default 120000), FUZZ_HEAP_MB (per-process
 * V8 heap limit, default 1024: an input that allocates without bound kills
 * its process, which is reported as a crash), FUZZ_COVERAGE=0 to skip
 * coverage. Crashes are written to fuzz/crashes/<target>.json.
 */
import { fork } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BATCH_SIZE, replayInput, type TargetResult } from './engine.js';
import { REPO_ROOT, writeCorpus } from './corpus.js';
import { TARGETS, makeCorpus, targetNamed } from './targets/index.js';

interface Coverage {
  branches: { covered: number; total: number };
  lines: { covered: number; total: number };
}

interface Outcome {
  name: string;
  result: TargetResult | null;
  /** Why the process ended without a result (hang, out of memory, exit code). */
  failure: string | null;
  lastBatch: number;
  coverage: Coverage | null;
}

const env = process.env;
const RUNS = Number(env.FUZZ_RUNS ?? 1_000_000);
const SEED = Number(env.FUZZ_SEED ?? 1);
const JOBS = Math.max(1, Number(env.FUZZ_JOBS ?? 2));
const HANG_MS = Number(env.FUZZ_HANG_MS ?? 120_000);
const HEAP_MB = Number(env.FUZZ_HEAP_MB ?? 1024);
const COVERAGE = env.FUZZ_COVERAGE !== '0';
const CHILD = fileURLToPath(new URL('./child.js', import.meta.url));

async function branchCoverage(dir: string, modules: readonly string[]): Promise<Coverage | null> {
  const require = createRequire(import.meta.url);
  const { Report } = require('c8') as { Report: new (opts: Record<string, unknown>) => { getCoverageMapFromAllCoverageFiles(): Promise<CoverageMap> } };
  const include = modules.map((m) => `dist/${m.replace(/\.ts$/, '.js')}`);
  const report = new Report({ include, exclude: [], reporter: [], tempDirectory: dir, reportsDirectory: dir, src: [REPO_ROOT], excludeNodeModules: true, all: false });
  const cwd = process.cwd();
  process.chdir(REPO_ROOT);
  try {
    const map = await report.getCoverageMapFromAllCoverageFiles();
    const s = map.getCoverageSummary();
    return { branches: { covered: s.branches.covered, total: s.branches.total }, lines: { covered: s.lines.covered, total: s.lines.total } };
  } finally {
    process.chdir(cwd);
  }
}

interface CoverageMap {
  getCoverageSummary(): { branches: { covered: number; total: number }; lines: { covered: number; total: number } };
}

function runOne(name: string): Promise<Outcome> {
  const target = targetNamed(name)!;
  const covDir = mkdtempSync(join(tmpdir(), `allium-fuzz-${name}-`));
  return new Promise((resolve) => {
    const outcome: Outcome = { name, result: null, failure: null, lastBatch: -1, coverage: null };
    const child = fork(CHILD, [name, String(RUNS), String(SEED)], {
      execArgv: [`--max-old-space-size=${HEAP_MB}`],
      env: { ...env, ...(COVERAGE ? { NODE_V8_COVERAGE: covDir } : {}) },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    let watchdog = setTimeout(onHang, HANG_MS);
    function onHang(): void {
      outcome.failure = `no progress for ${HANG_MS} ms after batch ${outcome.lastBatch} (replay: npm run fuzz -- --replay ${name} ${outcome.lastBatch + 1} <0..${BATCH_SIZE - 1}>)`;
      child.kill('SIGKILL');
    }
    child.on('message', (msg: { type: string; batch?: number; result?: TargetResult }) => {
      if (msg.type === 'progress') {
        outcome.lastBatch = msg.batch!;
        clearTimeout(watchdog);
        watchdog = setTimeout(onHang, HANG_MS);
      } else if (msg.type === 'result') {
        outcome.result = msg.result!;
      }
    });
    child.on('exit', (code, signal) => {
      clearTimeout(watchdog);
      if (outcome.result === null && outcome.failure === null) {
        outcome.failure = `process ended (${signal ?? `exit ${code}`}) during batch ${outcome.lastBatch + 1}; out of memory or a crash outside an input`;
      }
      const finish = async () => {
        if (COVERAGE && outcome.result !== null) {
          try {
            outcome.coverage = await branchCoverage(covDir, target.modules);
          } catch (error) {
            process.stderr.write(`coverage of ${name} failed: ${(error as Error).message}\n`);
          }
        }
        rmSync(covDir, { recursive: true, force: true });
        resolve(outcome);
      };
      void finish();
    });
  });
}

function pct(c: { covered: number; total: number } | undefined): string {
  if (c === undefined || c.total === 0) return '-';
  return `${((100 * c.covered) / c.total).toFixed(1)}% (${c.covered}/${c.total})`;
}

function mib(n: number): string {
  return `${(n / 1048576).toFixed(0)}`;
}

function printRow(o: Outcome): void {
  const r = o.result;
  if (r === null) {
    process.stdout.write(`| ${o.name} | - | - | - | FAILED: ${o.failure} | - | - | - |\n`);
    return;
  }
  const slow = r.slowest === null ? '-' : `${r.slowest.ms.toFixed(2)} ms (${r.slowest.origin}, ${r.slowest.length} ${targetNamed(o.name)!.kind === 'text' ? 'chars' : 'bytes'}, batch ${r.slowest.batch} #${r.slowest.index})`;
  const rate = r.elapsedMs > 0 ? Math.round((r.inputs * 1000) / r.elapsedMs) : 0;
  process.stdout.write(
    `| ${o.name} | ${r.inputs} | ${r.accepted} / ${r.refused} | ${r.crashes} | ${slow} | ${rate}/s | ${mib(r.peakRss)} / ${mib(r.peakHeap)} | ${pct(o.coverage?.branches)} | ${pct(o.coverage?.lines)} |\n`,
  );
}

function saveCrashes(o: Outcome): void {
  if (o.result === null || o.result.crashList.length === 0) return;
  const dir = join(REPO_ROOT, 'fuzz', 'crashes');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${o.name}.json`), `${JSON.stringify({ seed: SEED, crashes: o.result.crashList }, null, 2)}\n`);
}

const USAGE = `usage:
  npm run fuzz                         every target, FUZZ_RUNS inputs each (default 1,000,000)
  FUZZ_RUNS=5000 npm run fuzz          a quick pass
  npm run fuzz -- relay-msg socks5     some targets
  npm run fuzz -- --list               the targets and what they exercise
  npm run fuzz -- --replay T B I       print input I of batch B of target T (same FUZZ_SEED)
  npm run fuzz -- --make-corpus        rewrite fuzz/corpus/ from the targets' generators
environment: FUZZ_RUNS, FUZZ_SEED (default 1), FUZZ_JOBS (default 2), FUZZ_HANG_MS (default 120000),
  FUZZ_HEAP_MB (default 1024), FUZZ_COVERAGE=0 to skip coverage; crashes go to fuzz/crashes/<target>.json
`;

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  if (args[0] === '--help' || args[0] === '-h') {
    process.stdout.write(USAGE);
    return 0;
  }
  if (args[0] === '--list') {
    for (const t of TARGETS) process.stdout.write(`${t.name.padEnd(18)} ${t.description}\n`);
    return 0;
  }
  if (args[0] === '--make-corpus') {
    const corpus = makeCorpus();
    for (const [name, made] of Object.entries(corpus)) {
      // Only valid messages: drop what the target itself refuses (e.g. a generated descriptor from the future).
      const target = targetNamed(name);
      const items = made.filter((item) => {
        try {
          target?.run(item);
          return true;
        } catch {
          return false;
        }
      });
      writeCorpus(name, items);
      process.stdout.write(`fuzz/corpus/${name}: ${items.length} messages (${made.length - items.length} refused ones dropped)\n`);
    }
    return 0;
  }
  if (args[0] === '--replay') {
    const target = targetNamed(args[1] ?? '');
    if (target === undefined) throw new Error(`unknown target ${args[1]}`);
    const { input, origin } = replayInput(target, SEED, Number(args[2]), Number(args[3]));
    process.stdout.write(`${origin}: ${typeof input === 'string' ? JSON.stringify(input) : Buffer.from(input).toString('hex')}\n`);
    target.run(input);
    process.stdout.write('ran without a crash\n');
    return 0;
  }
  const unknown = args.filter((a) => targetNamed(a) === undefined);
  if (unknown.length > 0) {
    process.stderr.write(`unknown fuzz target(s) ${unknown.join(', ')}; --list shows them\n`);
    return 2;
  }
  const names = args.length > 0 ? args : TARGETS.map((t) => t.name);
  process.stdout.write(`fuzzing ${names.length} targets, ${RUNS} inputs each, seed ${SEED}, ${JOBS} at a time${COVERAGE ? ', with coverage' : ''}\n\n`);
  process.stdout.write('| target | inputs | accepted / refused | crashes | slowest input | rate | peak RSS / heap MiB | branch coverage | line coverage |\n|---|---:|---:|---:|---|---:|---:|---|---|\n');
  const started = Date.now();
  const queue = [...names];
  const outcomes: Outcome[] = [];
  const worker = async (): Promise<void> => {
    for (let name = queue.shift(); name !== undefined; name = queue.shift()) {
      const o = await runOne(name);
      printRow(o);
      saveCrashes(o);
      outcomes.push(o);
    }
  };
  await Promise.all(Array.from({ length: Math.min(JOBS, names.length) }, worker));
  const bad = outcomes.filter((o) => o.result === null || o.result.crashes > 0);
  process.stdout.write(`\n${outcomes.reduce((n, o) => n + (o.result?.inputs ?? 0), 0)} inputs in ${((Date.now() - started) / 60_000).toFixed(1)} min; `);
  process.stdout.write(bad.length === 0 ? 'no crashes\n' : `${bad.length} target(s) crashed or hung: ${bad.map((o) => o.name).join(', ')} (fuzz/crashes/)\n`);
  for (const o of bad) for (const c of o.result?.crashList.slice(0, 3) ?? []) process.stdout.write(`\n${o.name} batch ${c.batch} #${c.index} (${c.origin}): ${c.error}\n  input ${c.input.slice(0, 400)}\n`);
  return bad.length === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
    process.exit(2);
  },
);
