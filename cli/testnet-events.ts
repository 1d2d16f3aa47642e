/**
 * The machine-readable stdout lines of the roles and of `allium testnet`
 * (docs/testnet.md), one typed definition shared by every writer and reader:
 *
 *   {"event":"up",...}     a role (authority, relay, client; destination, forward) is up: printed once by the role itself
 *   {"event":"node",...}   the testnet reports one node it started (again, after `ready`, when a node is restarted)
 *   {"event":"bootstrap",...}  a client's bootstrap progress or problem (client/bootstrap.ts), before its up line
 *   ready socks5h://HOST:PORT (authority URL, N relays, E exits, logs in DIR)
 *                          the testnet has formed (printed once)
 *   {"event":"exit",...}   after `ready`: one of the testnet's nodes exited (the others keep running)
 *
 * An event line is one JSON object with the fields of its role below, and
 * nothing else; the `ready` line is plain text so a person can read it too.
 */
import { malformed } from '../src/errors.js';
import { parseIPv4 } from '../src/net/address.js';

export interface AuthorityNode {
  role: 'authority';
  nickname: string;
  /** IPv4 address of its HTTP server. */
  address: string;
  port: number;
  /** Ed25519 identity, 64 lowercase hex digits. */
  identity: string;
  /** `http://ADDRESS:PORT`. */
  url: string;
  /** `HOST:PORT` of its metrics port (metrics and dashboard), when it has one. */
  metrics?: string;
}

export interface RelayNode {
  role: 'relay';
  nickname: string;
  /** IPv4 address of its OR port. */
  address: string;
  port: number;
  identity: string;
  exit: boolean;
  /** `HOST:PORT` of its metrics port, when it has one. */
  metrics?: string;
}

export interface ClientNode {
  role: 'client';
  /** Set in `node` lines (the testnet names its client), absent in the client's own `up` line. */
  nickname?: string;
  /** IPv4 address and port of the SOCKS5 listener. */
  address: string;
  port: number;
  /** `ADDRESS:PORT` of the SOCKS5 listener. */
  socks: string;
  /** `ADDRESS:PORT` of the HTTP CONNECT tunnel listener, when there is one. */
  httpTunnel?: string;
  /** `ADDRESS:PORT` of the control port, when there is one. */
  control?: string;
  /** `HOST:PORT` of its metrics port, when it has one. */
  metrics?: string;
}

/** `allium destination`: an HTTP server for exits to reach (the netns testnet starts one). */
export interface DestinationNode {
  role: 'destination';
  nickname: string;
  /** IPv4 address it listens on. */
  address: string;
  port: number;
  /** `http://ADDRESS:PORT`. */
  url: string;
}

/** `allium forward`: a forwarder (the netns testnet uses one to carry the SOCKS port out of the client's namespace). */
export interface ForwardNode {
  role: 'forward';
  nickname: string;
  /** Where it listens and what it connects to: `HOST:PORT` or `unix:PATH` (src/link/forwarder.ts). */
  listen: string;
  connect: string;
}

export type NodeInfo = AuthorityNode | RelayNode | ClientNode | DestinationNode | ForwardNode;

/** `exit`: after `ready`, a node of the testnet exited; `expected` when a control command asked for it. */
export interface NodeExitEvent {
  event: 'exit';
  nickname: string;
  role: NodeInfo['role'];
  /** Exit code, or null when a signal ended it. */
  code: number | null;
  /** The signal that ended it (e.g. SIGKILL), or null. */
  signal: string | null;
  expected: boolean;
}

/** A client's bootstrap progress, in Tor's terms (client/bootstrap.ts). */
export interface BootstrapEvent {
  event: 'bootstrap';
  /** 0..100. */
  progress: number;
  tag: string;
  summary: string;
  /** Why the client cannot go further, when something keeps it. */
  warning?: string;
}

/**
 * `up`: printed by a role once it is up. `node`: printed by the testnet for each node. `exit`: a node exited.
 * `bootstrap`: by a client while it starts.
 */
export type TestnetEvent = ({ event: 'up' } & NodeInfo) | ({ event: 'node' } & NodeInfo) | NodeExitEvent | BootstrapEvent;

/** The line for an event (no newline), fields in a fixed order. */
export function formatEventLine(event: TestnetEvent): string {
  if (event.event === 'exit') {
    return JSON.stringify({ event: 'exit', nickname: event.nickname, role: event.role, code: event.code, signal: event.signal, expected: event.expected });
  }
  if (event.event === 'bootstrap') {
    return JSON.stringify({
      event: 'bootstrap',
      progress: event.progress,
      tag: event.tag,
      summary: event.summary,
      ...(event.warning !== undefined ? { warning: event.warning } : {}),
    });
  }
  const base = { event: event.event, role: event.role };
  const metrics = 'metrics' in event && event.metrics !== undefined ? { metrics: event.metrics } : {};
  switch (event.role) {
    case 'authority':
      return JSON.stringify({ ...base, nickname: event.nickname, address: event.address, port: event.port, identity: event.identity, url: event.url, ...metrics });
    case 'relay':
      return JSON.stringify({ ...base, nickname: event.nickname, address: event.address, port: event.port, identity: event.identity, exit: event.exit, ...metrics });
    case 'client':
      return JSON.stringify({
        ...base,
        ...(event.nickname !== undefined ? { nickname: event.nickname } : {}),
        address: event.address,
        port: event.port,
        socks: event.socks,
        ...(event.httpTunnel !== undefined ? { httpTunnel: event.httpTunnel } : {}),
        ...(event.control !== undefined ? { control: event.control } : {}),
        ...metrics,
      });
    case 'destination':
      return JSON.stringify({ ...base, nickname: event.nickname, address: event.address, port: event.port, url: event.url });
    case 'forward':
      return JSON.stringify({ ...base, nickname: event.nickname, listen: event.listen, connect: event.connect });
  }
}

const NICKNAME = /^[A-Za-z0-9]{1,19}$/;
const IDENTITY = /^[0-9a-f]{64}$/;
const KEYS: Record<NodeInfo['role'], readonly string[]> = {
  authority: ['event', 'role', 'nickname', 'address', 'port', 'identity', 'url', 'metrics'],
  relay: ['event', 'role', 'nickname', 'address', 'port', 'identity', 'exit', 'metrics'],
  client: ['event', 'role', 'nickname', 'address', 'port', 'socks', 'httpTunnel', 'control', 'metrics'],
  destination: ['event', 'role', 'nickname', 'address', 'port', 'url'],
  forward: ['event', 'role', 'nickname', 'listen', 'connect'],
};
const BOOTSTRAP_KEYS = ['event', 'progress', 'tag', 'summary', 'warning'];
const ENDPOINT = /^([0-9.]+):([0-9]{1,5})$/;
/** A metrics port: `a.b.c.d:PORT` or `[v6]:PORT`. */
const METRICS_ENDPOINT = /^(?:[0-9.]{7,15}|\[[0-9A-Fa-f:.]{2,45}\]):[0-9]{1,5}$/;

/** `IPv4:PORT` with a port 1..65535. */
function isEndpoint(value: unknown): boolean {
  if (typeof value !== 'string') return false;
  const m = ENDPOINT.exec(value);
  return m !== null && parseIPv4(m[1]!) !== null && Number(m[2]) >= 1 && Number(m[2]) <= 65535;
}
/** A forwarder endpoint as src/link/forwarder.ts writes it. */
const FORWARD_ENDPOINT = /^(?:unix:\/.{0,1000}|[0-9.]{7,15}:[0-9]{1,5}|\[[0-9a-fA-F:.]{2,45}\]:[0-9]{1,5})$/;

function check(ok: boolean, line: string, what: string): void {
  if (!ok) throw malformed(`testnet event line: ${what} in ${line.slice(0, 200)}`);
}

/**
 * The event on `line`, or null when the line is not an event line (it does
 * not start with `{`: a `ready` line, or anything else). A line that starts
 * with `{` but is not a valid event — bad JSON, an unknown event or role, a
 * missing, extra or ill-typed field — throws a DecodeError (ERR_MALFORMED):
 * role stdout carries nothing else, so such a line is a bug, not noise.
 */
export function parseEventLine(line: string): TestnetEvent | null {
  if (!line.startsWith('{')) return null;
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw malformed(`testnet event line: not JSON: ${line.slice(0, 200)}`);
  }
  check(typeof value === 'object' && value !== null && !Array.isArray(value), line, 'not an object');
  const o = value as Record<string, unknown>;
  if (o['event'] === 'exit') return parseExitEvent(o, line);
  if (o['event'] === 'bootstrap') {
    for (const key of Object.keys(o)) check(BOOTSTRAP_KEYS.includes(key), line, `unexpected field ${JSON.stringify(key)}`);
    const progress = o['progress'];
    check(typeof progress === 'number' && Number.isInteger(progress) && progress >= 0 && progress <= 100, line, 'bad progress');
    check(typeof o['tag'] === 'string' && /^[a-z_]{1,40}$/.test(o['tag']), line, 'bad tag');
    check(typeof o['summary'] === 'string' && o['summary'].length <= 200, line, 'bad summary');
    check(o['warning'] === undefined || (typeof o['warning'] === 'string' && o['warning'].length <= 2000), line, 'bad warning');
    return o as unknown as TestnetEvent;
  }
  check(o['event'] === 'up' || o['event'] === 'node', line, 'unknown event');
  const role = o['role'];
  check(typeof role === 'string' && Object.hasOwn(KEYS, role), line, 'unknown role');
  const allowed = KEYS[role as NodeInfo['role']];
  for (const key of Object.keys(o)) check(allowed.includes(key), line, `unexpected field ${JSON.stringify(key)}`);
  const nickname = o['nickname'];
  if (role === 'client') check(nickname === undefined || (typeof nickname === 'string' && NICKNAME.test(nickname)), line, 'bad nickname');
  else check(typeof nickname === 'string' && NICKNAME.test(nickname), line, 'bad nickname');
  if (role === 'forward') {
    for (const key of ['listen', 'connect']) check(typeof o[key] === 'string' && FORWARD_ENDPOINT.test(o[key]), line, `bad ${key}`);
    return o as unknown as TestnetEvent;
  }
  check(typeof o['address'] === 'string' && parseIPv4(o['address']) !== null, line, 'bad address');
  const port = o['port'];
  check(typeof port === 'number' && Number.isInteger(port) && port >= 1 && port <= 65535, line, 'bad port');
  const endpoint = `${o['address'] as string}:${port as number}`;
  check(o['metrics'] === undefined || (typeof o['metrics'] === 'string' && METRICS_ENDPOINT.test(o['metrics'])), line, 'bad metrics endpoint');
  if (role === 'authority' || role === 'destination') {
    if (role === 'authority') check(typeof o['identity'] === 'string' && IDENTITY.test(o['identity']), line, 'bad identity');
    check(o['url'] === `http://${endpoint}`, line, 'url does not match address and port');
  } else if (role === 'relay') {
    check(typeof o['identity'] === 'string' && IDENTITY.test(o['identity']), line, 'bad identity');
    check(typeof o['exit'] === 'boolean', line, 'bad exit');
  } else {
    check(o['socks'] === endpoint, line, 'socks does not match address and port');
    check(o['httpTunnel'] === undefined || isEndpoint(o['httpTunnel']), line, 'bad httpTunnel');
    check(o['control'] === undefined || isEndpoint(o['control']), line, 'bad control');
  }
  return o as unknown as TestnetEvent;
}

const EXIT_KEYS = ['event', 'nickname', 'role', 'code', 'signal', 'expected'];

function parseExitEvent(o: Record<string, unknown>, line: string): NodeExitEvent {
  for (const key of Object.keys(o)) check(EXIT_KEYS.includes(key), line, `unexpected field ${JSON.stringify(key)}`);
  check(typeof o['nickname'] === 'string' && NICKNAME.test(o['nickname']), line, 'bad nickname');
  check(typeof o['role'] === 'string' && Object.hasOwn(KEYS, o['role']), line, 'unknown role');
  const code = o['code'];
  check(code === null || (typeof code === 'number' && Number.isInteger(code) && code >= 0 && code <= 255), line, 'bad code');
  const signal = o['signal'];
  check(signal === null || (typeof signal === 'string' && /^SIG[A-Z0-9]{1,10}$/.test(signal)), line, 'bad signal');
  check((code === null) !== (signal === null), line, 'exactly one of code and signal');
  check(typeof o['expected'] === 'boolean', line, 'bad expected');
  return o as unknown as NodeExitEvent;
}

/** What the `ready` line says. */
export interface ReadyLine {
  /** SOCKS5 listener of the testnet's client. */
  socksHost: string;
  socksPort: number;
  authorityUrl: string;
  relays: number;
  exits: number;
  dataDir: string;
}

/** `, metrics on http://HOST:PORT/metrics, dashboard http://HOST:PORT/` for a node's progress line, when it has a metrics port. */
export function metricsNote(up: { metrics?: string }): string {
  return up.metrics === undefined ? '' : `, metrics on http://${up.metrics}/metrics, dashboard http://${up.metrics}/`;
}

/** `ready socks5h://HOST:PORT (authority URL, N relays, E exits, logs in DIR)`. */
export function formatReadyLine(r: ReadyLine): string {
  return `ready socks5h://${r.socksHost}:${r.socksPort} (authority ${r.authorityUrl}, ${r.relays} relays, ${r.exits} exits, logs in ${r.dataDir})`;
}

const READY = /^ready socks5h:\/\/([0-9.]+):([0-9]{1,5}) \(authority (http:\/\/[0-9.]+:[0-9]{1,5}), ([0-9]+) relays, ([0-9]+) exits, logs in (.+)\)$/;

/** The `ready` line's fields, or null when `line` is not a ready line. Throws DecodeError ERR_MALFORMED for a `ready` line of another shape. */
export function parseReadyLine(line: string): ReadyLine | null {
  if (!line.startsWith('ready')) return null;
  const m = READY.exec(line);
  if (m === null || parseIPv4(m[1]!) === null) throw malformed(`testnet ready line: ${line.slice(0, 200)}`);
  const socksPort = Number(m[2]);
  check(socksPort >= 1 && socksPort <= 65535, line, 'bad SOCKS port');
  return { socksHost: m[1]!, socksPort, authorityUrl: m[3]!, relays: Number(m[4]), exits: Number(m[5]), dataDir: m[6]! };
}
