import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BOOTSTRAP_PHASES, BootstrapTracker, describeBootstrap, describeBootstrapProblem, type BootstrapChange } from '../../client/bootstrap.js';
import { bootstrapLine } from '../../client/control/format.js';
import { pickAnswer, planLookup } from '../../client/resolve.js';

test("bootstrap phases are Tor's numbers and tags, in order", () => {
  assert.deepEqual(
    BOOTSTRAP_PHASES.map((p) => `${p.progress}:${p.tag}`),
    ['0:starting', '25:requesting_status', '75:enough_dirinfo', '80:ap_conn', '90:ap_handshake_done', '95:circuit_create', '100:done'],
  );
});

test('the tracker moves forward only, keeps the last problem of a phase, and tells listeners', () => {
  const t = new BootstrapTracker();
  const heard: BootstrapChange[] = [];
  const stop = t.onChange((c) => heard.push(c));
  assert.equal(t.status.progress, 0);
  t.reach('requesting_status');
  t.problem('cannot fetch a consensus: connection refused');
  t.problem('cannot fetch a consensus: connection refused');
  assert.deepEqual({ ...t.status }, { progress: 25, tag: 'requesting_status', summary: 'Asking for networkstatus consensus', warning: 'cannot fetch a consensus: connection refused', problems: 2 });
  assert.equal(describeBootstrapProblem(t.status), 'Problem bootstrapping. Stuck at 25% (requesting_status): Asking for networkstatus consensus. (cannot fetch a consensus: connection refused; count 2)');
  assert.equal(bootstrapLine(t.status), 'WARN BOOTSTRAP PROGRESS=25 TAG=requesting_status SUMMARY="Asking for networkstatus consensus" WARNING="cannot fetch a consensus: connection refused" REASON=MISC COUNT=2 RECOMMENDATION=warn');
  t.reach('enough_dirinfo');
  assert.equal(t.status.warning, null);
  t.reach('requesting_status'); // behind: ignored
  assert.equal(t.status.tag, 'enough_dirinfo');
  t.reach('done');
  t.problem('late'); // once done, problems are not news
  assert.equal(t.done, true);
  assert.equal(describeBootstrap(t.status), 'Bootstrapped 100% (done): Done');
  assert.deepEqual(heard.map((c) => `${c.kind}:${c.status.progress}`), ['progress:25', 'problem:25', 'problem:25', 'progress:75', 'progress:100']);
  stop();
  assert.equal(bootstrapLine(t.status), 'NOTICE BOOTSTRAP PROGRESS=100 TAG=done SUMMARY="Done"');
});

test('lookups: an address is its own forward answer; reverse asks for the PTR name; answers are picked IPv4 first', () => {
  assert.deepEqual(planLookup('example.com', false), { ask: 'example.com' });
  assert.deepEqual(planLookup('10.0.0.1', false), { answer: { type: 'ipv4', value: '10.0.0.1' } });
  assert.deepEqual(planLookup('2001:DB8::1', false), { answer: { type: 'ipv6', value: '2001:db8::1' } });
  assert.deepEqual(planLookup('10.0.0.1', true), { ask: '1.0.0.10.in-addr.arpa' });
  assert.throws(() => planLookup('example.com', true), (e: Error & { code?: string }) => e.code === 'ERR_CONFIG');
  const answers = [
    { type: 'ipv6', address: '2001:db8::1', ttl: 1 },
    { type: 'ipv4', address: '192.0.2.1', ttl: 1 },
    { type: 'hostname', hostname: 'h.example', ttl: 1 },
  ] as const;
  assert.deepEqual(pickAnswer(answers, false), { type: 'ipv4', value: '192.0.2.1' });
  assert.deepEqual(pickAnswer([answers[0]], false), { type: 'ipv6', value: '2001:db8::1' });
  assert.deepEqual(pickAnswer(answers, true), { type: 'hostname', value: 'h.example' });
  assert.equal(pickAnswer([{ type: 'error', transient: false, ttl: 0 }], false), null);
  assert.equal(pickAnswer([answers[1]], true), null);
});
