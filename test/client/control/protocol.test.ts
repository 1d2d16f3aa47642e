import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ControlCommandParser,
  MAX_LINE_BYTES,
  dataBlock,
  encodeReply,
  printable,
  quote,
  readQuoted,
  splitArguments,
  type ParseResult,
} from '../../../client/control/protocol.js';

function all(parser: ControlCommandParser): ParseResult[] {
  const out: ParseResult[] = [];
  for (;;) {
    const r = parser.next();
    out.push(r);
    if (r.kind !== 'command') return out;
  }
}

test('one-line commands with CRLF or LF, keyword and arguments split at the first space', () => {
  const p = new ControlCommandParser();
  p.push(Buffer.from('GETINFO version  circuit-status\r\nQUIT\nsetevents\r\n'));
  assert.deepEqual(all(p), [
    { kind: 'command', command: { keyword: 'GETINFO', args: 'version  circuit-status', data: null } },
    { kind: 'command', command: { keyword: 'QUIT', args: '', data: null } },
    { kind: 'command', command: { keyword: 'setevents', args: '', data: null } },
    { kind: 'more' },
  ]);
});

test('byte by byte gives the same commands', () => {
  const text = 'AUTHENTICATE "a b"\r\n+POSTDESCRIPTOR purpose=x\r\nline one\r\n..dotted\r\n.\r\nGETINFO x\r\n';
  const whole = new ControlCommandParser();
  whole.push(Buffer.from(text));
  const expected = all(whole);
  const piecewise = new ControlCommandParser();
  const got: ParseResult[] = [];
  for (const byte of Buffer.from(text)) {
    piecewise.push(Uint8Array.of(byte));
    for (let r = piecewise.next(); r.kind === 'command'; r = piecewise.next()) got.push(r);
  }
  assert.deepEqual(got, expected.filter((r) => r.kind === 'command'));
  assert.deepEqual(expected[1], { kind: 'command', command: { keyword: 'POSTDESCRIPTOR', args: 'purpose=x', data: 'line one\n.dotted' } });
});

test('a line or a multi-line command past the bounds is an error, and the parser stays failed', () => {
  const p = new ControlCommandParser();
  p.push(Buffer.alloc(MAX_LINE_BYTES + 1, 0x41));
  assert.deepEqual(p.next(), { kind: 'error', message: 'Line too long.' });
  p.push(Buffer.from('QUIT\r\n'));
  assert.equal(p.next().kind, 'error');
  const m = new ControlCommandParser();
  m.push(Buffer.from('+X\r\n'));
  const line = `${'d'.repeat(60_000)}\r\n`;
  let r: ParseResult = { kind: 'more' };
  for (let i = 0; i < 20 && r.kind === 'more'; i++) {
    m.push(Buffer.from(line));
    r = m.next();
  }
  assert.deepEqual(r, { kind: 'error', message: 'Command too long.' });
});

test('replies: mid, data and end lines; dot-escaping; quoting', () => {
  assert.equal(
    encodeReply([
      { code: 250, text: 'version=1' },
      { code: 250, text: 'circuit-status=', data: '1 BUILT\n.hidden\n' },
      { code: 250, text: 'OK' },
    ]),
    '250-version=1\r\n250+circuit-status=\r\n1 BUILT\r\n..hidden\r\n.\r\n250 OK\r\n',
  );
  assert.equal(dataBlock(''), '.\r\n');
  assert.equal(quote('a"b\\c'), '"a\\"b\\\\c"');
  assert.deepEqual(readQuoted('"a\\"b" rest', 0), { value: 'a"b', end: 6 });
  assert.equal(readQuoted('"open', 0), null);
  assert.deepEqual(splitArguments('0 purpose=general  SUMMARY="a b"'), ['0', 'purpose=general', 'SUMMARY=a b']);
  assert.equal(splitArguments('"unterminated'), null);
  assert.equal(printable('ok\u0000\u00ff"'), 'ok???');
});
