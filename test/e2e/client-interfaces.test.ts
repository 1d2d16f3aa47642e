/**
 * The client's interfaces end to end, against one real `allium testnet`
 * process whose client also has an HTTP tunnel port and a control port:
 * curl over SOCKS4 and SOCKS4a, the `socks` package over SOCKS4, SOCKS4a and
 * SOCKS5 (fragmented requests, excess data), tor-resolve forward and reverse,
 * curl through the HTTP CONNECT tunnel, the control port (authentication,
 * circuit-status and stream-status showing isolation and NEWNYM, events,
 * EXTENDCIRCUIT), a stem script, malformed input of each kind while
 * another stream keeps working, and the client killed and started again by
 * the testnet on the same ports. Tools that are missing (curl, tor-resolve,
 * python3-stem) make their subtest skip with the reason printed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { SocksClient } from 'socks';
import { startTestnetProcess } from '../support/testnet-process.js';
import { startPayloadServer, HELLO_BODY } from '../support/payload-server.js';
import { TestController } from '../support/control-client.js';
import { hex } from '../../src/bytes.js';

const WAIT_MS = 30_000;

function run(cmd: string, args: string[], timeoutMs = 60_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, encoding: 'utf8' }, (error, stdout, stderr) => {
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

/** Why `tool` cannot be used, or null when it can. */
function missing(cmd: string, args: string[]): string | null {
  try {
    execFileSync(cmd, args, { stdio: 'ignore', timeout: 10_000 });
    return null;
  } catch {
    return `${cmd} ${args.join(' ')} failed: not installed here (.ci/run installs it on Debian)`;
  }
}

function skipBecause(t: { skip: (message?: string) => void }, reason: string): void {
  process.stdout.write(`# skipped: ${reason}\n`);
  t.skip(reason);
}

/** GET `path` over an open stream (HTTP/1.0, the server closes); resolves with status and body. */
async function httpOver(socket: Socket, host: string, path: string, alreadySent = false): Promise<{ status: number; body: string }> {
  socket.setTimeout(WAIT_MS, () => socket.destroy(new Error('HTTP read timed out')));
  if (!alreadySent) socket.write(`GET ${path} HTTP/1.0\r\nHost: ${host}\r\n\r\n`);
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  await once(socket, 'end');
  const all = Buffer.concat(chunks).toString('latin1');
  const split = all.indexOf('\r\n\r\n');
  assert.ok(split > 0, `an HTTP response: ${JSON.stringify(all.slice(0, 200))}`);
  return { status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(all)?.[1]), body: all.slice(split + 4) };
}

/** Connect, write `bytes` in pieces of `piece` bytes with a pause between them, read until the end. */
async function rawExchange(port: number, parts: Uint8Array[], pauseMs = 5): Promise<Buffer> {
  const socket = connect({ host: '127.0.0.1', port });
  socket.on('error', () => {});
  await once(socket, 'connect');
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  const ended = once(socket, 'close');
  for (const p of parts) {
    socket.write(p);
    await new Promise((r) => setTimeout(r, pauseMs));
  }
  const timer = setTimeout(() => socket.destroy(), WAIT_MS);
  await ended;
  clearTimeout(timer);
  return Buffer.concat(chunks);
}

/** A loopback echo server: keeps streams open as long as the test wants. */
async function startEcho(): Promise<{ server: Server; port: number }> {
  const server = createServer((s) => {
    s.on('error', () => {});
    s.pipe(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as { port: number }).port };
}

/** A SOCKS5 stream to the echo server under `user`; checks one round trip. */
async function echoStream(socksPort: number, echoPort: number, user: string): Promise<Socket> {
  const { socket } = await SocksClient.createConnection({
    proxy: { host: '127.0.0.1', port: socksPort, type: 5, userId: user, password: 'pw' },
    command: 'connect',
    destination: { host: '127.0.0.1', port: echoPort },
    timeout: WAIT_MS,
  });
  // A client that shuts down resets its applications' connections (docs/protocol.md §6.7); the
  // streams that outlive their subtest meet that when the testnet restarts the client.
  socket.on('error', () => {});
  socket.write('ping');
  const [data] = (await once(socket, 'data')) as [Buffer];
  assert.equal(data.toString(), 'ping');
  return socket;
}

/** stream-status lines → id → circuit id, for streams to `port`. */
function streamCircuits(lines: string[], port: number): Map<number, string> {
  const out = new Map<number, string>();
  for (const line of lines) {
    const m = /^(\d+) (\w+) (\d+) (\S+):(\d+)$/.exec(line);
    if (m !== null && Number(m[5]) === port && m[2] === 'SUCCEEDED') out.set(Number(m[1]), m[3]!);
  }
  return out;
}

async function authenticated(address: string, cookieFile: string): Promise<TestController> {
  const [host, port] = address.split(':') as [string, string];
  const c = await TestController.connect(host, Number(port));
  const info = await c.command('PROTOCOLINFO 1');
  assert.equal(info.code, 250);
  assert.ok(info.lines.some((l) => /^AUTH METHODS=COOKIE,SAFECOOKIE COOKIEFILE=".*control_auth_cookie"$/.test(l)), info.lines.join('|'));
  const auth = await c.command(`AUTHENTICATE ${hex(readFileSync(cookieFile))}`);
  assert.equal(auth.code, 250);
  return c;
}

test('client interfaces end to end: SOCKS4/4a, RESOLVE, HTTP tunnel, control port, stem', { timeout: 300_000 }, async (t) => {
  const net = await startTestnetProcess(t, { httpTunnel: true, control: true });
  const server = await startPayloadServer({ host: '127.0.0.1', port: 0 });
  t.after(() => server.close());
  const echo = await startEcho();
  t.after(() => new Promise<void>((r) => echo.server.close(() => r())));
  assert.ok(net.httpTunnel !== null && net.control !== null, 'the client reports its tunnel and control ports');
  const socksPort = net.socksPort;
  const tunnelPort = Number(net.httpTunnel!.split(':')[1]);
  const curlMissing = missing('curl', ['--version']);

  await t.test('curl --socks4a and --socks4 fetch a page', async (tt) => {
    if (curlMissing !== null) return skipBecause(tt, curlMissing);
    const a = await run('curl', ['-sS', '--max-time', '60', '--socks4a', `127.0.0.1:${socksPort}`, `http://localhost:${server.port}/hello`]);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(a.stdout, HELLO_BODY);
    const b = await run('curl', ['-sS', '--max-time', '60', '--socks4', `127.0.0.1:${socksPort}`, `http://127.0.0.1:${server.port}/hello`]);
    assert.equal(b.code, 0, b.stderr);
    assert.equal(b.stdout, HELLO_BODY);
  });

  await t.test('the socks package over SOCKS4, SOCKS4a and SOCKS5', async () => {
    for (const [type, host] of [
      [4, '127.0.0.1'],
      [4, 'localhost'], // a hostname: the package sends SOCKS4a
      [5, 'localhost'],
    ] as const) {
      const { socket } = await SocksClient.createConnection({
        proxy: { host: '127.0.0.1', port: socksPort, type },
        command: 'connect',
        destination: { host, port: server.port },
        timeout: WAIT_MS,
      });
      socket.on('error', () => {});
      const res = await httpOver(socket, host, '/hello');
      assert.equal(res.status, 200, `SOCKS${type} to ${host}`);
      assert.equal(res.body, HELLO_BODY);
    }
  });

  await t.test('fragmented requests and excess data are served in order', async () => {
    const get = Buffer.from(`GET /hello HTTP/1.0\r\nHost: localhost\r\n\r\n`);
    const port = Buffer.from([server.port >> 8, server.port & 0xff]);
    // SOCKS4a byte by byte, then the HTTP request in its own write.
    const socks4a = Buffer.concat([Buffer.from([4, 1]), port, Buffer.from([0, 0, 0, 1]), Buffer.from('u\0localhost\0')]);
    const r1 = await rawExchange(socksPort, [...[...socks4a].map((b) => Uint8Array.of(b)), get]);
    assert.deepEqual([...r1.subarray(0, 2)], [0, 90]);
    assert.ok(r1.subarray(8).toString().endsWith(HELLO_BODY), r1.toString());
    // SOCKS5 greeting + request + HTTP request in one write (pipelined, before any reply).
    const host = Buffer.from('localhost');
    const socks5 = Buffer.concat([Buffer.from([5, 1, 0, 5, 1, 0, 3, host.length]), host, port, get]);
    const r2 = await rawExchange(socksPort, [socks5]);
    assert.deepEqual([...r2.subarray(0, 4)], [5, 0, 5, 0]);
    assert.ok(r2.toString().endsWith(HELLO_BODY), r2.toString());
    // SOCKS4a request and HTTP request in one write.
    const r3 = await rawExchange(socksPort, [Buffer.concat([socks4a, get])]);
    assert.deepEqual([...r3.subarray(0, 2)], [0, 90]);
    assert.ok(r3.toString().endsWith(HELLO_BODY));
  });

  await t.test('malformed SOCKS gets its reply and a close', async () => {
    // SOCKS4 with DSTIP 0.0.0.0: rejected (91). SOCKS4 BIND: 91. SOCKS5 BIND: 0x07. Unknown version: closed, no reply.
    assert.deepEqual([...(await rawExchange(socksPort, [Buffer.from([4, 1, 0, 80, 0, 0, 0, 0, 0])]))], [0, 91, 0, 0, 0, 0, 0, 0]);
    assert.deepEqual([...(await rawExchange(socksPort, [Buffer.from([4, 2, 0, 80, 10, 0, 0, 1, 0])]))], [0, 91, 0, 0, 0, 0, 0, 0]);
    assert.deepEqual([...(await rawExchange(socksPort, [Buffer.from([5, 1, 0, 5, 2, 0, 1, 10, 0, 0, 1, 0, 80])]))], [5, 0, 5, 7, 0, 1, 0, 0, 0, 0, 0, 0]);
    assert.equal((await rawExchange(socksPort, [Buffer.from('GET / HTTP/1.0\r\n\r\n')])).length, 0);
  });

  await t.test('tor-resolve: forward over SOCKS5 and SOCKS4a, reverse with -x, and a refused reverse lookup', async (tt) => {
    const why = missing('sh', ['-c', 'command -v tor-resolve']);
    if (why !== null) return skipBecause(tt, why);
    const forward = await run('tor-resolve', ['-p', String(socksPort), 'localhost']);
    assert.equal(forward.stdout.trim(), '127.0.0.1', forward.stderr);
    const four = await run('tor-resolve', ['-4', '-p', String(socksPort), 'localhost']);
    assert.equal(four.stdout.trim(), '127.0.0.1', four.stderr);
    const reverse = await run('tor-resolve', ['-x', '-p', String(socksPort), '127.0.0.1']);
    assert.equal(reverse.stdout.trim(), 'localhost', reverse.stderr);
    // The testnet's exits reach loopback only: a private address's name is not looked up.
    const refused = await run('tor-resolve', ['-x', '-p', String(socksPort), '10.1.2.3']);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /unreachable/);
  });

  await t.test('curl through the HTTP CONNECT tunnel; exit policy refusal is a 403', async (tt) => {
    if (curlMissing !== null) return skipBecause(tt, curlMissing);
    const ok = await run('curl', ['-sS', '--max-time', '60', '--proxy', `http://127.0.0.1:${tunnelPort}`, '--proxytunnel', `http://localhost:${server.port}/hello`]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout, HELLO_BODY);
    const refused = await run('curl', ['-sS', '--max-time', '60', '--proxy', `http://127.0.0.1:${tunnelPort}`, '--proxytunnel', 'http://127.0.0.1:25/']);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /403/);
    // Not CONNECT, not HTTP, too large: 405, 400, 431.
    const status = (b: Buffer) => Number(/^HTTP\/1\.1 (\d{3})/.exec(b.toString('latin1'))?.[1]);
    assert.equal(status(await rawExchange(tunnelPort, [Buffer.from('GET http://localhost/ HTTP/1.1\r\nHost: localhost\r\n\r\n')])), 405);
    assert.equal(status(await rawExchange(tunnelPort, [Buffer.from('CONNECT localhost HTTP/1.1\r\n\r\n')])), 400);
    assert.equal(status(await rawExchange(tunnelPort, [Buffer.from(`CONNECT a:1 HTTP/1.1\r\n${'X-Pad: y\r\n'.repeat(1000)}`)])), 431);
  });

  const cookie = net.controlCookieFile;
  const controller = await authenticated(net.control!, cookie);
  t.after(() => controller.close());

  await t.test('control port: version, bootstrap, circuit-status, ns/all, unknown commands and keys', async () => {
    const v = await controller.command('GETINFO version status/bootstrap-phase');
    assert.equal(v.code, 250);
    assert.match(v.lines[0]!, /^version=0\.4\.9\.0-allium \(allium-.+\)$/);
    assert.equal(v.lines[1], 'status/bootstrap-phase=NOTICE BOOTSTRAP PROGRESS=100 TAG=done SUMMARY="Done"');
    const cs = await controller.command('GETINFO circuit-status');
    assert.equal(cs.code, 250);
    const circuits = cs.lines.slice(1, -1);
    assert.ok(circuits.length >= 1);
    for (const line of circuits) assert.match(line, /^\d+ BUILT \$[0-9A-F]{40}~relay\d,\$[0-9A-F]{40}~relay\d,\$[0-9A-F]{40}~relay\d BUILD_FLAGS=NEED_CAPACITY PURPOSE=GENERAL TIME_CREATED=\S+$/);
    // The client is up once its consensus allows a 3-hop circuit: one voted before the last relays
    // published lists only some of them until the client's next fetch (1 s voting rounds). Bounded wait.
    const listed = async () => (await controller.command('GETINFO ns/all')).lines.filter((l) => l.startsWith('r ')).length;
    let relaysListed = await listed();
    for (const until = Date.now() + 20_000; relaysListed !== net.relays.length && Date.now() < until; relaysListed = await listed()) {
      await new Promise((r) => setTimeout(r, 250));
    }
    assert.equal(relaysListed, net.relays.length);
    assert.equal((await controller.command('FROBNICATE now')).code, 510);
    assert.equal((await controller.command('GETINFO no/such/key')).code, 552);
    assert.equal((await controller.command('SETEVENTS CIRC NOSUCHEVENT')).code, 552);
    assert.equal((await controller.command('SIGNAL NOSUCHSIGNAL')).code, 552);
  });

  await t.test('isolation through the control port: two usernames, two circuits; one username, one; NEWNYM, a new one', async () => {
    const a1 = await echoStream(socksPort, echo.port, 'alice');
    const a2 = await echoStream(socksPort, echo.port, 'alice');
    const b1 = await echoStream(socksPort, echo.port, 'bob');
    t.after(() => [a1, a2, b1].forEach((s) => s.destroy()));
    const before = streamCircuits((await controller.command('GETINFO stream-status')).lines, echo.port);
    const ids = [...before.keys()].sort((x, y) => x - y);
    assert.equal(ids.length, 3, [...before].join(' '));
    const [ca1, ca2, cb1] = ids.map((id) => before.get(id)!);
    assert.equal(ca1, ca2, 'one username shares a circuit');
    assert.notEqual(ca1, cb1, 'two usernames never share a circuit');
    const circuitIds = (await controller.command('GETINFO circuit-status')).lines.map((l) => l.split(' ')[0]);
    assert.ok(circuitIds.includes(ca1!) && circuitIds.includes(cb1!), 'stream circuits are listed in circuit-status');

    assert.equal((await controller.command('SIGNAL NEWNYM')).code, 250);
    const a3 = await echoStream(socksPort, echo.port, 'alice');
    t.after(() => a3.destroy());
    const after = streamCircuits((await controller.command('GETINFO stream-status')).lines, echo.port);
    const newest = Math.max(...after.keys());
    assert.ok(!before.has(newest));
    assert.notEqual(after.get(newest), ca1, 'after NEWNYM a new stream uses a new circuit');
    assert.notEqual(after.get(newest), cb1);
  });

  await t.test('HTTP tunnel: Proxy-Authorization is the isolation key', async () => {
    const tunnel = async (auth: string) => {
      const s = connect({ host: '127.0.0.1', port: tunnelPort });
      s.on('error', () => {}); // open until the end: the client's restart resets it (§6.7)
      await once(s, 'connect');
      s.write(`CONNECT 127.0.0.1:${echo.port} HTTP/1.1\r\nHost: 127.0.0.1:${echo.port}\r\nProxy-Authorization: ${auth}\r\n\r\n`);
      const [head] = (await once(s, 'data')) as [Buffer];
      assert.match(head.toString(), /^HTTP\/1\.1 200 /);
      t.after(() => s.destroy());
      return s;
    };
    await tunnel('Basic dTE6cA==');
    await tunnel('Basic dTE6cA==');
    await tunnel('Basic dTI6cA==');
    const lines = (await controller.command('GETINFO stream-status')).lines;
    const mine = [...streamCircuits(lines, echo.port)].sort((x, y) => x[0] - y[0]).slice(-3).map((e) => e[1]);
    assert.equal(mine[0], mine[1]);
    assert.notEqual(mine[0], mine[2]);
  });

  await t.test('control port events: STREAM, BW, CIRC from EXTENDCIRCUIT 0', async () => {
    assert.equal((await controller.command('SETEVENTS CIRC STREAM BW STATUS_CLIENT')).code, 250);
    const s = await echoStream(socksPort, echo.port, 'carol');
    s.destroy();
    await controller.waitForEvent(new RegExp(`^STREAM \\d+ SUCCEEDED \\d+ 127\\.0\\.0\\.1:${echo.port} CLIENT_PROTOCOL=SOCKS5`));
    await controller.waitForEvent(/^BW \d+ \d+$/, 5_000);
    const ext = await controller.command('EXTENDCIRCUIT 0', 60_000);
    assert.equal(ext.code, 250);
    const id = /^EXTENDED (\d+)$/.exec(ext.lines[0]!)?.[1];
    assert.ok(id !== undefined, ext.lines[0]);
    await controller.waitForEvent(new RegExp(`^CIRC ${id} BUILT \\$`));
    assert.equal((await controller.command('SETEVENTS')).code, 250);
  });

  await t.test('a stem script authenticates, reads circuit-status and sends NEWNYM', async (tt) => {
    const python = ['/usr/bin/python3', 'python3'].find((p) => missing(p, ['-c', 'import stem']) === null);
    if (python === undefined) return skipBecause(tt, 'python3 with stem (Debian python3-stem) is not installed here; .ci/run installs it');
    const [host, port] = net.control!.split(':');
    const script = [
      'import sys',
      'from stem.control import Controller',
      'from stem import Signal',
      `with Controller.from_port(address="${host}", port=${port}) as c:`,
      '    c.authenticate()',
      '    circuits = c.get_circuits()',
      '    assert len(circuits) >= 1',
      '    for circ in circuits:',
      '        assert circ.status == "BUILT" and len(circ.path) == 3, circ',
      '        print("circuit", circ.id, ",".join(nick for _, nick in circ.path))',
      '    c.signal(Signal.NEWNYM)',
      '    print("newnym ok", c.get_info("status/bootstrap-phase"))',
    ].join('\n');
    const out = await run(python, ['-c', script]);
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stdout, /^circuit \d+ relay\d,relay\d,relay\d$/m);
    assert.match(out.stdout, /newnym ok NOTICE BOOTSTRAP PROGRESS=100/);
  });

  await t.test('malformed control input gets its reply or a clean close; other streams carry on', async () => {
    const [host, portText] = net.control!.split(':') as [string, string];
    const port = Number(portText);
    // A stream that must survive all of this.
    const survivor = await echoStream(socksPort, echo.port, 'survivor');
    t.after(() => survivor.destroy());

    const cases: Array<[string, string | Uint8Array, number]> = [
      ['a command before authenticating', 'GETINFO version\r\n', 514],
      ['binary garbage', Uint8Array.of(0x00, 0xff, 0x13, 0x37, 0x0a), 514],
      ['a wrong cookie', `AUTHENTICATE ${'00'.repeat(32)}\r\n`, 515],
      ['a wrong password string', 'AUTHENTICATE "not it"\r\n', 515],
      ['not hex, not quoted', 'AUTHENTICATE xyz\r\n', 515],
      ['a second PROTOCOLINFO', 'PROTOCOLINFO\r\nPROTOCOLINFO\r\n', 514],
      ['a line without end', 'A'.repeat(70_000), 500],
    ];
    for (const [what, bytes, code] of cases) {
      const c = await TestController.connect(host, port);
      c.sendRaw(bytes);
      let reply = await c.nextReply(10_000);
      if (what === 'a second PROTOCOLINFO') reply = await c.nextReply(10_000);
      assert.equal(reply.code, code, `${what}: ${reply.lines.join('|')}`);
      await c.waitClosed();
    }
    const http = await TestController.connect(host, port);
    http.sendRaw('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.match((await http.nextReply(10_000)).lines[0]!, /^HTTP\/1\.0 501 /);
    await http.waitClosed();
    // Authenticated: bad arguments get 5xx and the connection stays.
    const c = await authenticated(net.control!, cookie);
    for (const [line, code] of [
      ['GETINFO', 512],
      ['EXTENDCIRCUIT', 512],
      ['EXTENDCIRCUIT 99999', 552],
      ['EXTENDCIRCUIT 0 $AAAA', 551],
      ['SIGNAL', 512],
      ['\u0001\u0002', 510],
      ['', 510],
    ] as const) {
      assert.equal((await c.command(line)).code, code, line);
    }
    assert.equal((await c.command('+POSTDESCRIPTOR\r\nrouter x\r\n.')).code, 510);
    assert.equal((await c.command('GETINFO version')).code, 250);
    c.close();
    survivor.write('still here');
    const [data] = (await once(survivor, 'data')) as [Buffer];
    assert.equal(data.toString(), 'still here');
  });

  await t.test('the testnet starts its client again on the same SOCKS, tunnel and control ports, with a fresh cookie', async () => {
    const oldCookie = readFileSync(cookie);
    const killed = await net.ctl('kill client', WAIT_MS);
    assert.ok(killed.ok, killed.lines.join('\n'));
    const started = await net.ctl('start client', 120_000);
    assert.ok(started.ok, started.lines.join('\n'));
    assert.match(started.lines.at(-1)!, new RegExp(`^ok client started pid=\\d+ at 127\\.0\\.0\\.1:${socksPort}$`));
    assert.ok(!readFileSync(cookie).equals(oldCookie), 'a new cookie for the new process');
    // The old cookie no longer opens the control port; the new one does, and the client is bootstrapped.
    const [host, port] = net.control!.split(':') as [string, string];
    const stale = await TestController.connect(host, Number(port));
    assert.equal((await stale.command(`AUTHENTICATE ${hex(oldCookie)}`)).code, 515);
    await stale.waitClosed();
    const c = await authenticated(net.control!, cookie);
    t.after(() => c.close());
    assert.equal((await c.command('GETINFO status/bootstrap-phase')).lines[0], 'status/bootstrap-phase=NOTICE BOOTSTRAP PROGRESS=100 TAG=done SUMMARY="Done"');
    const s = await echoStream(socksPort, echo.port, 'after-restart');
    s.destroy();
    const tunnel = connect({ host: '127.0.0.1', port: tunnelPort });
    tunnel.on('error', () => {}); // open until the end: the testnet's shutdown resets it (§6.7)
    t.after(() => tunnel.destroy());
    await once(tunnel, 'connect');
    tunnel.write(`CONNECT 127.0.0.1:${echo.port} HTTP/1.1\r\nHost: 127.0.0.1:${echo.port}\r\n\r\n`);
    const [head] = (await once(tunnel, 'data')) as [Buffer];
    assert.match(head.toString(), /^HTTP\/1\.1 200 /);
    tunnel.write('pong');
    const [echoed] = (await once(tunnel, 'data')) as [Buffer];
    assert.equal(echoed.toString(), 'pong');
    assert.deepEqual(net.exits.map((e) => [e.nickname, e.expected]), [['client', true]], 'the kill was reported as an exit line');
  });
});
