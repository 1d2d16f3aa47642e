/**
 * The metrics port in one process: the allow list (loopback by default, 403
 * outside it, replaceable on SIGHUP), read-only methods, a non-loopback
 * listener refused without an allow list, and the exposition of a fresh node
 * accepted by promtool.
 */
import { request } from 'node:http';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { allowList, allowed, startMetricsServer } from '../../cli/metrics/server.js';
import { createNodeMetrics } from '../../cli/metrics/metrics.js';
import { observe } from '../../cli/metrics/observe.js';
import { mergeConfig } from '../../cli/config/effective.js';
import { ConfigError } from '../../cli/config/load.js';
import { parsePrefix } from '../../src/net/prefix.js';
import { parsePromText } from '../support/prom-text.js';
import { promtoolCheck, promtoolMissing } from '../support/promtool.js';

function get(port: number, path: string, opts: { localAddress?: string; method?: string } = {}): Promise<{ status: number; body: string; type: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: opts.method ?? 'GET', ...(opts.localAddress !== undefined ? { localAddress: opts.localAddress } : {}), timeout: 5_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (s: string) => (body += s));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, type: String(res.headers['content-type']) }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

describe('metrics server', () => {
  it('answers loopback by default, and only the allow list once set', async (t) => {
    const server = await startMetricsServer({
      address: '127.0.0.1',
      port: 0,
      allow: allowList(undefined),
      routes: (path) => (path === '/metrics' ? { contentType: 'text/plain', body: 'x 1\n' } : undefined),
    });
    t.after(() => server.close());
    assert.equal((await get(server.port, '/metrics')).status, 200);
    assert.equal((await get(server.port, '/metrics', { localAddress: '127.0.0.2' })).status, 200, 'all of 127.0.0.0/8 is loopback');
    assert.equal((await get(server.port, '/nothing')).status, 404);
    assert.equal((await get(server.port, '/metrics', { method: 'POST' })).status, 405);

    server.setAllow(allowList(['127.0.0.2/32']));
    const refused = await get(server.port, '/metrics');
    assert.equal(refused.status, 403);
    assert.doesNotMatch(refused.body, /x 1/);
    assert.equal((await get(server.port, '/metrics', { localAddress: '127.0.0.2' })).status, 200);
  });

  it('matches IPv4-mapped peers against IPv4 prefixes', () => {
    const allow = [parsePrefix('192.0.2.0/24')!];
    assert.equal(allowed(allow, '::ffff:192.0.2.7'), true);
    assert.equal(allowed(allow, '192.0.2.7'), true);
    assert.equal(allowed(allow, '192.0.3.7'), false);
    assert.equal(allowed(allow, undefined), false);
    assert.equal(allowed(allow, 'not an address'), false);
  });

  it('without a metrics port nothing is made, served or subscribed', async () => {
    const base = new Map<string, unknown>([['storage.data_dir', '/d'], ['network.authorities', [`http://127.0.0.1:1#${'ab'.repeat(32)}`]], ['relay.nickname', 'r']]);
    let extended = false;
    const observed = await observe(mergeConfig('relay', 'relay.toml', new Map<string, unknown>(), base), () => {
      extended = true;
    });
    assert.equal(observed.enabled, false);
    assert.equal(observed.metrics, null);
    assert.equal(extended, false);
    assert.equal(await observed.listen(), undefined);
    await observed.close();
  });

  it('a metrics port off loopback needs an allow list', async () => {
    const base = new Map<string, unknown>([['storage.data_dir', '/d'], ['network.authorities', [`http://127.0.0.1:1#${'ab'.repeat(32)}`]], ['relay.nickname', 'r']]);
    const open = mergeConfig('relay', 'relay.toml', new Map<string, unknown>([['metrics.port', 9035], ['metrics.address', '0.0.0.0']]), base);
    await assert.rejects(observe(open), (e: ConfigError) => e instanceof ConfigError && /metrics\.allow: required when metrics\.address \(0\.0\.0\.0\) is not a loopback address/.test(e.message));
    const allowedConfig = mergeConfig('relay', 'relay.toml', new Map<string, unknown>([['metrics.port', 9035], ['metrics.address', '0.0.0.0'], ['metrics.allow', ['192.0.2.0/24']]]), base);
    const observed = await observe(allowedConfig);
    assert.notEqual(observed.metrics, null);
    await observed.close();
  });

  it('a fresh node\'s exposition parses and promtool accepts it', async (t) => {
    const metrics = createNodeMetrics({
      role: 'relay',
      version: '0.1.0',
      linkStats: () => ({ open: 2, opened: 3, closed: 1, cellsIn: 10, cellsOut: 12, queuedBytes: 514 }),
      circuitStats: () => ({ open: 1, built: 4, destroyed: 3, streams: 0, streamsOpened: 2, streamBytesIn: 100, streamBytesOut: 2000, dirBytesIn: 0, dirBytesOut: 0 }),
    });
    t.after(() => metrics.close());
    const text = await metrics.text();
    const samples = parsePromText(text);
    const names = new Set(samples.map((s) => s.name));
    for (const name of ['allium_info', 'allium_links', 'allium_cells_total', 'tor_relay_traffic_bytes', 'allium_stream_bytes_total', 'allium_link_queued_bytes', 'process_cpu_seconds_total', 'process_resident_memory_bytes']) {
      assert.ok(names.has(name), `missing ${name}`);
    }
    assert.equal(samples.find((s) => s.name === 'tor_relay_traffic_bytes' && s.labels['direction'] === 'written')?.value, 12 * 514);
    const missing = promtoolMissing();
    if (missing !== null) {
      t.skip(missing);
      return;
    }
    const check = promtoolCheck(text);
    assert.equal(check.status, 0, check.output);
  });
});
