/**
 * The node log (cli/log/): levels, text and JSON lines, a 0600 file, safe
 * logging that scrubs every address but the node's own, and changes of level
 * and safety at run time (SIGHUP).
 */
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger } from '../../cli/log/logger.js';
import { SCRUBBED, scrubAddresses } from '../../cli/log/scrub.js';

const tmp = mkdtempSync(join(tmpdir(), 'allium-log-test-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

describe('safe logging', () => {
  const own = new Set(['127.1.0.1', '2001:db8::7']);
  const cases: [string, string][] = [
    ['listening on 127.1.0.1:4000', 'listening on 127.1.0.1:4000'],
    ['connect ECONNREFUSED 10.0.0.5:80', `connect ECONNREFUSED ${SCRUBBED}`],
    ['client 192.0.2.9 sent junk', `client ${SCRUBBED} sent junk`],
    ['to [2001:db8::1]:443, ::1 and fe80::1', `to ${SCRUBBED}, ${SCRUBBED} and ${SCRUBBED}`],
    ['our [2001:db8::7]:9001 and 2001:DB8::7', 'our [2001:db8::7]:9001 and 2001:DB8::7'],
    ['example.com:443 failed', `${SCRUBBED} failed`],
    ['/etc/allium/relay.toml:2: relay.nickname = 5', '/etc/allium/relay.toml:2: relay.nickname = 5'],
    ['relay.toml:12: bad; at dist/cli/main.js:40', 'relay.toml:12: bad; at dist/cli/main.js:40'],
    ['at 14:02:33, version 1.2.3, Node 20.20.2, 2026-11-30T14:02:33.123Z', 'at 14:02:33, version 1.2.3, Node 20.20.2, 2026-11-30T14:02:33.123Z'],
  ];
  for (const [input, output] of cases) {
    it(JSON.stringify(input), () => assert.equal(scrubAddresses(input, own), output));
  }
});

describe('logger', () => {
  it('writes text lines at or above its level to a 0600 file, and follows setLevel / setSafe', () => {
    const file = join(tmp, 'text', 'relay.log');
    const log = createLogger({ level: 'notice', destination: 'file', file, format: 'text', safe: true, role: 'relay' });
    log.addPublic('127.1.0.1');
    log.info('not shown');
    log.notice('Bootstrapped 100% via 127.1.0.1:9001');
    log.warn('peer 198.51.100.4 misbehaved');
    log.setLevel('debug');
    log.debug('now shown');
    log.setSafe(false);
    log.err('peer 198.51.100.4 again');
    log.close();
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
    assert.equal(lines.length, 4, lines.join('\n'));
    const re = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \[(\w+)\] (.*)$/;
    assert.deepEqual(lines.map((l) => re.exec(l)?.slice(1, 3)), [
      ['notice', 'Bootstrapped 100% via 127.1.0.1:9001'],
      ['warn', `peer ${SCRUBBED} misbehaved`],
      ['debug', 'now shown'],
      ['err', 'peer 198.51.100.4 again'],
    ]);
  });

  it('writes one JSON object per line on request', () => {
    const file = join(tmp, 'json.log');
    const log = createLogger({ level: 'info', destination: 'file', file, format: 'json', safe: true, role: 'client' });
    log.info('New consensus');
    log.notice('stream to 203.0.113.8:443 ended');
    log.close();
    const objects = readFileSync(file, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(objects.length, 2);
    assert.deepEqual(objects.map((o) => [o['level'], o['role'], o['msg']]), [
      ['info', 'client', 'New consensus'],
      ['notice', 'client', `stream to ${SCRUBBED} ended`],
    ]);
    for (const o of objects) assert.equal(typeof o['time'], 'number');
  });

  it('setOutput (SIGHUP) moves to another file and format from the next line; a destination that cannot be opened keeps the old one', () => {
    const first = join(tmp, 'first.log');
    const second = join(tmp, 'second.log');
    const log = createLogger({ level: 'info', destination: 'file', file: first, format: 'text', safe: true, role: 'relay' });
    log.notice('before');
    log.setOutput({ destination: 'file', file: second, format: 'json' });
    log.notice('after');
    assert.throws(() => log.setOutput({ destination: 'file', file: join(tmp, 'first.log', 'not-a-dir', 'x.log'), format: 'text' }));
    log.notice('still after');
    log.close();
    assert.match(readFileSync(first, 'utf8'), /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \[notice\] before\n$/);
    const objects = readFileSync(second, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(objects.map((o) => o['msg']), ['after', 'still after']);
    assert.equal(statSync(second).mode & 0o777, 0o600);
  });
});
