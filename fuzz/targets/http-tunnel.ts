/**
 * Fuzz target for the client's HTTP CONNECT tunnel port
 * (client/http-tunnel/request.ts, docs/protocol.md §12.2): the request
 * parser fed a client's header block, whole and in varied chunkings. The
 * outcome must not depend on chunking; a refusal carries one of the statuses
 * the parser documents; an accepted request, written out again as a
 * canonical CONNECT request, parses to the same request.
 */
import fc from 'fast-check';
import { ConnectRequestParser, MAX_HEADER_BYTES, type ParseStep } from '../../client/http-tunnel/request.js';
import { ProtocolError } from '../../src/errors.js';
import { concatAll } from '../../test/fuzz/fuzz-util.js';
import { loadCorpus } from '../corpus.js';
import { check, law, sameValue, type FuzzTarget } from '../engine.js';
import { bytes, hostname, ipv4, ipv6, port, printable } from './arbitraries.js';
import { chunksOf } from './link.js';

const STATUSES = new Set([400, 405, 414, 431, 505]);

/** Feed `chunks` until the parser answers; chunks not fed by then are tunnel data too, so they join `earlyData`. */
function drive(chunks: Uint8Array[]): ParseStep {
  const parser = new ConnectRequestParser();
  let step: ParseStep = { kind: 'more' };
  let i = 0;
  while (i < chunks.length) {
    step = parser.feed(chunks[i++]!);
    if (step.kind !== 'more') break;
  }
  if (step.kind === 'request' && i < chunks.length) step = { ...step, earlyData: concatAll([step.earlyData, ...chunks.slice(i)]) };
  return step;
}

const text = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'latin1'));

const target = fc.oneof(
  { weight: 8, arbitrary: fc.tuple(fc.oneof(hostname, ipv4, ipv6.map((a) => `[${a}]`)), port).map(([h, p]) => `${h}:${p}`) },
  { weight: 1, arbitrary: fc.constantFrom('::1:80', '[1.2.3.4]:80', 'example.com', 'example.com:0', 'example.com:65536', 'example.com:080', ':80', '[::1]:', 'a b:1') },
  { weight: 1, arbitrary: printable(40) },
);
const field = fc.oneof(
  fc.tuple(fc.constantFrom('Host', 'Proxy-Authorization', 'proxy-authorization', 'User-Agent', 'Content-Length', 'Transfer-Encoding', 'X'), fc.oneof(printable(60), fc.constantFrom('0', '5', 'chunked', 'Basic dXNlcjpwYXNz'))).map(([n, v]) => `${n}: ${v}`),
  fc.constantFrom(' folded', 'no colon', ': empty name', 'bad name: x', 'X:\x01', 'Proxy-Authorization: a'),
  printable(80),
);
const eol = fc.constantFrom('\r\n', '\n');

/** Request line, header fields, the empty line, maybe early tunnel data; sometimes a leading empty line, another method or version. */
const request = fc
  .record({
    leading: fc.boolean(),
    method: fc.oneof({ weight: 8, arbitrary: fc.constant('CONNECT') }, { weight: 1, arbitrary: fc.constantFrom('GET', 'connect', 'C O', '') }),
    target,
    version: fc.oneof({ weight: 8, arbitrary: fc.constantFrom('HTTP/1.1', 'HTTP/1.0') }, { weight: 1, arbitrary: fc.constantFrom('HTTP/2.0', 'HTTP/1', 'http/1.1', 'HTTP/1.1 ') }),
    fields: fc.array(field, { maxLength: 6 }),
    eol,
    early: fc.option(bytes(40)),
  })
  .map((r) => {
    const head = `${r.leading ? r.eol : ''}${r.method} ${r.target} ${r.version}${r.eol}${r.fields.map((f) => f + r.eol).join('')}${r.eol}`;
    return r.early === null ? text(head) : concatAll([text(head), r.early]);
  });

export const httpTunnelTarget: FuzzTarget<Uint8Array> = {
  name: 'http-tunnel',
  description: 'ConnectRequestParser fed a CONNECT header block whole and in varied chunkings: same request or status; an accepted request re-written canonically parses the same',
  kind: 'bytes',
  modules: ['client/http-tunnel/request.ts', 'src/net/hostname.ts'],
  maxRandomLength: MAX_HEADER_BYTES + 200,
  arbitrary: () => request,
  corpus: () => loadCorpus('http-tunnel', 'bytes'),
  run(input) {
    const whole = drive([input]);
    const chunked = drive(chunksOf(input));
    sameValue('tunnel request under chunking', chunked, whole);
    if (whole.kind === 'error') {
      check(STATUSES.has(whole.error.status), () => `undocumented status ${whole.error.status}`);
      throw new ProtocolError(`http tunnel: ${whole.error.status} ${whole.error.message}`);
    }
    if (whole.kind === 'more') {
      check(input.length <= MAX_HEADER_BYTES, () => `${input.length} bytes buffered without an answer`);
      throw new ProtocolError('http tunnel: incomplete header block');
    }
    const r = whole.request;
    law('tunnel request round trip', () => {
      const hostText = r.host.includes(':') ? `[${r.host}]` : r.host;
      const auth = r.proxyAuthorization === null ? '' : `Proxy-Authorization: ${r.proxyAuthorization}\r\n`;
      const again = drive([text(`CONNECT ${hostText}:${r.port} HTTP/${r.httpVersion}\r\n${auth}\r\n`)]);
      check(again.kind === 'request', () => `a canonical re-write is not accepted: ${JSON.stringify(again)}`);
      sameValue('tunnel request', again.kind === 'request' ? again.request : null, r);
    });
  },
};

export function makeHttpTunnelCorpus(): Record<string, Uint8Array[]> {
  return {
    'http-tunnel': [
      text('CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n'),
      text('CONNECT 127.0.0.1:80 HTTP/1.0\r\n\r\n'),
      text('CONNECT [::1]:8080 HTTP/1.1\r\nProxy-Authorization: Basic aXNvOng=\r\nUser-Agent: curl/8\r\n\r\n'),
      text('\r\nCONNECT a.example:22 HTTP/1.1\nHost: a.example\n\nSSH-2.0-early'),
      text('CONNECT example.org:443 HTTP/1.1\r\nContent-Length: 0\r\n\r\n\x16\x03\x01'),
      ...fc.sample(request, { seed: 53, numRuns: 40 }).filter((b) => drive([b]).kind === 'request'),
    ],
  };
}
