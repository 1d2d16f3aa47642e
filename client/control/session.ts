/**
 * One control connection as a state machine (Tor's control-spec §3;
 * docs/control-port.md): feed it commands (./protocol.ts), get back the
 * reply to write and whether to close. The connection starts
 * unauthenticated: only PROTOCOLINFO and AUTHCHALLENGE (once each),
 * AUTHENTICATE and QUIT are accepted; anything else gets `514
 * Authentication required.` and a close, and so does a failed
 * AUTHENTICATE (`515`). Once authenticated: GETINFO, GETCONF, SETEVENTS,
 * SIGNAL NEWNYM, EXTENDCIRCUIT 0, PROTOCOLINFO, QUIT. Any other keyword gets
 * `510 Unrecognized command "..."`; bad arguments a 5xx; nothing throws.
 *
 * The session asks an injected backend (the client) for what it reports,
 * so it runs without sockets in tests.
 */
import type { BootstrapStatus } from '../bootstrap.js';
import type { CircuitInfo } from '../circuit-manager.js';
import type { AppStream } from '../stream-table.js';
import type { Consensus } from '../../src/netdoc/consensus.js';
import { fromHex, hex } from '../../src/bytes.js';
import {
  COOKIE_BYTES,
  SAFECOOKIE_NONCE_BYTES,
  constantTimeEqual,
  passwordMatches,
  safeCookieClientHash,
  safeCookieServerHash,
  type HashedPassword,
} from './auth.js';
import { bootstrapLine, circuitLine, fingerprint, routerStatusEntry, streamLine } from './format.js';
import { encodeReply, printable, quote, readQuoted, reply, splitArguments, type ControlCommand, type ReplyLine } from './protocol.js';

/** What the control port reports and controls: the client, seen through this interface. */
export interface ControlBackend {
  /** What GETINFO version and PROTOCOLINFO say (a Tor-style version; see docs/control-port.md). */
  readonly version: string;
  readonly pid: number;
  /** ms since the epoch. */
  readonly startedAt: number;
  bootstrap(): BootstrapStatus;
  circuits(): CircuitInfo[];
  streams(): AppStream[];
  consensus(): Consensus | null;
  /** Bytes read and written on the client's links so far. */
  traffic(): { read: number; written: number };
  /** Listener addresses (`host:port`) by kind. */
  listeners(): { socks: string[]; control: string[]; httptunnel: string[] };
  /** Values GETCONF reports, by canonical option name; a missing name is unrecognized, a null value unset. */
  conf(): ReadonlyMap<string, string | null>;
  newnym(): void;
  /** Build a new general-purpose circuit; resolves once it is built. */
  buildCircuit(): Promise<CircuitInfo>;
}

/** How controllers may authenticate; at least one of the two. */
export interface ControlAuth {
  /** The 32-byte cookie (COOKIE and SAFECOOKIE), and the file it is in. */
  cookie: { bytes: Uint8Array; path: string } | null;
  /** HASHEDPASSWORD: any of these. */
  passwords: readonly HashedPassword[];
}

export interface SessionOutput {
  /** The reply to write (CRLF-terminated lines); '' for none. */
  reply: string;
  /** Close the connection once `reply` is written. */
  close?: boolean;
}

/** Every event name Tor knows (control-spec §4.1): SETEVENTS accepts them all; the ones Allium emits are EMITTED_EVENTS. */
export const KNOWN_EVENTS: ReadonlySet<string> = new Set([
  'CIRC', 'STREAM', 'ORCONN', 'BW', 'DEBUG', 'INFO', 'NOTICE', 'WARN', 'ERR', 'NEWDESC', 'ADDRMAP', 'AUTHDIR_NEWDESCS',
  'DESCCHANGED', 'STATUS_GENERAL', 'STATUS_CLIENT', 'STATUS_SERVER', 'GUARD', 'NS', 'STREAM_BW', 'CLIENTS_SEEN',
  'NEWCONSENSUS', 'BUILDTIMEOUT_SET', 'SIGNAL', 'CONF_CHANGED', 'CIRC_MINOR', 'TRANSPORT_LAUNCHED', 'CONN_BW', 'CIRC_BW',
  'CELL_STATS', 'TB_EMPTY', 'HS_DESC', 'HS_DESC_CONTENT', 'NETWORK_LIVENESS', 'PT_LOG', 'PT_STATUS',
]);

/** The events Allium sends. */
export const EMITTED_EVENTS: readonly string[] = ['CIRC', 'STREAM', 'BW', 'STATUS_CLIENT', 'NOTICE', 'WARN', 'SIGNAL'];

/** The GETINFO keys answered (prefix keys end in `/`, listed as in Tor's info/names with `*`). */
export const INFO_KEYS: readonly string[] = [
  'version', 'config-file', 'process/pid', 'uptime', 'circuit-status', 'stream-status', 'orconn-status', 'ns/all', 'ns/id/*',
  'ns/name/*', 'status/bootstrap-phase', 'status/circuit-established', 'status/enough-dir-info', 'status/version/current',
  'traffic/read', 'traffic/written', 'events/names', 'info/names', 'config/names', 'net/listeners/socks',
  'net/listeners/control', 'net/listeners/httptunnel', 'network-liveness', 'dormant',
];

const BEFORE_AUTH = new Set(['PROTOCOLINFO', 'AUTHENTICATE', 'AUTHCHALLENGE', 'QUIT']);
const HTTP_METHODS = new Set(['GET', 'POST', 'HEAD', 'PUT', 'CONNECT', 'OPTIONS', 'DELETE']);
const NOT_AN_HTTP_PROXY =
  'HTTP/1.0 501 Allium ControlPort is not an HTTP proxy\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n' +
  'This is the control port of an Allium client, not an HTTP proxy. Use its SOCKS port or its HTTP tunnel port.\n';

export class ControlSession {
  readonly #backend: ControlBackend;
  readonly #auth: ControlAuth;
  readonly #random: (n: number) => Uint8Array;
  #authenticated = false;
  #sentProtocolInfo = false;
  /** After a successful AUTHCHALLENGE: what the next AUTHENTICATE must be. */
  #challenge: Uint8Array | null = null;
  #challenged = false;
  #events = new Set<string>();

  /** `random(n)`: n random bytes (SAFECOOKIE server nonces). */
  constructor(backend: ControlBackend, auth: ControlAuth, random: (n: number) => Uint8Array) {
    this.#backend = backend;
    this.#auth = auth;
    this.#random = random;
  }

  get authenticated(): boolean {
    return this.#authenticated;
  }

  /** The events this connection asked for (SETEVENTS), upper case. */
  get events(): ReadonlySet<string> {
    return this.#events;
  }

  /** Handle one command. EXTENDCIRCUIT answers later (a promise); everything else at once. Never throws or rejects. */
  handle(command: ControlCommand): SessionOutput | Promise<SessionOutput> {
    const keyword = command.keyword.toUpperCase();
    if (keyword === 'QUIT') return { reply: reply(250, 'closing connection'), close: true };
    if (!this.#authenticated && HTTP_METHODS.has(keyword) && /HTTP\/1\.[01]$/.test(command.args)) {
      // Someone pointed a browser or an HTTP proxy client here: say so in HTTP, as Tor does.
      return { reply: NOT_AN_HTTP_PROXY, close: true };
    }
    if (!this.#authenticated && !BEFORE_AUTH.has(keyword)) {
      return { reply: reply(514, 'Authentication required.'), close: true };
    }
    // After AUTHCHALLENGE the next command must be AUTHENTICATE.
    if (this.#challenge !== null && keyword !== 'AUTHENTICATE') {
      return { reply: reply(514, 'Authentication required.'), close: true };
    }
    try {
      switch (keyword) {
        case 'PROTOCOLINFO':
          return this.#protocolInfo();
        case 'AUTHCHALLENGE':
          return this.#authChallenge(command.args);
        case 'AUTHENTICATE':
          return this.#authenticate(command.args);
        case 'GETINFO':
          return { reply: this.#getInfo(command.args) };
        case 'GETCONF':
          return { reply: this.#getConf(command.args) };
        case 'SETEVENTS':
          return { reply: this.#setEvents(command.args) };
        case 'SIGNAL':
          return { reply: this.#signal(command.args) };
        case 'EXTENDCIRCUIT':
          return this.#extendCircuit(command.args);
        default:
          return { reply: reply(510, `Unrecognized command "${printable(command.keyword)}"`) };
      }
    } catch {
      // A handler bug must not take the node down: the controller gets a 551.
      return { reply: reply(551, 'Internal error') };
    }
  }

  // ---- authentication ----

  #protocolInfo(): SessionOutput {
    if (!this.#authenticated && this.#sentProtocolInfo) {
      return { reply: reply(514, 'Authentication required.'), close: true };
    }
    this.#sentProtocolInfo = true;
    const methods: string[] = [];
    if (this.#auth.cookie !== null) methods.push('COOKIE', 'SAFECOOKIE');
    if (this.#auth.passwords.length > 0) methods.push('HASHEDPASSWORD');
    const cookieFile = this.#auth.cookie !== null ? ` COOKIEFILE=${quote(this.#auth.cookie.path)}` : '';
    return {
      reply: encodeReply([
        { code: 250, text: 'PROTOCOLINFO 1' },
        { code: 250, text: `AUTH METHODS=${methods.join(',')}${cookieFile}` },
        { code: 250, text: `VERSION Tor=${quote(this.#backend.version)}` },
        { code: 250, text: 'OK' },
      ]),
    };
  }

  #authChallenge(args: string): SessionOutput {
    if (this.#authenticated) return { reply: reply(513, 'AUTHCHALLENGE is only useful before authenticating') };
    if (this.#challenged) return { reply: reply(514, 'Authentication required.'), close: true };
    this.#challenged = true;
    const words = args.split(' ').filter((w) => w !== '');
    if (words.length !== 2 || words[0]!.toUpperCase() !== 'SAFECOOKIE') {
      return { reply: reply(513, 'AUTHCHALLENGE only supports SAFECOOKIE authentication'), close: true };
    }
    if (this.#auth.cookie === null) return { reply: reply(513, 'Cookie authentication is disabled'), close: true };
    const clientNonce = decodeToken(words[1]!);
    if (clientNonce === null || clientNonce.length === 0) return { reply: reply(513, 'Invalid base16 client nonce'), close: true };
    const serverNonce = this.#random(SAFECOOKIE_NONCE_BYTES);
    const cookie = this.#auth.cookie.bytes;
    this.#challenge = safeCookieClientHash(cookie, clientNonce, serverNonce);
    const serverHash = safeCookieServerHash(cookie, clientNonce, serverNonce);
    return { reply: reply(250, `AUTHCHALLENGE SERVERHASH=${hex(serverHash).toUpperCase()} SERVERNONCE=${hex(serverNonce).toUpperCase()}`) };
  }

  #authenticate(args: string): SessionOutput {
    if (this.#authenticated) return { reply: reply(250, 'OK') };
    const secret = decodeToken(args.trim());
    const expected = this.#challenge;
    this.#challenge = null;
    const fail = (why: string): SessionOutput => ({ reply: reply(515, `Authentication failed: ${why}`), close: true });
    if (secret === null) return fail('the argument is neither hex nor a quoted string');
    if (expected !== null) {
      return constantTimeEqual(secret, expected) ? this.#accepted() : fail('SAFECOOKIE response did not match the challenge');
    }
    const cookie = this.#auth.cookie?.bytes;
    if (cookie !== undefined && secret.length === COOKIE_BYTES && constantTimeEqual(secret, cookie)) return this.#accepted();
    if (this.#auth.passwords.some((p) => passwordMatches(p, secret))) return this.#accepted();
    return fail(this.#auth.passwords.length > 0 ? 'Password did not match HashedControlPassword value from configuration' : 'Authentication cookie did not match expected value.');
  }

  #accepted(): SessionOutput {
    this.#authenticated = true;
    return { reply: reply(250, 'OK') };
  }

  // ---- queries ----

  #getInfo(args: string): string {
    const keys = args.split(' ').filter((k) => k !== '');
    if (keys.length === 0) return reply(512, 'Missing argument to GETINFO');
    const lines: ReplyLine[] = [];
    for (const key of keys) {
      const value = this.#info(key);
      if (value === null) return reply(552, `Unrecognized key "${printable(key)}"`);
      if (value.includes('\n')) lines.push({ code: 250, text: `${key}=`, data: value });
      else lines.push({ code: 250, text: `${key}=${value}` });
    }
    lines.push({ code: 250, text: 'OK' });
    return encodeReply(lines);
  }

  /** The value of one GETINFO key, or null when it is not one Allium answers. */
  #info(key: string): string | null {
    const b = this.#backend;
    const lower = key.toLowerCase();
    switch (lower) {
      case 'version':
        return b.version;
      case 'config-file':
        return '';
      case 'process/pid':
        return String(b.pid);
      case 'uptime':
        return String(Math.max(0, Math.floor((Date.now() - b.startedAt) / 1000)));
      case 'circuit-status':
        return b.circuits().map((c) => circuitLine(c, 'BUILT')).join('\n') + (b.circuits().length > 0 ? '\n' : '');
      case 'stream-status': {
        const streams = b.streams();
        return streams.map((s) => streamLine(s, false)).join('\n') + (streams.length > 0 ? '\n' : '');
      }
      case 'orconn-status':
        return '';
      case 'ns/all':
        return this.#ns(() => true);
      case 'status/bootstrap-phase':
        return bootstrapLine(b.bootstrap());
      case 'status/circuit-established':
        return b.circuits().length > 0 ? '1' : '0';
      case 'status/enough-dir-info':
        return b.bootstrap().progress >= 75 ? '1' : '0';
      case 'status/version/current':
        return 'unrecommended';
      case 'traffic/read':
        return String(b.traffic().read);
      case 'traffic/written':
        return String(b.traffic().written);
      case 'events/names':
        return [...KNOWN_EVENTS].join(' ');
      case 'info/names':
        return INFO_KEYS.map((k) => `${k} -- answered by Allium`).join('\n') + '\n';
      case 'config/names':
        return [...b.conf().keys()].map((k) => `${k} String`).join('\n') + '\n';
      case 'net/listeners/socks':
        return b.listeners().socks.map(quote).join(' ');
      case 'net/listeners/control':
        return b.listeners().control.map(quote).join(' ');
      case 'net/listeners/httptunnel':
        return b.listeners().httptunnel.map(quote).join(' ');
      case 'network-liveness':
        return b.circuits().length > 0 ? 'up' : 'down';
      case 'dormant':
        return '0';
    }
    if (lower.startsWith('ns/id/')) {
      const want = key.slice('ns/id/'.length).replace(/^\$/, '').toUpperCase();
      if (!/^[0-9A-F]{40}$/.test(want)) return null;
      const entry = this.#ns((r) => fingerprint(r.identity) === want);
      return entry === '' ? null : entry;
    }
    if (lower.startsWith('ns/name/')) {
      const want = key.slice('ns/name/'.length);
      const entry = this.#ns((r) => r.nickname === want);
      return entry === '' ? null : entry;
    }
    return null;
  }

  /** Router status entries of the consensus relays that `keep` accepts, one after another; '' for none. */
  #ns(keep: (relay: Consensus['relays'][number]) => boolean): string {
    const consensus = this.#backend.consensus();
    if (consensus === null) return '';
    const entries = consensus.relays.filter(keep).map((r) => routerStatusEntry(r, consensus.validAfter));
    return entries.length > 0 ? `${entries.join('\n')}\n` : '';
  }

  #getConf(args: string): string {
    const keys = args.split(' ').filter((k) => k !== '');
    const conf = this.#backend.conf();
    const byLower = new Map([...conf.keys()].map((k) => [k.toLowerCase(), k]));
    const lines: ReplyLine[] = [];
    for (const key of keys) {
      const name = byLower.get(key.toLowerCase());
      if (name === undefined) return reply(552, `Unrecognized configuration key "${printable(key)}"`);
      const value = conf.get(name);
      lines.push({ code: 250, text: value === null || value === undefined ? name : `${name}=${value}` });
    }
    if (lines.length === 0) lines.push({ code: 250, text: 'OK' });
    return encodeReply(lines);
  }

  // ---- actions ----

  #setEvents(args: string): string {
    const words = args.split(' ').filter((w) => w !== '').map((w) => w.toUpperCase());
    const wanted = new Set<string>();
    for (const word of words) {
      if (word === 'EXTENDED') continue; // always on, as in current Tor
      if (!KNOWN_EVENTS.has(word)) return reply(552, `Unrecognized event "${printable(word)}"`);
      wanted.add(word);
    }
    this.#events = wanted;
    return reply(250, 'OK');
  }

  #signal(args: string): string {
    const name = args.trim().toUpperCase();
    if (name === '') return reply(512, 'Missing argument to SIGNAL');
    if (name === 'NEWNYM') {
      this.#backend.newnym();
      return reply(250, 'OK');
    }
    // No DNS cache to clear: saying so is still an honest OK.
    if (name === 'CLEARDNSCACHE') return reply(250, 'OK');
    return reply(552, `Unrecognized signal code "${printable(args.trim())}"`);
  }

  #extendCircuit(args: string): SessionOutput | Promise<SessionOutput> {
    const words = splitArguments(args);
    if (words === null || words.length === 0) return { reply: reply(512, 'Missing argument to EXTENDCIRCUIT') };
    const [id, ...rest] = words as [string, ...string[]];
    if (!/^[0-9]+$/.test(id)) return { reply: reply(552, `Unknown circuit "${printable(id)}"`) };
    if (id !== '0') {
      const known = this.#backend.circuits().some((c) => String(c.id) === id);
      return known
        ? { reply: reply(551, 'Extending an existing circuit is not supported') }
        : { reply: reply(552, `Unknown circuit "${printable(id)}"`) };
    }
    for (const word of rest) {
      const purpose = /^purpose=(.*)$/i.exec(word);
      if (purpose !== null) {
        if (!/^(general|controller)$/i.test(purpose[1]!)) return { reply: reply(552, `Unknown purpose "${printable(purpose[1]!)}"`) };
        continue;
      }
      return { reply: reply(551, 'Allium chooses every path itself; give EXTENDCIRCUIT 0 without a path') };
    }
    return this.#backend.buildCircuit().then(
      (circuit) => ({ reply: reply(250, `EXTENDED ${circuit.id}`) }),
      (error: unknown) => ({ reply: reply(551, `Couldn't build a circuit: ${printable((error as Error)?.message ?? 'failed')}`) }),
    );
  }
}

/** An AUTHENTICATE / AUTHCHALLENGE token: hex digits, or a QuotedString (its bytes as Latin-1); '' is empty; null if neither. */
export function decodeToken(token: string): Uint8Array | null {
  if (token === '') return new Uint8Array(0);
  if (token.startsWith('"')) {
    const q = readQuoted(token, 0);
    if (q === null || q.end !== token.length) return null;
    return new Uint8Array(Buffer.from(q.value, 'latin1'));
  }
  if (!/^([0-9A-Fa-f]{2})+$/.test(token)) return null;
  return fromHex(token);
}
