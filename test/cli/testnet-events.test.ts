/**
 * The testnet's stdout lines (cli/testnet-events.ts): every event round-trips,
 * and truncated, oversized or malformed lines are refused with a DecodeError,
 * never taken for an event.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DecodeError } from '../../src/errors.js';
import { formatEventLine, formatReadyLine, parseEventLine, parseReadyLine, type TestnetEvent } from '../../cli/testnet-events.js';

const ID = 'ab'.repeat(32);
const EVENTS: TestnetEvent[] = [
  { event: 'up', role: 'authority', nickname: 'auth1', address: '127.100.0.1', port: 7000, identity: ID, url: 'http://127.100.0.1:7000' },
  { event: 'node', role: 'authority', nickname: 'auth1', address: '127.100.0.1', port: 7000, identity: ID, url: 'http://127.100.0.1:7000' },
  { event: 'up', role: 'relay', nickname: 'relay1', address: '127.1.0.1', port: 44795, identity: ID, exit: true },
  { event: 'node', role: 'relay', nickname: 'relay2', address: '127.2.0.1', port: 1, identity: ID, exit: false },
  { event: 'up', role: 'client', address: '127.0.0.1', port: 9050, socks: '127.0.0.1:9050' },
  { event: 'node', role: 'client', nickname: 'client', address: '127.0.0.1', port: 65535, socks: '127.0.0.1:65535' },
  { event: 'up', role: 'client', address: '127.0.0.1', port: 9050, socks: '127.0.0.1:9050', httpTunnel: '127.0.0.1:8118', control: '127.0.0.1:9051' },
  { event: 'up', role: 'destination', nickname: 'dest', address: '10.127.0.1', port: 80, url: 'http://10.127.0.1:80' },
  { event: 'node', role: 'forward', nickname: 'socks', listen: 'unix:/tmp/allium-testnet-x/client/socks.sock', connect: '127.0.0.1:9050' },
];
const malformed = (e: unknown) => e instanceof DecodeError && e.code === 'ERR_MALFORMED';

test('every event round-trips through its line', () => {
  for (const event of EVENTS) {
    const line = formatEventLine(event);
    assert.ok(event.event !== 'bootstrap' && line.startsWith(`{"event":"${event.event}","role":"${event.role}"`), line);
    assert.deepEqual(parseEventLine(line), event);
    assert.equal(formatEventLine(parseEventLine(line)!), line);
  }
  // The documented shape (docs/testnet.md).
  assert.equal(formatEventLine(EVENTS[3]!), `{"event":"node","role":"relay","nickname":"relay2","address":"127.2.0.1","port":1,"identity":"${ID}","exit":false}`);
});

test('bootstrap lines round-trip; bad ones are malformed', () => {
  const progress = { event: 'bootstrap', progress: 25, tag: 'requesting_status', summary: 'Asking for networkstatus consensus' } as const;
  const problem = { ...progress, warning: 'cannot fetch a consensus from http://127.100.0.1:7000: connection refused (ERR_LINK_CLOSED)' };
  for (const event of [progress, problem]) assert.deepEqual(parseEventLine(formatEventLine(event)), event);
  assert.equal(formatEventLine(progress), '{"event":"bootstrap","progress":25,"tag":"requesting_status","summary":"Asking for networkstatus consensus"}');
  for (const bad of [
    '{"event":"bootstrap","progress":101,"tag":"done","summary":"Done"}',
    '{"event":"bootstrap","progress":5,"tag":"Bad Tag","summary":"x"}',
    '{"event":"bootstrap","progress":5,"tag":"x","summary":"x","extra":1}',
    '{"event":"up","role":"client","address":"127.0.0.1","port":1,"socks":"127.0.0.1:1","control":"localhost:9051"}',
  ]) {
    assert.throws(() => parseEventLine(bad), malformed, bad);
  }
});

test('lines that are not event lines are null', () => {
  for (const line of ['', 'ready socks5h://127.0.0.1:9050 (…)', 'hello', ' {"event":"up"}', '[1]']) assert.equal(parseEventLine(line), null, line);
});

test('truncated, malformed and ill-typed event lines are DecodeErrors', () => {
  const line = formatEventLine(EVENTS[2]!);
  for (let i = 1; i < line.length; i++) assert.throws(() => parseEventLine(line.slice(0, i)), malformed, `prefix ${i}`);
  const relay = JSON.parse(line) as Record<string, unknown>;
  const variants: Record<string, unknown>[] = [
    { ...relay, event: 'down' },
    { ...relay, role: 'bridge' },
    { ...relay, extra: 1 },
    { ...relay, nickname: undefined },
    { ...relay, nickname: 'bad name' },
    { ...relay, nickname: 'x'.repeat(20) },
    { ...relay, address: '127.1.0.01' },
    { ...relay, address: '::1' },
    { ...relay, address: 'localhost' },
    { ...relay, port: 0 },
    { ...relay, port: 65536 },
    { ...relay, port: 1.5 },
    { ...relay, port: '44795' },
    { ...relay, identity: ID.toUpperCase() },
    { ...relay, identity: ID.slice(2) },
    { ...relay, exit: 'true' },
    { ...relay, exit: undefined },
    { event: 'up', role: 'authority', nickname: 'auth1', address: '127.100.0.1', port: 7000, identity: ID, url: 'http://127.100.0.1:7001' },
    { event: 'up', role: 'client', address: '127.0.0.1', port: 9050, socks: '127.0.0.1:9051' },
    { event: 'up', role: 'client', address: '127.0.0.1', port: 9050 },
    { event: 'up', role: 'destination', nickname: 'dest', address: '10.127.0.1', port: 80, url: 'http://10.127.0.1:81' },
    { event: 'up', role: 'destination', nickname: 'dest', address: '10.127.0.1', port: 80 },
    { event: 'up', role: 'forward', nickname: 'socks', listen: 'unix:relative/path', connect: '127.0.0.1:9050' },
    { event: 'up', role: 'forward', nickname: 'socks', listen: 'unix:/x', connect: 'localhost:9050' },
    { event: 'up', role: 'forward', nickname: 'socks', listen: 'unix:/x' },
    { event: 'up', role: 'forward', nickname: 'socks', listen: 'unix:/x', connect: '127.0.0.1:1', address: '127.0.0.1' },
    { event: 'up', role: 'toString', nickname: 'x', address: '127.0.0.1', port: 1 },
  ];
  for (const v of variants) assert.throws(() => parseEventLine(JSON.stringify(v)), malformed, JSON.stringify(v));
  for (const bad of ['{', '{}', '{"event":"up"}', '{"event":"up","role":"relay"}', `{"event":"up",${'"x":1,'.repeat(10_000)}"role":"relay"}`, '{"__proto__":{"event":"up"}}']) {
    assert.throws(() => parseEventLine(bad), malformed, bad.slice(0, 80));
  }
});

test('the ready line round-trips; other ready lines are DecodeErrors', () => {
  const fields = { socksHost: '127.0.0.1', socksPort: 9050, authorityUrl: 'http://127.100.0.1:41755', relays: 5, exits: 2, dataDir: '/tmp/allium-testnet-Ab12Cd' };
  const line = formatReadyLine(fields);
  assert.equal(line, 'ready socks5h://127.0.0.1:9050 (authority http://127.100.0.1:41755, 5 relays, 2 exits, logs in /tmp/allium-testnet-Ab12Cd)');
  assert.deepEqual(parseReadyLine(line), fields);
  assert.equal(parseReadyLine('{"event":"up"}'), null);
  for (let i = 5; i < line.length; i++) assert.throws(() => parseReadyLine(line.slice(0, i)), malformed, `prefix ${i}`);
  for (const bad of ['ready', 'ready socks5h://127.0.0.01:9050 (authority http://127.100.0.1:1, 5 relays, 2 exits, logs in /x)', 'ready socks5h://127.0.0.1:0 (authority http://127.100.0.1:1, 5 relays, 2 exits, logs in /x)']) {
    assert.throws(() => parseReadyLine(bad), malformed, bad);
  }
});

test('exit lines round-trip; malformed ones are DecodeErrors', () => {
  const exits: TestnetEvent[] = [
    { event: 'exit', nickname: 'relay3', role: 'relay', code: null, signal: 'SIGKILL', expected: true },
    { event: 'exit', nickname: 'auth1', role: 'authority', code: 0, signal: null, expected: false },
  ];
  for (const e of exits) {
    const line = formatEventLine(e);
    assert.deepEqual(parseEventLine(line), e);
    for (let i = 1; i < line.length; i++) assert.throws(() => parseEventLine(line.slice(0, i)), malformed, `prefix ${i}`);
  }
  assert.equal(formatEventLine(exits[0]!), '{"event":"exit","nickname":"relay3","role":"relay","code":null,"signal":"SIGKILL","expected":true}');
  const base = { event: 'exit', nickname: 'relay3', role: 'relay', code: null, signal: 'SIGKILL', expected: true };
  for (const bad of [
    { ...base, code: 1 },
    { ...base, signal: null },
    { ...base, signal: 'KILL' },
    { ...base, code: 256, signal: null },
    { ...base, expected: 'yes' },
    { ...base, role: 'bridge' },
    { ...base, nickname: 'relay 3' },
    { ...base, extra: 1 },
  ]) {
    assert.throws(() => parseEventLine(JSON.stringify(bad)), malformed, JSON.stringify(bad));
  }
});
