/**
 * The HTTP tunnel's request parser: well-formed CONNECTs whole, byte by byte
 * and with early data; truncated, oversized and malformed requests get the
 * right status; random input never throws.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConnectRequestParser, MAX_HEADER_BYTES, MAX_REQUEST_LINE_BYTES, parseAuthority, type ParseStep } from '../../../client/http-tunnel/request.js';
import { Rng } from '../../fuzz/fuzz-util.js';

function parse(text: string | Uint8Array): ParseStep {
  return new ConnectRequestParser().feed(typeof text === 'string' ? Buffer.from(text, 'latin1') : text);
}

function statusOf(step: ParseStep): number | 'more' | 'request' {
  return step.kind === 'error' ? step.error.status : step.kind;
}

test('a CONNECT request, whole and byte by byte, with Proxy-Authorization and early data', () => {
  const text = 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nProxy-Authorization:  Basic dTpw \r\nUser-Agent: x\r\n\r\nEARLY';
  const whole = parse(text);
  assert.deepEqual(whole, {
    kind: 'request',
    request: { host: 'example.com', port: 443, httpVersion: '1.1', proxyAuthorization: 'Basic dTpw' },
    earlyData: new Uint8Array(Buffer.from('EARLY')),
  });
  const p = new ConnectRequestParser();
  const bytes = Buffer.from(text.slice(0, -5));
  let last: ParseStep = { kind: 'more' };
  for (let i = 0; i < bytes.length; i++) {
    last = p.feed(bytes.subarray(i, i + 1));
    if (i < bytes.length - 1) assert.equal(last.kind, 'more', `byte ${i}`);
  }
  assert.equal(last.kind, 'request');
  assert.throws(() => p.feed(Buffer.from('x')));
});

test('LF line ends, one leading empty line, HTTP/1.0, IPv4 and bracketed IPv6 targets', () => {
  const a = parse('\nCONNECT 10.0.0.1:80 HTTP/1.0\n\n');
  assert.equal(a.kind === 'request' && a.request.host, '10.0.0.1');
  assert.equal(a.kind === 'request' && a.request.httpVersion, '1.0');
  const b = parse('CONNECT [2001:DB8::1]:8443 HTTP/1.1\r\n\r\n');
  assert.deepEqual(b.kind === 'request' && b.request, { host: '2001:db8::1', port: 8443, httpVersion: '1.1', proxyAuthorization: null });
  assert.deepEqual(parseAuthority('a-b_c.example:1'), { host: 'a-b_c.example', port: 1 });
  // Hostnames as src/net/hostname.ts has them: lower case, a trailing dot kept.
  assert.deepEqual(parseAuthority('WWW.Example.COM.:443'), { host: 'www.example.com.', port: 443 });
  for (const bad of ['example.com', 'example.com:0', 'example.com:65536', ':80', '[::1:80', '::1:80', 'a b:80', 'ex/ample:80', '[not]:80', 'x:+80']) {
    assert.equal(parseAuthority(bad), null, bad);
  }
  // Not a hostname any exit could look up (the SOCKS port refuses the same names): no stream is opened.
  for (const bad of ['*:80', 'a*b.example:443', '-a.example:80', 'a..example:80', '127.1:80', '0x7f.0.0.1:80', '[1.2.3.4]:80', 'b\u00fccher.example:80', `${'a'.repeat(64)}.example:80`]) {
    assert.equal(parseAuthority(bad), null, bad);
  }
});

test('truncated requests ask for more; malformed ones get 400, 405 or 505', () => {
  for (const t of ['', 'CONN', 'CONNECT a:1 HTTP/1.1', 'CONNECT a:1 HTTP/1.1\r\n', 'CONNECT a:1 HTTP/1.1\r\nHost: a\r\n']) assert.equal(statusOf(parse(t)), 'more', JSON.stringify(t));
  const cases: Array<[string, number]> = [
    ['GET http://a/ HTTP/1.1\r\n\r\n', 405],
    ['connect a:1 HTTP/1.1\r\n\r\n', 405],
    ['CONNECT a:1 HTTP/2.0\r\n\r\n', 505],
    ['CONNECT a:1\r\n\r\n', 400],
    ['CONNECT a:1 HTTP/1.1 extra\r\n\r\n', 400],
    ['CONNECT  a:1 HTTP/1.1\r\n\r\n', 400],
    ['CONNECT a HTTP/1.1\r\n\r\n', 400],
    ['CONNECT a:1 FTP/1.1\r\n\r\n', 400],
    ['CONNECT a:1 HTTP/1.1\r\n folded: x\r\n\r\n', 400],
    ['CONNECT a:1 HTTP/1.1\r\nno colon\r\n\r\n', 400],
    ['CONNECT a:1 HTTP/1.1\r\n: empty name\r\n\r\n', 400],
    ['CONNECT a:1 HTTP/1.1\r\nBad Name: x\r\n\r\n', 400],
    ['CONNECT a:1 HTTP/1.1\r\nX: a\u0001b\r\n\r\n', 400],
    ['CONNECT a:1 HTTP/1.1\r\nX: a\rb\r\n\r\n', 400],
    ['CONNECT a:1 HTTP/1.1\r\nX: a\u0000b\r\n\r\n', 400],
    ['CONNECT a:1 HTTP/1.1\r\nProxy-Authorization: a\r\nProxy-Authorization: b\r\n\r\n', 400],
    ['CONNECT a:1 HTTP/1.1\r\nContent-Length: 5\r\n\r\n', 400],
    ['CONNECT a:1 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n', 400],
    ['\r\n\r\nCONNECT a:1 HTTP/1.1\r\n\r\n', 400],
  ];
  for (const [text, status] of cases) assert.equal(statusOf(parse(text)), status, JSON.stringify(text));
  assert.equal(statusOf(parse('CONNECT a:1 HTTP/1.1\r\nContent-Length: 0\r\n\r\n')), 'request');
});

test('oversized: a long request line is 414, a large header block or too many fields 431, as soon as the bound is passed', () => {
  assert.equal(statusOf(parse(`CONNECT ${'a'.repeat(MAX_REQUEST_LINE_BYTES)}:1 HTTP/1.1\r\n\r\n`)), 414);
  // No line end yet, already too long: no need to wait for more.
  assert.equal(statusOf(parse(`CONNECT ${'a'.repeat(MAX_REQUEST_LINE_BYTES + 10)}`)), 414);
  assert.equal(statusOf(parse(`CONNECT a:1 HTTP/1.1\r\nX: ${'v'.repeat(MAX_HEADER_BYTES)}`)), 431);
  assert.equal(statusOf(parse(`CONNECT a:1 HTTP/1.1\r\n${'X-A: b\r\n'.repeat(65)}\r\n`)), 431);
  assert.equal(statusOf(parse(`CONNECT a:1 HTTP/1.1\r\n${'X-Padding: bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\r\n'.repeat(60)}\r\n`)), 431);
});

test('random and mutated input: a step every time, never a throw; chunking does not change the outcome', () => {
  const rng = new Rng(0x4771);
  const good = Buffer.from('CONNECT host.example:443 HTTP/1.1\r\nHost: host.example\r\nProxy-Authorization: Basic eA==\r\n\r\n');
  for (let i = 0; i < 3000; i++) {
    let input: Uint8Array;
    if (rng.bool(0.3)) input = rng.bytes(rng.length(600));
    else {
      input = Uint8Array.from(good);
      for (let k = rng.range(1, 4); k > 0; k--) input[rng.int(input.length)] = rng.int(256);
    }
    const whole = parse(input);
    const p = new ConnectRequestParser();
    let chunked: ParseStep = { kind: 'more' };
    for (let at = 0; at < input.length && chunked.kind === 'more'; ) {
      const n = rng.range(1, 40);
      chunked = p.feed(input.subarray(at, at + n));
      at += n;
    }
    if (whole.kind === 'request' && chunked.kind === 'request') assert.deepEqual(chunked.request, whole.request);
    else assert.equal(statusOf(chunked), statusOf(whole), Buffer.from(input).toString('latin1'));
  }
});
