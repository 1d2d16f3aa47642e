/**
 * The control session state machine without sockets: authentication paths
 * (cookie, SAFECOOKIE, password; failures close), what is refused before
 * authenticating, GETINFO / GETCONF / SETEVENTS / SIGNAL / EXTENDCIRCUIT
 * answers, and random input that never throws.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { ControlSession, decodeToken, type ControlBackend, type SessionOutput } from '../../../client/control/session.js';
import { hashPassword, parseHashedPassword } from '../../../client/control/auth.js';
import { ControlCommandParser } from '../../../client/control/protocol.js';
import { BootstrapTracker } from '../../../client/bootstrap.js';
import { hex } from '../../../src/bytes.js';
import type { CircuitInfo } from '../../../client/circuit-manager.js';
import { Rng } from '../../fuzz/fuzz-util.js';

const COOKIE = new Uint8Array(32).fill(0x42);
const ID_A = 'aa'.repeat(32);
const ID_B = 'bb'.repeat(32);
const ID_C = 'cc'.repeat(32);

function circuit(id: number): CircuitInfo {
  return {
    id,
    purpose: 'dirty',
    path: [
      { nickname: 'relay1', identity: ID_A },
      { nickname: 'relay2', identity: ID_B },
      { nickname: 'relay3', identity: ID_C },
    ],
    builtAt: Date.UTC(2025, 0, 2, 3, 4, 5, 678),
    buildMs: 12,
    dirtySince: null,
    streams: 1,
  };
}

function backend(calls: string[] = []): ControlBackend {
  const bootstrap = new BootstrapTracker();
  bootstrap.reach('done');
  return {
    version: '0.4.9.0-allium (allium-test)',
    pid: 4242,
    startedAt: Date.now() - 5000,
    bootstrap: () => bootstrap.status,
    circuits: () => [circuit(7)],
    streams: () => [{ id: 3, status: 'SUCCEEDED', circuitId: 7, host: 'example.com', port: 443, protocol: 'SOCKS5', purpose: 'connect', reason: null }],
    consensus: () => null,
    traffic: () => ({ read: 1028, written: 514 }),
    listeners: () => ({ socks: ['127.0.0.1:9050'], control: ['127.0.0.1:9051'], httptunnel: [] }),
    conf: () => new Map<string, string | null>([['SocksPort', '127.0.0.1:9050'], ['CookieAuthFile', null]]),
    newnym: () => calls.push('newnym'),
    buildCircuit: async () => {
      calls.push('build');
      return circuit(99);
    },
  };
}

const cookieAuth = { cookie: { bytes: COOKIE, path: '/tmp/x "y"/control_auth_cookie' }, passwords: [parseHashedPassword(hashPassword('pw'))] };
const fixedRandom = (n: number) => new Uint8Array(n).fill(0x11);

async function say(session: ControlSession, text: string): Promise<SessionOutput[]> {
  const parser = new ControlCommandParser();
  parser.push(Buffer.from(text, 'latin1'));
  const out: SessionOutput[] = [];
  for (let r = parser.next(); r.kind === 'command'; r = parser.next()) out.push(await session.handle(r.command));
  return out;
}

async function authed(calls?: string[]): Promise<ControlSession> {
  const s = new ControlSession(backend(calls), cookieAuth, fixedRandom);
  const [r] = await say(s, `AUTHENTICATE ${hex(COOKIE)}\r\n`);
  assert.equal(r!.reply, '250 OK\r\n');
  return s;
}

test('PROTOCOLINFO names the methods and the cookie file (escaped), once before authenticating', async () => {
  const s = new ControlSession(backend(), cookieAuth, fixedRandom);
  const [first, second] = await say(s, 'PROTOCOLINFO 1\r\nPROTOCOLINFO\r\n');
  assert.equal(
    first!.reply,
    '250-PROTOCOLINFO 1\r\n250-AUTH METHODS=COOKIE,SAFECOOKIE,HASHEDPASSWORD COOKIEFILE="/tmp/x \\"y\\"/control_auth_cookie"\r\n' +
      '250-VERSION Tor="0.4.9.0-allium (allium-test)"\r\n250 OK\r\n',
  );
  assert.deepEqual(second, { reply: '514 Authentication required.\r\n', close: true });
});

test('cookie (hex), password (quoted or hex) and SAFECOOKIE authenticate; a wrong one gets 515 and a close', async () => {
  for (const line of [`AUTHENTICATE ${hex(COOKIE)}`, 'AUTHENTICATE "pw"', `AUTHENTICATE ${hex(new TextEncoder().encode('pw'))}`]) {
    const s = new ControlSession(backend(), cookieAuth, fixedRandom);
    assert.deepEqual(await say(s, `${line}\r\n`), [{ reply: '250 OK\r\n' }], line);
    assert.equal(s.authenticated, true);
  }
  for (const line of ['AUTHENTICATE "nope"', `AUTHENTICATE ${'00'.repeat(32)}`, 'AUTHENTICATE', 'AUTHENTICATE zz', 'AUTHENTICATE "open']) {
    const s = new ControlSession(backend(), cookieAuth, fixedRandom);
    const [r] = await say(s, `${line}\r\n`);
    assert.match(r!.reply, /^515 Authentication failed: /, line);
    assert.equal(r!.close, true);
    assert.equal(s.authenticated, false);
  }
  // SAFECOOKIE: the server proves it knows the cookie; the controller answers with the other HMAC.
  const s = new ControlSession(backend(), cookieAuth, fixedRandom);
  const clientNonce = new Uint8Array(32).fill(0x22);
  const serverNonce = fixedRandom(32);
  const msg = Buffer.concat([COOKIE, clientNonce, serverNonce]);
  const [challenge] = await say(s, `AUTHCHALLENGE SAFECOOKIE ${hex(clientNonce)}\r\n`);
  const serverHash = createHmac('sha256', 'Tor safe cookie authentication server-to-controller hash').update(msg).digest('hex').toUpperCase();
  assert.equal(challenge!.reply, `250 AUTHCHALLENGE SERVERHASH=${serverHash} SERVERNONCE=${hex(serverNonce).toUpperCase()}\r\n`);
  const clientHash = createHmac('sha256', 'Tor safe cookie authentication controller-to-server hash').update(msg).digest('hex');
  assert.deepEqual(await say(s, `AUTHENTICATE ${clientHash}\r\n`), [{ reply: '250 OK\r\n' }]);
  // After AUTHCHALLENGE the plain cookie is no longer accepted.
  const t = new ControlSession(backend(), cookieAuth, fixedRandom);
  await say(t, `AUTHCHALLENGE SAFECOOKIE ${hex(clientNonce)}\r\n`);
  assert.equal((await say(t, `AUTHENTICATE ${hex(COOKIE)}\r\n`))[0]!.close, true);
});

test('before authenticating only PROTOCOLINFO, AUTHCHALLENGE, AUTHENTICATE and QUIT; an HTTP request gets an HTTP answer', async () => {
  for (const line of ['GETINFO version', 'SIGNAL NEWNYM', 'FOO', '', '\u0000\u00ff']) {
    const s = new ControlSession(backend(), cookieAuth, fixedRandom);
    assert.deepEqual(await say(s, `${line}\r\n`), [{ reply: '514 Authentication required.\r\n', close: true }], JSON.stringify(line));
  }
  const s = new ControlSession(backend(), cookieAuth, fixedRandom);
  const [r] = await say(s, 'GET / HTTP/1.1\r\n');
  assert.match(r!.reply, /^HTTP\/1\.0 501 /);
  assert.equal(r!.close, true);
  assert.deepEqual(await say(new ControlSession(backend(), cookieAuth, fixedRandom), 'QUIT\r\n'), [{ reply: '250 closing connection\r\n', close: true }]);
  const challenge = new ControlSession(backend(), cookieAuth, fixedRandom);
  assert.match((await say(challenge, 'AUTHCHALLENGE HASHEDPASSWORD 00\r\n'))[0]!.reply, /^513 /);
});

test('GETINFO answers in Tor formats; one unknown key fails the whole command with 552', async () => {
  const s = await authed();
  const [r] = await say(s, 'GETINFO version circuit-status stream-status status/bootstrap-phase traffic/read net/listeners/socks\r\n');
  const fp = (id: string) => id.slice(0, 40).toUpperCase();
  assert.equal(
    r!.reply,
    '250-version=0.4.9.0-allium (allium-test)\r\n' +
      `250+circuit-status=\r\n7 BUILT $${fp(ID_A)}~relay1,$${fp(ID_B)}~relay2,$${fp(ID_C)}~relay3 BUILD_FLAGS=NEED_CAPACITY PURPOSE=GENERAL TIME_CREATED=2025-01-02T03:04:05.678000\r\n.\r\n` +
      '250+stream-status=\r\n3 SUCCEEDED 7 example.com:443\r\n.\r\n' +
      '250-status/bootstrap-phase=NOTICE BOOTSTRAP PROGRESS=100 TAG=done SUMMARY="Done"\r\n' +
      '250-traffic/read=1028\r\n' +
      '250-net/listeners/socks="127.0.0.1:9050"\r\n' +
      '250 OK\r\n',
  );
  assert.equal((await say(s, 'GETINFO version bogus\r\n'))[0]!.reply, '552 Unrecognized key "bogus"\r\n');
  assert.equal((await say(s, 'GETINFO\r\n'))[0]!.reply, '512 Missing argument to GETINFO\r\n');
  assert.equal((await say(s, 'GETINFO ns/id/ZZ\r\n'))[0]!.reply, '552 Unrecognized key "ns/id/ZZ"\r\n');
  assert.equal((await say(s, 'GETCONF socksport CookieAuthFile\r\n'))[0]!.reply, '250-SocksPort=127.0.0.1:9050\r\n250 CookieAuthFile\r\n');
  assert.equal((await say(s, 'GETCONF NoSuchOption\r\n'))[0]!.reply, '552 Unrecognized configuration key "NoSuchOption"\r\n');
});

test('SETEVENTS takes every Tor event name (case-insensitive) and refuses unknown ones without changing the set', async () => {
  const s = await authed();
  assert.equal((await say(s, 'SETEVENTS EXTENDED circ Stream BW NOTICE\r\n'))[0]!.reply, '250 OK\r\n');
  assert.deepEqual([...s.events].sort(), ['BW', 'CIRC', 'NOTICE', 'STREAM']);
  assert.equal((await say(s, 'SETEVENTS CIRC BOGUS\r\n'))[0]!.reply, '552 Unrecognized event "BOGUS"\r\n');
  assert.deepEqual([...s.events].sort(), ['BW', 'CIRC', 'NOTICE', 'STREAM']);
  assert.equal((await say(s, 'SETEVENTS\r\n'))[0]!.reply, '250 OK\r\n');
  assert.equal(s.events.size, 0);
});

test('SIGNAL NEWNYM and EXTENDCIRCUIT 0 reach the client; other forms get 5xx', async () => {
  const calls: string[] = [];
  const s = await authed(calls);
  assert.equal((await say(s, 'SIGNAL NEWNYM\r\n'))[0]!.reply, '250 OK\r\n');
  assert.equal((await say(s, 'EXTENDCIRCUIT 0\r\n'))[0]!.reply, '250 EXTENDED 99\r\n');
  assert.equal((await say(s, 'EXTENDCIRCUIT 0 purpose=general\r\n'))[0]!.reply, '250 EXTENDED 99\r\n');
  assert.deepEqual(calls, ['newnym', 'build', 'build']);
  assert.match((await say(s, 'EXTENDCIRCUIT 7\r\n'))[0]!.reply, /^551 /);
  assert.equal((await say(s, 'EXTENDCIRCUIT 8\r\n'))[0]!.reply, '552 Unknown circuit "8"\r\n');
  assert.match((await say(s, 'EXTENDCIRCUIT 0 $AAAA,$BBBB\r\n'))[0]!.reply, /^551 /);
  assert.match((await say(s, 'EXTENDCIRCUIT 0 purpose=rendezvous\r\n'))[0]!.reply, /^552 /);
  assert.equal((await say(s, 'SIGNAL RELOAD\r\n'))[0]!.reply, '552 Unrecognized signal code "RELOAD"\r\n');
  assert.equal((await say(s, 'FROB x\r\n'))[0]!.reply, '510 Unrecognized command "FROB"\r\n');
  const failing = new ControlSession({ ...backend(), buildCircuit: () => Promise.reject(new Error('no path')) }, cookieAuth, fixedRandom);
  await say(failing, `AUTHENTICATE ${hex(COOKIE)}\r\n`);
  assert.match((await say(failing, 'EXTENDCIRCUIT 0\r\n'))[0]!.reply, /^551 Couldn't build a circuit: no path/);
});

test('random input never throws; every reply is CRLF-terminated lines with a status code', async () => {
  const rng = new Rng(0xc0471);
  const words = ['GETINFO', 'SETEVENTS', 'SIGNAL', 'EXTENDCIRCUIT', 'AUTHENTICATE', 'AUTHCHALLENGE', 'PROTOCOLINFO', 'GETCONF', 'QUIT', 'version', '"', '\\', '0', 'NEWNYM', '+', '.', 'CIRC', 'ns/all', 'SAFECOOKIE'];
  for (let i = 0; i < 2000; i++) {
    const s = rng.bool() ? await authed() : new ControlSession(backend(), cookieAuth, fixedRandom);
    const text = Array.from({ length: rng.range(1, 6) }, () =>
      rng.bool(0.2) ? Buffer.from(rng.bytes(rng.range(1, 20))).toString('latin1') : Array.from({ length: rng.range(1, 4) }, () => rng.pick(words)).join(rng.pick([' ', '  ', ''])),
    ).join('\r\n');
    for (const out of await say(s, `${text}\r\n`)) {
      assert.match(out.reply, /^((\d{3}[ +-][^\r\n]*\r\n)([^\r\n]*\r\n)*)?$|^HTTP\/1\.0 501/, JSON.stringify(text));
      if (out.close) break;
    }
  }
  assert.equal(decodeToken('"a\\"b"')?.length, 3);
  assert.equal(decodeToken('abc'), null);
});
