/**
 * The directory at scale (docs/protocol.md §8.4, §8.7, §9.6): 10 000 synthetic
 * relays and 3 authorities. A plain script:
 *   npx tsc -p . && node dist/bench/directory.bench.js [--relays 10000] [--samples 5]
 *
 * Times: the first (cold) run, then the median wall-clock and CPU time of the samples:
 * - vote build: one authority's flags and exit summaries for every relay (buildVote);
 * - vote sign and vote parse+verify (what an authority does with another's vote);
 * - consensus build: the algorithm over three votes plus encoding the body;
 * - sign: three signatures over the body (one SHA-256, three Ed25519);
 * - gzip: compressing the signed consensus (what authorities serve);
 * - client gunzip and client parse+verify: what a client does with it.
 * - the diff to the next consensus after 1 % churn: making it (the relay's
 *   cache) and applying it (the client).
 * Sizes: raw and gzip-compressed, for the vote, the consensus and the diff.
 * Goals (the issue): build under 2 s, client parse+verify under 200 ms.
 */
import { writeFileSync } from 'node:fs';
import { gunzipSync, gzipSync } from 'node:zlib';
import { crypto } from '../src/crypto/crypto.js';
import { makeAuthorityCert, type AuthoritySigner } from '../src/netdoc/authority-cert.js';
import { encodeConsensusBody, assembleConsensus, verifyConsensus, signConsensusBody } from '../src/netdoc/consensus.js';
import type { RelayDescriptor } from '../src/netdoc/descriptor.js';
import { parseExitPolicy } from '../src/netdoc/exit-policy.js';
import { DEFAULT_EXIT_POLICY_LINES, NON_EXIT_POLICY_LINES } from '../src/netdoc/default-policies.js';
import { encodeVote, verifyVote, type Vote } from '../src/netdoc/vote.js';
import { applyConsensusDiff, makeConsensusDiff } from '../src/netdoc/consensus-diff.js';
import type { ConsensusBody, ConsensusRelay } from '../src/netdoc/consensus.js';
import { buildVote, type RelayStatus } from '../directory/vote-builder.js';
import { computeConsensus, SUPPORTED_METHODS } from '../directory/consensus-algorithm.js';
import type { UptimeStats } from '../directory/relay-history.js';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const RELAYS = arg('relays', 10_000);
const SAMPLES = arg('samples', 5);
const NOW = Math.floor(Date.now() / 1000) * 1000;
const VA = Math.floor(NOW / 3600_000) * 3600_000 + 3600_000;
const DAY = 86_400_000;

/** Deterministic pseudo-random numbers (so runs are comparable). */
let state = 0x12345678;
function rand(): number {
  state ^= state << 13;
  state ^= state >>> 17;
  state ^= state << 5;
  return (state >>> 0) / 0x1_0000_0000;
}

function signer(n: number): AuthoritySigner {
  const identitySeed = crypto.sha256(new TextEncoder().encode(`bench authority ${n}`));
  const signingSeed = crypto.sha256(new TextEncoder().encode(`bench signing ${n}`));
  return { signingSeed, cert: makeAuthorityCert(identitySeed, signingSeed, NOW - DAY, NOW + 30 * DAY) };
}

const exitPolicy = parseExitPolicy(DEFAULT_EXIT_POLICY_LINES);
const nonExitPolicy = parseExitPolicy(NON_EXIT_POLICY_LINES);

/** 10 000 relays: a third exits, bandwidths spread over three orders of magnitude, most known for weeks. */
function syntheticRelays(): RelayStatus[] {
  return Array.from({ length: RELAYS }, (_, i) => {
    const descriptor: RelayDescriptor = {
      nickname: `relay${i}`,
      identity: crypto.randomBytes(32),
      linkKey: crypto.randomBytes(32),
      linkCert: new Uint8Array(96),
      ntorOnionKey: crypto.randomBytes(32),
      address: `${10 + (i % 200)}.${(i >> 8) % 256}.${i % 256}.${1 + (i % 250)}`,
      orPort: 9001,
      bandwidth: Math.round(20_000 * 1000 ** rand()),
      platform: 'Allium 0.1.0',
      published: NOW - 3600_000,
      exitPolicy: i % 3 === 0 ? exitPolicy : nonExitPolicy,
    };
    const stats: UptimeStats = { timeKnownMs: (10 + 50 * rand()) * DAY, currentUptimeMs: rand() * 20 * DAY, mtbfMs: (5 + 30 * rand()) * DAY, wfu: 0.97 + (3 * rand()) / 100 };
    return { descriptor, digest: crypto.randomBytes(32), running: rand() > 0.02, stats, measured: Math.round(descriptor.bandwidth * (0.5 + rand())) };
  });
}

/** Wall-clock and CPU (user + system) milliseconds of one run. */
function time<T>(fn: () => T): [T, number, number] {
  const cpu = process.cpuUsage();
  const start = process.hrtime.bigint();
  const value = fn();
  const wall = Number(process.hrtime.bigint() - start) / 1e6;
  const used = process.cpuUsage(cpu);
  return [value, wall, (used.user + used.system) / 1000];
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** The first (cold) run, then the medians of SAMPLES more: wall and CPU ms. */
interface Timing {
  cold: number;
  wall: number;
  cpu: number;
}

const timings: { step: string; t: Timing }[] = [];

/** Times `fn` as `step`; returns the last value. */
function measure<T>(step: string, fn: () => T): T {
  let [value, cold] = time(fn);
  const walls: number[] = [];
  const cpus: number[] = [];
  for (let s = 0; s < SAMPLES; s++) {
    const [v, wall, cpu] = time(fn);
    value = v;
    walls.push(wall);
    cpus.push(cpu);
  }
  timings.push({ step, t: { cold, wall: median(walls), cpu: median(cpus) } });
  return value;
}

function main(): void {
  console.log(`directory at scale: ${RELAYS} relays, 3 authorities; node ${process.version}; median of ${SAMPLES} runs\n`);
  const relays = syntheticRelays();
  const signers = [signer(1), signer(2), signer(3)];
  // Each authority sees slightly different measurements and a few relays down.
  const views = signers.map(() =>
    relays.map((r) => ({ ...r, running: r.running && rand() > 0.01, measured: Math.round((r.measured ?? 0) * (0.9 + rand() / 5)) })),
  );
  const voteOf = (a: number): Vote =>
    buildVote({
      authority: { nickname: `auth${a + 1}`, identity: signers[a]!.cert.identity, address: `127.100.0.${a + 1}`, dirPort: 7000 },
      published: VA - 60_000,
      validAfter: VA,
      freshUntil: VA + 3600_000,
      validUntil: VA + 3 * 3600_000,
      relays: views[a]!,
      exitsAllowLoopback: false,
      methods: SUPPORTED_METHODS,
    });

  const vote0 = measure('vote build (flags, summaries; one authority)', () => voteOf(0));
  const votes = [vote0, voteOf(1), voteOf(2)];
  const voteText = measure('vote sign (encode + Ed25519)', () => encodeVote(vote0, signers[0]!));
  const voteTexts = votes.map((v, i) => encodeVote(v, signers[i]!));
  measure('vote parse + verify (at another authority)', () => verifyVote(voteText, NOW, 60_000));
  const parsedVotes = voteTexts.map((t) => verifyVote(t, NOW, 60_000));

  const body = measure('consensus build (3 votes → body)', () => encodeConsensusBody(computeConsensus(parsedVotes)));
  const text = measure('sign (3 signatures)', () => assembleConsensus(body, signers.map((s) => signConsensusBody(body, s))));
  const gz = measure('gzip', () => gzipSync(Buffer.from(text, 'utf8')));
  const unzipped = measure('client gunzip', () => gunzipSync(gz).toString('utf8'));
  const trusted = signers.map((s) => s.cert.identity);
  const verified = measure('client parse + verify', () => verifyConsensus(unzipped, trusted, VA + 1000));
  const voteGz = gzipSync(Buffer.from(voteText, 'utf8'));

  // The next consensus after 1 % churn: 50 relays with a new descriptor and weight, 25 gone, 25 new.
  const bodyNow = computeConsensus(parsedVotes);
  const changed = bodyNow.relays.map((r, i): ConsensusRelay => (i % 200 === 0 ? { ...r, descriptorDigest: crypto.randomBytes(32), bandwidth: r.bandwidth + 1 } : r));
  const kept = changed.filter((_, i) => i % 400 !== 7);
  const fresh = Array.from({ length: 25 }, (_, i) => ({ ...bodyNow.relays[i]!, nickname: `newrelay${i}`, identity: crypto.randomBytes(32) }));
  const nextBody: ConsensusBody = { ...bodyNow, validAfter: VA + 3600_000, freshUntil: VA + 7200_000, validUntil: VA + 4 * 3600_000, relays: [...kept, ...fresh] };
  const nextText = assembleConsensus(encodeConsensusBody(nextBody), signers.map((s) => signConsensusBody(encodeConsensusBody(nextBody), s)));
  const diff = measure('diff after 1 % churn (make)', () => makeConsensusDiff(text, nextText));
  measure('client applies the diff', () => applyConsensusDiff(text, diff));
  const diffGz = gzipSync(Buffer.from(diff, 'utf8'));
  const dump = process.env['ALLIUM_BENCH_DUMP'];
  if (dump !== undefined) {
    writeFileSync(`${dump}.txt`, text);
    writeFileSync(`${dump}-ids.json`, JSON.stringify(trusted.map((t) => Buffer.from(t).toString('hex'))));
    writeFileSync(`${dump}-va.txt`, String(VA));
  }

  console.table(timings.map(({ step, t }) => ({ step, 'cold ms': t.cold.toFixed(0), 'wall ms': t.wall.toFixed(0), 'cpu ms': t.cpu.toFixed(0) })));
  const of = (step: string) => timings.find((x) => x.step.startsWith(step))!.t;
  const buildMs = of('consensus build').wall;
  const verifyMs = of('client parse').wall;
  const sizes = {
    'vote raw': voteText.length,
    'vote gzip': voteGz.length,
    'consensus raw': text.length,
    'consensus gzip': gz.length,
    'diff after 1 % churn': diff.length,
    'diff after 1 % churn, gzip': diffGz.length,
  };
  console.table(Object.entries(sizes).map(([what, bytes]) => ({ what, bytes: bytes.toLocaleString('en-US'), 'bytes/relay': (bytes / RELAYS).toFixed(1) })));
  console.log(`\nconsensus: ${verified.relays.length} relays listed, method ${verified.consensusMethod}, ${verified.verifiedSigners.length} signatures; weights ${verified.bandwidthWeights === undefined ? 'none' : 'present'}`);
  console.log(`goals: build ${buildMs.toFixed(0)} ms (< 2000: ${buildMs < 2000 ? 'met' : 'NOT met'}), client parse + verify ${verifyMs.toFixed(0)} ms (< 200: ${verifyMs < 200 ? 'met' : 'NOT met'})`);
  console.log('(cold: the first run, JIT not warmed; wall and cpu: medians of the later runs; cpu counts user + system time of this process, which a shared machine does not inflate)');
  console.log(JSON.stringify({ bench: 'directory', relays: RELAYS, ms: Object.fromEntries(timings.map(({ step, t }) => [step, t])), bytes: sizes }));
}

main();
