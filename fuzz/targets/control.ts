/**
 * Fuzz target for the client's control port (client/control/,
 * docs/control-port.md): a controller's bytes through the command framing
 * (ControlCommandParser, whole and in varied chunkings: the same commands or
 * the same error) and each command through a ControlSession whose backend
 * reports a fixed client. Every reply must be well-formed (status lines
 * `NNN[ -+]text` CRLF, ending with an end line; or the documented HTTP
 * answer); `551 Internal error` (a handler bug the session caught) is a
 * crash. Quoted arguments round-trip through quote() and splitArguments().
 * The input is accepted when every command got a 2xx reply; a framing
 * error or any 4xx/5xx reply is a refusal.
 */
import fc from 'fast-check';
import { BootstrapTracker } from '../../client/bootstrap.js';
import type { CircuitInfo } from '../../client/circuit-manager.js';
import { hashPassword, parseHashedPassword } from '../../client/control/auth.js';
import { ControlCommandParser, MAX_LINE_BYTES, quote, splitArguments, type ControlCommand, type ParseResult } from '../../client/control/protocol.js';
import { ControlSession, EMITTED_EVENTS, INFO_KEYS, KNOWN_EVENTS, type ControlBackend } from '../../client/control/session.js';
import { hex } from '../../src/bytes.js';
import { ProtocolError } from '../../src/errors.js';
import { loadCorpus } from '../corpus.js';
import { check, law, sameValue, type FuzzTarget } from '../engine.js';
import { printable } from './arbitraries.js';
import { chunksOf } from './link.js';

const COOKIE = new Uint8Array(32).fill(0x42);
const PASSWORD = 'fuzz';
const AUTH = { cookie: { bytes: COOKIE, path: '/var/lib/allium/control_auth_cookie' }, passwords: [parseHashedPassword(hashPassword(PASSWORD, new Uint8Array(8).fill(7)))] };
const fixedRandom = (n: number) => new Uint8Array(n).fill(0x11);

function circuit(id: number): CircuitInfo {
  return { id, purpose: 'dirty', path: [{ nickname: 'relay1', identity: 'aa'.repeat(32) }, { nickname: 'relay2', identity: 'bb'.repeat(32) }], builtAt: Date.UTC(2026, 0, 2), buildMs: 12, dirtySince: null, streams: 1 };
}

const bootstrap = new BootstrapTracker();
bootstrap.reach('done');
const BACKEND: ControlBackend = {
  version: '0.4.9.0-allium (fuzz)',
  pid: 4242,
  startedAt: Date.UTC(2026, 0, 1),
  bootstrap: () => bootstrap.status,
  circuits: () => [circuit(7)],
  streams: () => [{ id: 3, status: 'SUCCEEDED', circuitId: 7, host: 'example.com', port: 443, protocol: 'SOCKS5', purpose: 'connect', reason: null }],
  consensus: () => null,
  traffic: () => ({ read: 1028, written: 514 }),
  listeners: () => ({ socks: ['127.0.0.1:9050'], control: ['127.0.0.1:9051'], httptunnel: [] }),
  conf: () => new Map<string, string | null>([['SocksPort', '127.0.0.1:9050'], ['CookieAuthFile', null]]),
  newnym: () => {},
  buildCircuit: async () => circuit(99),
};

/** Parse all of `chunks`: the commands, then 'more' or the error. */
function frame(chunks: Uint8Array[]): { commands: ControlCommand[]; end: ParseResult } {
  const parser = new ControlCommandParser();
  const commands: ControlCommand[] = [];
  let end: ParseResult = { kind: 'more' };
  for (const chunk of chunks) {
    parser.push(chunk);
    for (end = parser.next(); end.kind === 'command'; end = parser.next()) commands.push(end.command);
    if (end.kind === 'error') break;
  }
  return { commands, end };
}

/** A status reply: lines `NNN-text`, `NNN+text` and a dot-terminated data block, ending with `NNN text`. */
const STATUS_REPLY = /^(?:\d{3}-[^\r\n]*\r\n|\d{3}\+[^\r\n]*\r\n(?:[^\r\n]*\r\n)*?\.\r\n)*\d{3} [^\r\n]*\r\n$/;

const word = fc.oneof(printable(12).map((s) => s.replace(/\s/g, '')), fc.constantFrom(...INFO_KEYS), fc.constantFrom(...KNOWN_EVENTS), fc.constantFrom('NEWNYM', 'RELOAD', 'a b', '"', '\\', 'x="y z"'));
const command = fc.oneof(
  fc.constantFrom(`AUTHENTICATE ${hex(COOKIE)}`, `AUTHENTICATE "${PASSWORD}"`, 'AUTHENTICATE', 'AUTHENTICATE 00', 'AUTHENTICATE "wrong"', 'PROTOCOLINFO 1', 'PROTOCOLINFO', 'QUIT'),
  fc.constantFrom('SAFECOOKIE', 'COOKIE', 'x').chain((m) => fc.uint8Array({ minLength: 0, maxLength: 40 }).map((n) => `AUTHCHALLENGE ${m} ${hex(n)}`)),
  fc.array(fc.constantFrom(...INFO_KEYS.map((k) => k.replace('*', 'x')), 'ns/id/' + 'aa'.repeat(20), 'ns/name/relay1', 'nosuch'), { maxLength: 4 }).map((k) => `GETINFO ${k.join(' ')}`),
  fc.array(fc.constantFrom('SocksPort', 'CookieAuthFile', 'nosuch', 'socksport'), { maxLength: 3 }).map((k) => `GETCONF ${k.join(' ')}`),
  fc.array(fc.oneof(fc.constantFrom(...EMITTED_EVENTS), fc.constantFrom(...KNOWN_EVENTS), fc.constantFrom('EXTENDED', 'nosuch')), { maxLength: 4 }).map((e) => `SETEVENTS ${e.join(' ')}`),
  fc.constantFrom('SIGNAL NEWNYM', 'SIGNAL HUP', 'SIGNAL', 'EXTENDCIRCUIT 0', 'EXTENDCIRCUIT 5 relay1', 'GET / HTTP/1.1', 'USEFEATURE VERBOSE_NAMES'),
  fc.array(word, { maxLength: 5 }).map((w) => w.map((x) => (x.includes(' ') || x.includes('"') ? quote(x) : x)).join(' ')),
  fc.tuple(fc.constantFrom('LOADCONF', 'POSTDESCRIPTOR', 'GETINFO'), fc.array(printable(30), { maxLength: 4 })).map(([k, lines]) => `+${k}\r\n${lines.map((l) => (l.startsWith('.') ? `.${l}` : l)).join('\r\n')}\r\n.`),
  printable(60),
);
const eol = fc.constantFrom('\r\n', '\n');
const session = fc
  .record({ authenticate: fc.boolean(), commands: fc.array(fc.tuple(command, eol), { maxLength: 8 }), tail: fc.option(printable(20)) })
  .map(({ authenticate, commands, tail }) => {
    const lines = (authenticate ? [`AUTHENTICATE ${hex(COOKIE)}\r\n`] : []).concat(commands.map(([c, e]) => c + e));
    return new Uint8Array(Buffer.from(lines.join('') + (tail ?? ''), 'latin1'));
  });

export const controlPortTarget: FuzzTarget<Uint8Array> = {
  name: 'control-port',
  description: 'ControlCommandParser + ControlSession fed a controller transcript whole and in varied chunkings: same commands, well-formed replies, no internal error; quoted arguments round-trip',
  kind: 'bytes',
  modules: ['client/control/protocol.ts', 'client/control/session.ts', 'client/control/format.ts', 'client/control/auth.ts'],
  maxRandomLength: 2000,
  arbitrary: () => session,
  corpus: () => loadCorpus('control-port', 'bytes'),
  run(input) {
    const whole = frame([input]);
    const chunked = frame(chunksOf(input));
    sameValue('control commands under chunking', chunked.commands, whole.commands);
    sameValue('control framing end under chunking', chunked.end, whole.end);
    let refusal: string | null = whole.end.kind === 'error' ? whole.end.message : null;
    if (whole.end.kind === 'error') check(input.length > MAX_LINE_BYTES || whole.end.message === 'Command too long.', () => `framing error on ${input.length} bytes`);
    const s = new ControlSession(BACKEND, AUTH, fixedRandom);
    for (const cmd of whole.commands) {
      law('splitArguments(quote(w)...)', () => {
        const words = splitArguments(cmd.args);
        if (words === null || words.some((w) => /[\r\n]/.test(w))) return;
        sameValue('quoted words', splitArguments(words.map(quote).join(' ')), words);
      });
      const out = s.handle(cmd);
      if (out instanceof Promise) {
        // EXTENDCIRCUIT answers later; the backend resolves at once, so only its shape could go wrong.
        out.catch(() => {});
        continue;
      }
      const http = out.reply.startsWith('HTTP/1.0 501 ');
      check(http || STATUS_REPLY.test(out.reply), () => `malformed reply to ${JSON.stringify(cmd.keyword.slice(0, 40))}: ${JSON.stringify(out.reply.slice(0, 300))}`);
      check(!out.reply.startsWith('551 Internal error'), () => `internal error on ${JSON.stringify(cmd).slice(0, 300)}`);
      const lines = out.reply.split('\r\n');
      const code = http ? 501 : Number(lines[lines.length - 2]!.slice(0, 3)); // the end line (the reply ends in CRLF)
      if (code >= 400) refusal ??= `${code} to ${cmd.keyword.slice(0, 40)}`;
      if (out.close === true) break;
    }
    if (refusal !== null) throw new ProtocolError(`control port: ${refusal}`);
  },
};

export function makeControlCorpus(): Record<string, Uint8Array[]> {
  const t = (s: string) => new Uint8Array(Buffer.from(s, 'latin1'));
  return {
    'control-port': [
      t('PROTOCOLINFO 1\r\n'),
      t(`AUTHENTICATE ${hex(COOKIE)}\r\nGETINFO version status/bootstrap-phase\r\nQUIT\r\n`),
      t(`AUTHENTICATE "${PASSWORD}"\r\nSETEVENTS CIRC STREAM BW\r\nGETCONF SocksPort\r\nSIGNAL NEWNYM\r\n`),
      t(`AUTHENTICATE ${hex(COOKIE)}\nGETINFO circuit-status stream-status\nGETINFO net/listeners/socks traffic/read traffic/written\n`),
      t(`AUTHENTICATE ${hex(COOKIE)}\r\nGETINFO info/names events/names config/names\r\nSETEVENTS\r\nEXTENDCIRCUIT 0\r\n`),
      ...fc.sample(session, { seed: 54, numRuns: 60 }).filter((b) => {
        try {
          controlPortTarget.run(b);
          return true;
        } catch {
          return false;
        }
      }),
    ],
  };
}
