/**
 * The circuit manager against a network in one process (real keys, Noise
 * links and ntor over in-memory pairs; exits connect to a real HTTP server
 * on 127.0.0.1): isolation, circuits built ahead and claimed by new
 * isolation keys, NEWNYM, dirtiness, streams retried where that is safe
 * (optimistic data sent again with each retry), lookups (RESOLVE) on the
 * circuits of their key and retried, failed relays and guards avoided, and
 * failed builds reported.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { Duplex } from 'node:stream';
import { CircuitManager, type CircuitManagerOptions } from '../../client/circuit-manager.js';
import { GuardSet } from '../../client/guard-set.js';
import { RelayStatus } from '../../client/relay-status.js';
import { EndReason } from '../../src/cell/reasons.js';
import { AlliumError, StreamEndedError } from '../../src/errors.js';
import { HELLO_BODY, startPayloadServer } from '../support/payload-server.js';
import { simNetwork, type SimRelaySpec } from '../support/sim-network.js';
import { sfc32 } from '../support/seeded-random.js';

const WAIT_MS = 10_000;

/** 3 guards, 3 middles, 3 exits. */
function specs(): SimRelaySpec[] {
  return [
    { nickname: 'guard1', flags: ['Guard'] },
    { nickname: 'guard2', flags: ['Guard'] },
    { nickname: 'guard3', flags: ['Guard'] },
    { nickname: 'middle1', flags: [] },
    { nickname: 'middle2', flags: [] },
    { nickname: 'middle3', flags: [] },
    { nickname: 'exit1', flags: ['Exit'] },
    { nickname: 'exit2', flags: ['Exit'] },
    { nickname: 'exit3', flags: ['Exit'] },
  ];
}

async function setup(t: TestContext, opts: Partial<CircuitManagerOptions> = {}, relays: SimRelaySpec[] = specs()) {
  const net = simNetwork(relays);
  const server = await startPayloadServer({ host: '127.0.0.1' });
  const logs: string[] = [];
  const guards = new GuardSet(null, { random: sfc32(4), log: (m) => logs.push(m) });
  const manager = new CircuitManager({
    consensus: () => net.consensus(),
    transport: net.transport,
    random: sfc32(8),
    guards,
    ...opts,
  });
  t.after(async () => {
    await manager.close();
    await server.close();
    net.cleanup();
  });
  manager.start();
  if (opts.preemptive?.minClean !== 0) await within(manager.ready, WAIT_MS, 'the first circuit');
  return { net, server, manager, logs };
}

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function until(check: () => boolean, what: string, ms = WAIT_MS): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * GET /hello over `stream`; resolves with the body. The server closes its
 * side after the answer; on a half-closed stream (docs/protocol.md §6.4) ours
 * stays open until we end it too, as a TCP client closes after the answer.
 */
async function hello(stream: Duplex): Promise<string> {
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  stream.write('GET /hello HTTP/1.0\r\nHost: x\r\n\r\n');
  await within(once(stream, 'end'), WAIT_MS, 'the response');
  stream.end();
  const all = Buffer.concat(chunks).toString();
  return all.slice(all.indexOf('\r\n\r\n') + 4);
}

function circuitOf(manager: CircuitManager, stream: Duplex): number {
  const info = manager.streamInfo(stream);
  assert.ok(info !== undefined, 'the stream is listed');
  assert.ok(manager.streamStatus().some((s) => s.id === info.id && s.circuitId === info.circuitId));
  return info.circuitId;
}

test('isolation: one key shares a circuit, two keys never do; new keys take clean circuits built ahead', async (t) => {
  const { server, manager } = await setup(t);
  await until(() => manager.circuitStatus().filter((c) => c.purpose === 'clean').length >= 2, 'two clean circuits');
  const clean = new Set(manager.circuitStatus().filter((c) => c.purpose === 'clean').map((c) => c.id));

  const a1 = await manager.openStream('127.0.0.1', server.port, { isolation: 'alice' });
  const ca1 = circuitOf(manager, a1);
  const a2 = await manager.openStream('127.0.0.1', server.port, { isolation: 'alice' });
  const ca2 = circuitOf(manager, a2);
  const b1 = await manager.openStream('127.0.0.1', server.port, { isolation: 'bob' });
  const cb1 = circuitOf(manager, b1);
  assert.equal(ca1, ca2, 'one key, one circuit');
  assert.notEqual(ca1, cb1, 'two keys, two circuits');
  assert.ok(clean.has(ca1) && clean.has(cb1), 'both keys took circuits that were built ahead');
  assert.equal(await hello(a1), HELLO_BODY);
  assert.equal(await hello(b1), HELLO_BODY);
  a2.destroy();
  // The pool is topped up again.
  await until(() => manager.circuitStatus().filter((c) => c.purpose === 'clean').length >= 2, 'clean circuits again');
  const info = manager.circuitStatus().find((c) => c.id === ca1)!;
  assert.equal(info.purpose, 'dirty');
  assert.equal(info.path.length, 3);
  assert.equal(info.path[0]!.nickname.startsWith('guard'), true, 'the first hop is a guard');
});

test('newnym: new streams use a new circuit; the old one takes no new streams and closes when its streams end', async (t) => {
  const { server, manager } = await setup(t);
  const before = await manager.openStream('127.0.0.1', server.port, { isolation: 'alice' });
  const old = circuitOf(manager, before);
  manager.newnym();
  assert.equal(manager.circuitStatus().find((c) => c.id === old)!.purpose, 'retired');
  const after = await manager.openStream('127.0.0.1', server.port, { isolation: 'alice' });
  const fresh = circuitOf(manager, after);
  assert.notEqual(fresh, old);
  const again = await manager.openStream('127.0.0.1', server.port, { isolation: 'alice' });
  assert.equal(circuitOf(manager, again), fresh, 'after newnym, streams of one key share the new circuit');
  assert.equal(await hello(before), HELLO_BODY, 'the old stream keeps working');
  await until(() => !manager.circuitStatus().some((c) => c.id === old), 'the retired circuit to close');
  after.destroy();
  again.destroy();
});

test('isolation by destination port, and dirtiness: no new streams on a circuit dirty for longer than the maximum', async (t) => {
  const { server, manager } = await setup(t, { isolation: { isolateDestPort: true }, maxDirtinessMs: 300 });
  const other = await startPayloadServer({ host: '127.0.0.1' });
  t.after(() => other.close());
  const s1 = await manager.openStream('127.0.0.1', server.port);
  const c1 = circuitOf(manager, s1);
  const s2 = await manager.openStream('127.0.0.1', other.port);
  assert.notEqual(c1, circuitOf(manager, s2), 'ports isolated');
  s1.destroy();
  s2.destroy();
  await new Promise((r) => setTimeout(r, 350));
  const s3 = await manager.openStream('127.0.0.1', server.port);
  assert.notEqual(circuitOf(manager, s3), c1, 'the dirty circuit expired');
  await until(() => !manager.circuitStatus().some((c) => c.id === c1), 'the expired circuit to close');
  s3.destroy();
});

test('an exit that refuses by policy: the stream is tried on another exit and succeeds', async (t) => {
  const relays = specs();
  // exit1 and exit2 advertise every port but refuse this destination; exit3 accepts it.
  relays[6]!.policy = ['reject *:*'];
  relays[7]!.policy = ['reject *:*'];
  const { server, manager } = await setup(t, { preemptive: { minClean: 0, cleanPerPort: 0 } }, relays);
  for (let i = 0; i < 6; i++) {
    const stream = await manager.openStream('127.0.0.1', server.port, { isolation: `user${i}` });
    const circuit = manager.circuitStatus().find((c) => c.id === circuitOf(manager, stream))!;
    assert.equal(circuit.path[2]!.nickname, 'exit3');
    assert.equal(await hello(stream), HELLO_BODY);
  }
});

test('when every exit refuses, the stream fails with the exit policy reason; a port no exit allows fails at once', async (t) => {
  const relays = specs().map((r) => (r.flags.includes('Exit') ? { ...r, policy: ['reject *:*'] } : r));
  const { server, manager } = await setup(t, {}, relays);
  await assert.rejects(manager.openStream('127.0.0.1', server.port), (e: unknown) => e instanceof StreamEndedError && e.reason === EndReason.EXITPOLICY);
  const noPort = specs().map((r) => (r.flags.includes('Exit') ? { ...r, summary: 'reject 8443' } : r));
  const t2 = await setup(t, {}, noPort);
  const started = Date.now();
  await assert.rejects(t2.manager.openStream('127.0.0.1', 8443), (e: unknown) => e instanceof StreamEndedError && e.reason === EndReason.EXITPOLICY);
  assert.ok(Date.now() - started < 1000);
  // Such a port is no reason to stop building ahead: new keys still find clean circuits, and the pool refills.
  for (let i = 0; i < 3; i++) {
    const s = await t2.manager.openStream('127.0.0.1', t2.server.port, { isolation: `k${i}` });
    s.destroy();
  }
  await until(() => t2.manager.circuitStatus().filter((c) => c.purpose === 'clean').length >= 2, 'clean circuits after the refused port', 5000);
});

test('a relay of a busy circuit dies: its stream ends at once, the next streams get through on paths without it', async (t) => {
  const { net, server, manager } = await setup(t);
  const stream = await manager.openStream('127.0.0.1', server.port, { isolation: 'k' });
  const circuit = manager.circuitStatus().find((c) => c.id === circuitOf(manager, stream))!;
  const middle = circuit.path[1]!.nickname;
  const ended = new Promise<Error | undefined>((resolve) => {
    let error: Error | undefined;
    stream.on('error', (e: Error) => (error = e));
    stream.once('close', () => resolve(error));
  });
  net.relay(middle).kill();
  const error = await within(ended, 2000, 'the stream to end');
  assert.ok(error !== undefined, 'the stream ends with an error');
  for (let i = 0; i < 10; i++) {
    const s = await within(manager.openStream('127.0.0.1', server.port, { isolation: `after${i}` }), WAIT_MS, 'a stream after the kill');
    const path = manager.circuitStatus().find((c) => c.id === circuitOf(manager, s))!.path.map((h) => h.nickname);
    assert.ok(!path.includes(middle), `path ${path.join(',')} avoids the dead ${middle}`);
    assert.equal(await hello(s), HELLO_BODY);
  }
});

test('the guard dies: it is marked down with a retry time and circuits move to the next guard', async (t) => {
  const { net, server, manager, logs } = await setup(t);
  const s = await manager.openStream('127.0.0.1', server.port);
  const guard = manager.circuitStatus().find((c) => c.id === circuitOf(manager, s))!.path[0]!.nickname;
  const primary = manager.guardStatus().filter((g) => g.primary).map((g) => g.nickname);
  assert.equal(guard, primary[0], 'circuits use the first primary guard');
  net.relay(guard).kill();
  await until(() => manager.guardStatus().find((g) => g.nickname === guard)!.reachable === 'no', 'the guard to be marked down');
  const down = manager.guardStatus().find((g) => g.nickname === guard)!;
  assert.ok(down.retryAt !== null && down.retryAt > Date.now());
  assert.ok(logs.some((l) => l.includes(`guard ${guard}`) && l.includes('failed')), logs.join('\n'));
  const s2 = await within(manager.openStream('127.0.0.1', server.port, { isolation: 'next' }), WAIT_MS, 'a stream after the guard died');
  const path = manager.circuitStatus().find((c) => c.id === circuitOf(manager, s2))!.path;
  assert.equal(path[0]!.nickname, primary[1], 'the next primary guard');
  assert.equal(await hello(s2), HELLO_BODY);
});

/** Reads `stream` to its end; resolves with what came after the HTTP header. */
async function body(stream: Duplex): Promise<string> {
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  await within(once(stream, 'end'), WAIT_MS, 'the response');
  const all = Buffer.concat(chunks).toString();
  return all.slice(all.indexOf('\r\n\r\n') + 4);
}

test('optimistic data is sent again when a stream is retried on another exit, and reaches the destination once', async (t) => {
  const relays = specs();
  // exit1 and exit2 advertise every port but refuse every destination; exit3 accepts 127.0.0.1.
  relays[6]!.policy = ['reject *:*'];
  relays[7]!.policy = ['reject *:*'];
  const status = new RelayStatus({ random: sfc32(3) });
  const { net, manager } = await setup(t, { status, preemptive: { minClean: 0, cleanPerPort: 0 } }, relays);
  const refusing = [net.relay('exit1').entry, net.relay('exit2').entry];
  const request = Buffer.from('GET /hello HTTP/1.0\r\nHost: x\r\n\r\n');
  let retried = 0;
  for (let i = 0; i < 6; i++) {
    // A new destination each time, so no exit is known to refuse it yet.
    const server = await startPayloadServer({ host: '127.0.0.1' });
    t.after(() => server.close());
    const target = { host: '127.0.0.1', port: server.port };
    // The request goes only as optimistic data: nothing is written after openStream().
    const stream = await manager.openStream(target.host, target.port, { isolation: `user${i}`, earlyData: request });
    const exit = manager.circuitStatus().find((c) => c.id === circuitOf(manager, stream))!.path[2]!.nickname;
    assert.equal(exit, 'exit3');
    assert.equal(await body(stream), HELLO_BODY);
    assert.deepEqual(server.requests.map((r) => r.path), ['/hello'], 'the destination got the request once');
    if (refusing.some((e) => status.exitRejects(e, target))) retried++;
  }
  assert.ok(retried >= 1, `at least one stream was refused first and retried (${retried} of 6)`);
});

test('lookups: RESOLVE on a circuit of the key, the same circuit its streams use; retried when its circuit dies', async (t) => {
  const { net, server, manager } = await setup(t);
  const answers = await within(manager.resolve('localhost', 'alice'), WAIT_MS, 'RESOLVED');
  assert.ok(answers.some((a) => a.type === 'ipv4' && a.address === '127.0.0.1'), JSON.stringify(answers));
  const stream = await manager.openStream('127.0.0.1', server.port, { isolation: 'alice' });
  const circuit = manager.circuitStatus().find((c) => c.id === circuitOf(manager, stream))!;
  assert.equal(circuit.purpose, 'dirty');
  const other = await manager.openStream('127.0.0.1', server.port, { isolation: 'bob' });
  assert.notEqual(circuitOf(manager, other), circuit.id, 'another key, another circuit');
  stream.destroy();
  other.destroy();
  // Kill alice's exit as the lookup starts: its circuit dies under it, and it is answered on another.
  const lookup = manager.resolve('localhost', 'alice');
  net.relay(circuit.path[2]!.nickname).kill();
  const again = await within(lookup, WAIT_MS, 'RESOLVED after the exit died');
  assert.ok(again.some((a) => a.type === 'ipv4' && a.address === '127.0.0.1'), JSON.stringify(again));
  await assert.rejects(manager.resolve('bad name', 'alice'), (e: unknown) => e instanceof AlliumError && e.code === 'ERR_CONFIG');
});

test('failed builds are reported (bootstrap problems), builds ahead and on request alike', async (t) => {
  const net = simNetwork(specs());
  t.after(() => net.cleanup());
  for (const nickname of ['guard1', 'guard2', 'guard3']) net.relay(nickname).kill();
  const failures: Error[] = [];
  const manager = new CircuitManager({
    consensus: () => net.consensus(),
    transport: net.transport,
    random: sfc32(8),
    guards: new GuardSet(null, { random: sfc32(4) }),
    onBuildFailed: (error) => failures.push(error),
  });
  t.after(() => manager.close());
  manager.start();
  await until(() => failures.length >= 1, 'a build ahead to fail');
  const before = failures.length;
  const refused = await manager.buildCircuit().then(
    () => assert.fail('no circuit can be built without a guard'),
    (error: unknown) => error,
  );
  assert.ok(failures.length > before && failures.includes(refused as Error), 'the failure on request was reported too');
  await manager.close();
  const closed = failures.length;
  await assert.rejects(manager.buildCircuit());
  assert.equal(failures.length, closed, 'nothing is reported once the manager is closed');
});
