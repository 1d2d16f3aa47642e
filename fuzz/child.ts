/**
 * One fuzz target in its own process (started by fuzz/run.ts, with
 * NODE_V8_COVERAGE set so the parent can report branch coverage):
 *   node dist/fuzz/child.js <target> <runs> <seed>
 * Reports progress after every batch over IPC (the parent's watchdog), then
 * the TargetResult, then exits.
 */
import { runTarget } from './engine.js';
import { targetNamed } from './targets/index.js';

const [name, runsText, seedText] = process.argv.slice(2);
const target = targetNamed(name ?? '');
if (target === undefined) {
  process.stderr.write(`unknown fuzz target ${name}\n`);
  process.exit(2);
}
const send = (msg: unknown): void => {
  if (process.send !== undefined) process.send(msg);
};
const result = runTarget(target, {
  runs: Number(runsText),
  seed: Number(seedText),
  onBatch: (batch, r) => send({ type: 'progress', batch, inputs: r.inputs, crashes: r.crashes }),
});
send({ type: 'result', result });
process.disconnect?.();
