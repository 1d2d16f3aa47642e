/**
 * The built `allium` CLI: --help on every command, and bad options rejected
 * with a clear message on stderr and a non-zero exit. None of this needs a
 * working network: option errors are reported before any role code loads.
 */
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SocksClient } from 'socks';
import { HELLO_BODY, startPayloadServer } from '../support/payload-server.js';
import { CLI_MAIN, startTestnetProcess } from '../support/testnet-process.js';

const SPAWN_TIMEOUT_MS = 15_000;
const AUTH = `http://127.100.0.1:7000#${'ab'.repeat(32)}`;

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function run(args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    // stdin 'ignore' (/dev/null): a role must not treat it as a closed parent pipe,
    // but none of these runs gets that far anyway.
    const child = spawn(process.execPath, [CLI_MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`allium ${args.join(' ')}: no exit within ${SPAWN_TIMEOUT_MS} ms\nstderr: ${stderr}`));
    }, SPAWN_TIMEOUT_MS);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

const tmp = mkdtempSync(join(tmpdir(), 'allium-cli-test-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

describe('allium --help', () => {
  it('main command lists every subcommand', async () => {
    const r = await run(['--help']);
    assert.equal(r.code, 0, r.stderr);
    for (const sub of ['authority', 'relay', 'client', 'testnet', 'forward', 'destination']) assert.match(r.stdout, new RegExp(`\\b${sub}\\b`));
  });

  it('no arguments prints usage and fails', async () => {
    const r = await run([]);
    assert.notEqual(r.code, 0);
    assert.match(r.stdout + r.stderr, /Usage: allium/);
  });

  const expected: Record<string, string[]> = {
    authority: ['--nickname', '--data-dir', '--address', '--port', '--voting-interval', '--exits-allow-loopback', '--param', '--authority', '--authorities-file', '--config', 'keygen', 'new-signing-key'],
    relay: ['--nickname', '--data-dir', '--address', '--port', '--authority', '--exit', '--exit-policy', '--allow-loopback-exit', '--no-congestion-control', '--link-delay', '--link-jitter', '--link-rate'],
    client: ['--authority', '--socks-address', '--socks-port', '--data-dir', '--isolate-dest-addr', '--isolate-dest-port', '--max-circuit-dirtiness', '--circuit-build-timeout', '--link-delay', '--link-rate'],
    testnet: ['--authorities', '--relays', '--exits', '--socks-port', '--data-dir', 'ctl', '--netns', '--link-delay', '--link-jitter', '--link-rate', '--param'],
    forward: ['--listen', '--connect', '--link-delay', '--link-jitter', '--link-rate'],
    destination: ['--address', '--port'],
  };
  for (const [sub, options] of Object.entries(expected)) {
    it(`${sub} --help names its options`, async () => {
      const r = await run([sub, '--help']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`Usage: allium ${sub}`));
      for (const option of options) assert.ok(r.stdout.includes(option), `${sub} --help lacks ${option}:\n${r.stdout}`);
    });
    it(`help ${sub} works too`, async () => {
      const r = await run(['help', sub]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`Usage: allium ${sub}`));
    });
  }

  it('--version prints the package version', async () => {
    const r = await run(['--version']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^\d+\.\d+\.\d+/);
  });
});

describe('allium rejects bad options', () => {
  const relayBase = ['relay', '--nickname', 'r1', '--data-dir', join(tmp, 'r1'), '--authority', AUTH];
  const cases: { name: string; args: string[]; message: RegExp }[] = [
    { name: 'unknown command', args: ['frobnicate'], message: /unknown command 'frobnicate'/ },
    { name: 'unknown flag', args: [...relayBase, '--bogus'], message: /unknown option '--bogus'/ },
    { name: 'unknown flag on testnet', args: ['testnet', '--frob'], message: /unknown option '--frob'/ },
    { name: 'non-numeric port', args: [...relayBase, '--port', 'http'], message: /--port.*'http' is invalid/ },
    { name: 'port out of range', args: [...relayBase, '--port', '70000'], message: /--port.*'70000' is invalid.*65535/ },
    { name: 'negative port', args: ['client', '--authority', AUTH, '--socks-port', '-1'], message: /--socks-port/ },
    { name: 'bad address', args: [...relayBase, '--address', '127.0.0.256'], message: /--address.*not an IPv4 address/i },
    { name: 'hostname as address', args: ['authority', '--nickname', 'a', '--data-dir', join(tmp, 'a'), '--address', 'localhost'], message: /not an IPv4 address/i },
    { name: 'missing --nickname', args: ['relay', '--data-dir', join(tmp, 'r'), '--authority', AUTH], message: /relay\.nickname: required: set nickname in \[relay\] of a --config file or with --nickname/ },
    { name: 'missing --data-dir', args: ['authority', '--nickname', 'a'], message: /storage\.data_dir: required: .* or with --data-dir/ },
    { name: 'missing --authority', args: ['client'], message: /network\.authorities: required: .* or with --authority/ },
    { name: 'authority without identity', args: ['client', '--authority', 'http://127.100.0.1:7000'], message: /URL#IDENTITYHEX/ },
    { name: 'authority with short identity', args: ['client', '--authority', 'http://127.100.0.1:7000#abcd'], message: /64 hex digits/ },
    { name: 'authority not http', args: ['client', '--authority', `ftp://127.100.0.1:7000#${'ab'.repeat(32)}`], message: /http:\/\// },
    { name: 'bad nickname', args: [...relayBase.slice(0, 1), '--nickname', 'bad name!', ...relayBase.slice(3)], message: /Nickname/ },
    { name: 'bad voting interval', args: ['authority', '--nickname', 'a', '--data-dir', join(tmp, 'a'), '--voting-interval', 'soon'], message: /--voting-interval/ },
    { name: 'too few relays', args: ['testnet', '--relays', '2'], message: /--relays.*between 3 and/ },
    { name: 'too many authorities', args: ['testnet', '--authorities', '10'], message: /--authorities.*between 1 and 9/ },
    { name: 'no authorities', args: ['testnet', '--authorities', '0'], message: /--authorities.*between 1 and 9/ },
    { name: 'voting interval not whole seconds', args: ['testnet', '--voting-interval', '1500'], message: /whole number of seconds/ },
    { name: 'more exits than relays', args: ['testnet', '--relays', '3', '--exits', '4'], message: /cannot exceed/ },
    { name: 'unexpected argument', args: ['testnet', 'extra'], message: /too many arguments|unknown/i },
    { name: 'ctl without a command', args: ['testnet', 'ctl'], message: /missing required argument 'command'/ },
    { name: 'ctl with a bad nickname', args: ['testnet', 'ctl', 'kill', '../relay3'], message: /letters and digits/ },
    { name: 'ctl with no testnet there', args: ['testnet', 'ctl', 'status', '--data-dir', join(tmp, 'nothing')], message: /no testnet is running there/ },
    { name: 'control port without authentication', args: ['client', '--authority', AUTH, '--control-port', '0'], message: /--control-port needs --cookie-auth-file or --hashed-control-password/ },
    { name: 'bad hashed control password', args: ['client', '--authority', AUTH, '--socks-port', '0', '--control-port', '0', '--hashed-control-password', 'secret'], message: /hashed control password is "16:"/ },
    { name: 'bad http tunnel port', args: ['client', '--authority', AUTH, '--http-tunnel-port', 'x'], message: /--http-tunnel-port/ },
    { name: 'negative link delay', args: ['testnet', '--link-delay', '-5'], message: /--link-delay.*milliseconds/ },
    { name: 'link delay not a number', args: [...relayBase, '--link-delay', '20ms'], message: /--link-delay.*milliseconds/ },
    { name: 'zero link rate', args: ['client', '--authority', AUTH, '--link-rate', '0'], message: /--link-rate.*more than 0/ },
    { name: 'bad --param', args: ['testnet', '--param', 'cc_alg'], message: /--param.*KEY=INTEGER/ },
    { name: 'bad --param value', args: ['authority', '--nickname', 'a', '--data-dir', join(tmp, 'a'), '--param', 'cc_alg=two'], message: /KEY=INTEGER/ },
    { name: 'forward without --connect', args: ['forward', '--listen', '127.0.0.1:0'], message: /required option '--connect/ },
    { name: 'forward to a bad endpoint', args: ['forward', '--listen', '127.0.0.1:0', '--connect', 'nowhere'], message: /HOST:PORT/ },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const r = await run(c.args);
      assert.notEqual(r.code, 0, `expected failure, stdout: ${r.stdout}`);
      assert.equal(r.signal, null);
      assert.match(r.stderr, c.message);
      if (c.name !== 'bad hashed control password') {
        // Option errors; a bad hash is found when the client starts (its own clear line, below).
        assert.match(r.stderr, /error:/);
        assert.equal(r.stdout, '', 'errors go to stderr, not stdout');
      }
    });
  }
});

describe('allium client that cannot bootstrap', () => {
  it('says where it is stuck and why, on stderr and in bootstrap lines, and exits non-zero', { timeout: 20_000 }, async () => {
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    const r = await run(['client', '--authority', `http://127.0.0.1:1#${'ab'.repeat(32)}`, '--socks-port', '0', '--ready-timeout', '2000']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /Bootstrapped 25% \(requesting_status\): Asking for networkstatus consensus/);
    assert.match(r.stderr, /Problem bootstrapping\. Stuck at 25% \(requesting_status\).*cannot fetch a consensus from http:\/\/127\.0\.0\.1:1: .*ECONNREFUSED/);
    assert.match(r.stderr, /no circuit could be built in 2000 ms; stuck at 25% \(requesting_status\): cannot fetch a consensus/);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { event: string; progress: number; warning?: string });
    assert.ok(lines.every((l) => l.event === 'bootstrap'));
    assert.ok(lines.some((l) => l.progress === 25 && l.warning !== undefined && /ECONNREFUSED/.test(l.warning)));
  });
});

describe('allium authority keygen / new-signing-key', () => {
  it('keygen makes 0600 keys and prints the URL#IDENTITY line; new-signing-key certifies a new key with an identity kept elsewhere', async () => {
    const dir = join(tmp, 'keygen');
    const r = await run(['authority', 'keygen', '--data-dir', dir, '--address', '127.100.0.9', '--port', '7009']);
    assert.equal(r.code, 0, r.stderr);
    const m = /^http:\/\/127\.100\.0\.9:7009#([0-9a-f]{64})\n$/.exec(r.stdout);
    assert.ok(m, r.stdout);
    const identity = m[1]!;
    const idFile = join(dir, 'keys', 'authority_identity_key');
    const signingFile = join(dir, 'keys', 'authority_signing_key');
    assert.equal(statSync(idFile).mode & 0o777, 0o600);
    assert.equal(statSync(signingFile).mode & 0o777, 0o600);
    const first = readFileSync(signingFile);
    assert.equal(first.length, 32 + 201);
    assert.equal(first.subarray(33, 65).toString('hex'), identity, 'the certificate names the identity');
    // Move the identity key offline, then certify a new signing key with it.
    const offline = join(tmp, 'offline-identity');
    renameSync(idFile, offline);
    const again = await run(['authority', 'new-signing-key', '--data-dir', dir, '--identity-key', offline, '--signing-key-lifetime', '86400000']);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /^signing-key [0-9a-f]{64} expires \d{4}-/);
    const second = readFileSync(signingFile);
    assert.equal(second.subarray(33, 65).toString('hex'), identity);
    assert.notDeepEqual(second.subarray(65, 97), first.subarray(65, 97), 'a new signing key');
    assert.equal(existsSync(idFile), false);
    // Without an identity key it says which file it could not read.
    const none = await run(['authority', 'new-signing-key', '--data-dir', dir]);
    assert.notEqual(none.code, 0);
    assert.match(none.stderr, /cannot read identity key .*authority_identity_key/);
    const missing = await run(['authority', 'keygen']);
    assert.match(missing.stderr, /required option '--data-dir/);
  });
});

/** True if something accepts TCP connections on host:port (bounded). */
function listening(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (up: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(up);
    };
    const timer = setTimeout(() => done(false), 2_000);
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

describe('allium testnet', () => {
  it('forms a network, carries a GET through an exit, and leaves nothing behind when stopped', { timeout: 150_000 }, async (t) => {
    const server = await startPayloadServer({ host: '127.200.0.1' });
    t.after(() => server.close());
    const tn = await startTestnetProcess(t);
    assert.equal(tn.socksHost, '127.0.0.1');
    assert.ok(tn.socksPort > 0);
    assert.match(tn.authorityUrl, /^http:\/\/127\.100\.0\.1:\d+$/);
    assert.deepEqual(tn.authorities.map((a) => new URL(a.url).hostname), ['127.100.0.1', '127.100.0.2', '127.100.0.3']);
    assert.equal(tn.relays.length, 5);
    assert.equal(tn.relays.filter((r) => r.exit).length, 2);
    assert.deepEqual(tn.relays.map((r) => r.address), ['127.1.0.1', '127.2.0.1', '127.3.0.1', '127.4.0.1', '127.5.0.1']);

    const { socket } = await SocksClient.createConnection({
      proxy: { host: tn.socksHost, port: tn.socksPort, type: 5 },
      command: 'connect',
      destination: { host: '127.200.0.1', port: server.port },
      timeout: 20_000,
    });
    const response = await new Promise<string>((resolve, reject) => {
      let text = '';
      const timer = setTimeout(() => reject(new Error('no response within 20 s')), 20_000);
      socket.setEncoding('utf8');
      socket.on('data', (s: string) => (text += s));
      socket.once('end', () => {
        clearTimeout(timer);
        resolve(text);
      });
      socket.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
      socket.write(`GET /hello HTTP/1.1\r\nHost: 127.200.0.1\r\nConnection: close\r\n\r\n`);
    });
    assert.match(response, /^HTTP\/1\.1 200/);
    assert.ok(response.endsWith(HELLO_BODY));
    const exits = tn.relays.filter((r) => r.exit).map((r) => r.address);
    assert.equal(server.requests.length, 1);
    assert.ok(exits.includes(server.requests[0]!.remoteAddress), `server saw ${server.requests[0]!.remoteAddress}, not an exit`);

    await tn.stop();
    for (const relay of tn.relays) assert.equal(await listening(relay.address, relay.port), false, `${relay.nickname} still listening`);
    for (const a of tn.authorities) {
      const auth = new URL(a.url);
      assert.equal(await listening(auth.hostname, Number(auth.port)), false, `${a.nickname} still listening`);
    }
    assert.equal(await listening(tn.socksHost, tn.socksPort), false, 'client still listening');
  });
});
