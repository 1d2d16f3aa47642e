/**
 * A relay that listens on one address and port and advertises another
 * (NAT, port forwarding): through a forwarder from the advertised endpoint to
 * the listening one, the authorities reach it, its start-up self-test passes,
 * and clients' circuits use it. A relay whose advertised endpoint leads
 * nowhere stops at start-up with an error that names it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, it } from 'node:test';
import assert from 'node:assert/strict';
import { SocksClient } from 'socks';
import { startRoleProcess } from '../support/role-process.js';
import { parsePromText, valueOf } from '../support/prom-text.js';
import { startTestnetProcess } from '../support/testnet-process.js';

const tmp = mkdtempSync(join(tmpdir(), 'allium-advertised-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** A TCP forwarder on host:0 to a target set later; counts the connections it carried. */
async function forwarder(host: string): Promise<{ server: Server; port: number; target: { port: number }; connections: () => number }> {
  const target = { port: 0 };
  let count = 0;
  const sockets = new Set<Socket>();
  const server = createServer((inbound) => {
    count++;
    const outbound = connect({ host: '127.64.0.1', port: target.port });
    for (const s of [inbound, outbound]) {
      sockets.add(s);
      s.on('error', () => {});
      s.once('close', () => sockets.delete(s));
    }
    inbound.pipe(outbound).pipe(inbound);
    inbound.once('close', () => outbound.destroy());
    outbound.once('close', () => inbound.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  server.once('close', () => {
    for (const s of sockets) s.destroy();
  });
  return { server, port: (server.address() as AddressInfo).port, target, connections: () => count };
}

function relayArgs(authorities: readonly string[], name: string, extra: string[]): string[] {
  return ['relay', '--nickname', name, '--data-dir', join(tmp, name), ...authorities.flatMap((a) => ['--authority', a]), '--log-level', 'notice', ...extra];
}

it('a relay behind a port forward is reached by the authorities and used by circuits; one that cannot be reached stops with a clear error', { timeout: 150_000 }, async (t) => {
  const net = await startTestnetProcess(t, { relays: 3, exits: 1 });
  // Every voting authority: a relay is in the consensus once more than half of them list it.
  const authorities = net.authorities.map((a) => `${a.url}#${a.identity}`);

  // Unreachable: advertised 127.66.0.1:<nothing listens there>, listening elsewhere.
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.66.0.1', resolve));
  const deadPort = (probe.address() as AddressInfo).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  const lost = startRoleProcess(t, relayArgs(authorities, 'lost', ['--address', '127.66.0.1', '--port', String(deadPort), '--listen-address', '127.67.0.1', '--listen-port', '0', '--reachability-timeout', '6000']));

  // Forwarded: advertised 127.65.0.1:FP → listening on 127.64.0.1:LP.
  const fwd = await forwarder('127.65.0.1');
  t.after(() => new Promise<void>((resolve) => fwd.server.close(() => resolve())));
  const behind = startRoleProcess(t, relayArgs(authorities, 'behindNat', [
    '--address', '127.65.0.1', '--port', String(fwd.port), '--listen-address', '127.64.0.1', '--listen-port', '0',
    '--reachability-timeout', '60000', '--metrics-port', '0', '--metrics-address', '127.64.0.1',
  ]));
  const listening = await behind.waitStderr(/listening on 127\.64\.0\.1:(\d+), advertising 127\.65\.0\.1:(\d+)/, 20_000);
  fwd.target.port = Number(listening[1]);
  assert.equal(Number(listening[2]), fwd.port);
  const up = await behind.up(20_000);
  assert.equal(up.role === 'relay' && `${up.address}:${up.port}`, `127.65.0.1:${fwd.port}`, 'the up line names the advertised endpoint');
  await behind.waitStderr(new RegExp(`Self-test: the authorities reach 127\\.65\\.0\\.1:${fwd.port}; this relay is in the consensus`), 60_000);
  assert.ok(fwd.connections() > 0, 'the authorities came through the forwarder');

  // Circuits use it: isolated streams (one circuit each) until one runs through it.
  const echo = createServer((s) => s.end('ok'));
  await new Promise<void>((resolve) => echo.listen(0, '127.200.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => echo.close(() => resolve())));
  const metricsAt = up.role === 'relay' ? up.metrics : undefined;
  assert.ok(metricsAt !== undefined);
  const circuitsThroughIt = async () => valueOf(parsePromText(await (await fetch(`http://${metricsAt}/metrics`)).text()), 'allium_circuits_built_total');
  const deadline = Date.now() + 60_000;
  let attempt = 0;
  while ((await circuitsThroughIt()) === 0) {
    assert.ok(Date.now() < deadline, `no circuit through the forwarded relay after ${attempt} isolated streams`);
    attempt++;
    try {
      const { socket } = await SocksClient.createConnection({
        proxy: { host: net.socksHost, port: net.socksPort, type: 5, userId: `u${attempt}`, password: 'p' },
        command: 'connect',
        destination: { host: '127.200.0.1', port: (echo.address() as AddressInfo).port },
        timeout: 10_000,
      });
      socket.resume();
      await new Promise((resolve) => socket.once('close', resolve));
    } catch {
      // a circuit through a relay the client does not know yet can fail; try another
    }
    await new Promise((r) => setTimeout(r, 500));
  }

  // The unreachable one has given up by now, naming its advertised endpoint.
  await lost.waitStderr(new RegExp(`the authorities have not reached this relay at its advertised address 127\\.66\\.0\\.1:${deadPort} within 6 s`), 30_000);
  await new Promise<void>((resolve) => (lost.alive ? lost.child.once('exit', () => resolve()) : resolve()));
  assert.equal(lost.child.exitCode, 1);
});
