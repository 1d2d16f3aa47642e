/**
 * RESOLVE through a real circuit (in-memory links, real crypto) to an exit
 * that looks names up with the system resolver: forward, an address given as
 * is, reverse (PTR) lookups, and the refusals (a private address the exit's
 * policy does not reach, a partial PTR name). And optimistic data: bytes
 * passed with openStream() travel right behind BEGIN and reach the
 * destination first.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { once } from 'node:events';
import { memoryCircuit, memoryNetwork } from '../support/memory-network.js';

test('RESOLVE at the exit: forward, literal, reverse, and refused reverse lookups; the circuit carries on', { timeout: 30_000 }, async (t) => {
  const net = memoryNetwork(3);
  t.after(() => net.cleanup());
  const { circuit, links } = await memoryCircuit(net.relays);
  t.after(() => {
    circuit.destroy(9, 'test over');
    links.close();
  });
  const forward = await circuit.resolve('localhost', 10_000);
  assert.ok(forward.some((a) => a.type === 'ipv4' && a.address === '127.0.0.1'), JSON.stringify(forward));
  assert.deepEqual(await circuit.resolve('127.0.0.1', 10_000), [{ type: 'ipv4', address: '127.0.0.1', ttl: 300 }]);
  assert.deepEqual(await circuit.resolve('1.0.0.127.in-addr.arpa', 10_000), [{ type: 'hostname', hostname: 'localhost', ttl: 300 }]);
  // The exit's policy reaches 127.0.0.1 only: other private addresses are not looked up.
  assert.deepEqual(await circuit.resolve('3.2.1.10.in-addr.arpa', 10_000), [{ type: 'error', transient: false, ttl: 0 }]);
  assert.deepEqual(await circuit.resolve('2.0.0.127.in-addr.arpa', 10_000), [{ type: 'error', transient: false, ttl: 0 }]);
  assert.deepEqual(await circuit.resolve('0.127.in-addr.arpa', 10_000), [{ type: 'error', transient: false, ttl: 0 }]);
  // Several at once on one circuit, each answered on its own stream id.
  const many = await Promise.all(Array.from({ length: 8 }, () => circuit.resolve('localhost', 10_000)));
  for (const answers of many) assert.ok(answers.some((a) => a.type === 'ipv4'));
  await assert.rejects(circuit.resolve('bad name', 1_000), (e: Error & { code?: string }) => e.code === 'ERR_CONFIG');
  assert.equal(circuit.closed, false);
});

test('optimistic data: bytes given to openStream() reach the destination before CONNECTED is awaited', { timeout: 30_000 }, async (t) => {
  const received: Buffer[] = [];
  const server = createServer((s) => {
    s.on('data', (c: Buffer) => received.push(c));
    s.on('error', () => {});
    s.write('welcome');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => server.close());
  const net = memoryNetwork(3);
  t.after(() => net.cleanup());
  const { circuit, links } = await memoryCircuit(net.relays);
  t.after(() => {
    circuit.destroy(9, 'test over');
    links.close();
  });
  const early = Buffer.alloc(3000, 0x61); // more than one DATA cell
  const stream = await circuit.openStream('127.0.0.1', (server.address() as { port: number }).port, 10_000, { earlyData: early });
  const [hello] = (await once(stream, 'data')) as [Buffer];
  assert.equal(hello.toString(), 'welcome');
  stream.write('then this');
  const deadline = Date.now() + 10_000;
  while (Buffer.concat(received).length < early.length + 9 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  assert.equal(Buffer.concat(received).toString(), `${early.toString()}then this`);
  stream.destroy();
});
