/**
 * Metrics of a running testnet (`allium testnet --metrics`): a known transfer
 * of N bytes through the SOCKS port moves the client's and the exit's stream
 * byte counters by exactly N and the exit's cell counter by at least N/498;
 * link handshakes and circuit builds land in their histograms; promtool
 * accepts every node's exposition; the client counts its directory fetches'
 * one-hop circuits and directory streams with the rest; and no label value of any node carries an
 * address, a port of the destination, or a key.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type AddressInfo } from 'node:net';
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { SocksClient } from 'socks';
import { parseIp } from '../../src/net/address.js';
import { parsePromText, valueOf, type Sample } from '../support/prom-text.js';
import { promtoolCheck, promtoolMissing } from '../support/promtool.js';
import { startTestnetProcess } from '../support/testnet-process.js';

const N = 1_000_000;
const RELAY_PAYLOAD = 498;

/** valueOf, or 0 for a labelled counter that has no sample yet (none until its first increment). */
function valueOrZero(samples: readonly Sample[], name: string, labels: Record<string, string> = {}): number {
  try {
    return valueOf(samples, name, labels);
  } catch {
    return 0;
  }
}

async function scrape(endpoint: string): Promise<{ text: string; samples: Sample[] }> {
  const res = await fetch(`http://${endpoint}/metrics`, { signal: AbortSignal.timeout(5_000) });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
  const text = await res.text();
  return { text, samples: parsePromText(text) };
}

it('counters follow a known transfer, promtool accepts them, and no label names an address or key', async (t) => {
  const payload = randomBytes(N);
  const sink = createServer((socket) => socket.end(payload));
  await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => sink.close(() => resolve())));
  const destPort = (sink.address() as AddressInfo).port;

  const net = await startTestnetProcess(t, { metrics: true });
  assert.equal(net.metrics.size, net.authorities.length + net.relays.length + 1, 'every node has a metrics port');
  const nodes = [...net.metrics];
  const before = new Map<string, Sample[]>();
  for (const [name, endpoint] of nodes) before.set(name, (await scrape(endpoint)).samples);

  const { socket } = await SocksClient.createConnection({
    proxy: { host: net.socksHost, port: net.socksPort, type: 5 },
    command: 'connect',
    destination: { host: '127.0.0.1', port: destPort },
    timeout: 20_000,
  });
  let received = 0;
  await new Promise<void>((resolve, reject) => {
    socket.on('data', (chunk: Buffer) => (received += chunk.length));
    socket.once('end', resolve);
    socket.once('error', reject);
    setTimeout(() => reject(new Error(`transfer not done in 30 s (${received} bytes)`)), 30_000).unref();
  });
  socket.destroy();
  assert.equal(received, N);
  // Let the END and the stream's close reach every node's counters.
  await new Promise((r) => setTimeout(r, 500));

  const after = new Map<string, { text: string; samples: Sample[] }>();
  for (const [name, endpoint] of nodes) after.set(name, await scrape(endpoint));
  const delta = (node: string, name: string, labels: Record<string, string> = {}) =>
    valueOf(after.get(node)!.samples, name, labels) - valueOrZero(before.get(node)!, name, labels);

  assert.equal(delta('client', 'allium_stream_bytes_total', { direction: 'in' }), N, 'client stream bytes in');
  const exits = net.relays.filter((r) => r.exit).map((r) => r.nickname);
  // Directory streams (a consensus or diff an exit serves as someone's directory guard) are counted apart,
  // so exactly one exit carried application bytes, and exactly N of them.
  const exitOut = exits.map((e) => delta(e, 'allium_stream_bytes_total', { direction: 'out' }));
  assert.deepEqual(exitOut.filter((v) => v !== 0), [N], `exit stream bytes out: ${exitOut.join(', ')}`);
  const exit = exits[exitOut.indexOf(N)]!;
  assert.ok(delta(exit, 'allium_cells_total', { direction: 'out' }) >= Math.ceil(N / RELAY_PAYLOAD));
  assert.ok(delta(exit, 'tor_relay_traffic_bytes', { direction: 'written' }) >= Math.ceil(N / RELAY_PAYLOAD) * 514);
  assert.equal(delta(exit, 'tor_relay_streams_total', { type: 'BEGIN' }), 1);
  assert.equal(delta('client', 'allium_streams_opened_total', { kind: 'client' }), 1);
  assert.equal(delta('client', 'allium_streams_closed_total', { kind: 'client', reason: 'DONE' }), 1);

  const client = after.get('client')!.samples;
  assert.ok(valueOf(client, 'allium_circuit_build_seconds_count') >= 1, 'circuit builds observed');
  assert.ok(valueOf(after.get(exit)!.samples, 'allium_link_handshake_seconds_count') >= 1, 'handshakes observed');
  const age = valueOf(client, 'allium_consensus_age_seconds');
  assert.ok(age >= 0 && age < 120, `consensus age ${age}`);
  // The client is up once its consensus allows a 3-hop circuit: one voted before the last relays
  // published lists only some of them until the client's next fetch (1 s voting rounds). Bounded wait.
  let listed = valueOf(client, 'allium_consensus_relays');
  for (const until = Date.now() + 20_000; listed !== net.relays.length && Date.now() < until; ) {
    await new Promise((r) => setTimeout(r, 250));
    listed = valueOf((await scrape(net.metrics.get('client')!)).samples, 'allium_consensus_relays');
  }
  assert.equal(listed, net.relays.length, 'the client\'s consensus lists every relay');
  // The client's consensus fetches through its directory guard count like its other circuits: their
  // one-hop circuits as built and destroyed (so open = built - destroyed), their bytes as directory
  // stream bytes. It fetches every voting round (1 s); bounded wait for the first.
  const dirStreams = (samples: Sample[]) => valueOrZero(samples, 'allium_streams_opened_total', { kind: 'dir' });
  let counted = (await scrape(net.metrics.get('client')!)).samples;
  for (const until = Date.now() + 20_000; dirStreams(counted) === 0 && Date.now() < until; ) {
    await new Promise((r) => setTimeout(r, 250));
    counted = (await scrape(net.metrics.get('client')!)).samples;
  }
  assert.ok(dirStreams(counted) > 0, 'the client fetched a consensus through its directory guard');
  assert.ok(valueOf(counted, 'allium_dir_stream_bytes_total', { direction: 'in' }) > 0, 'directory stream bytes counted');
  const built = valueOf(counted, 'allium_circuits_built_total');
  const destroyed = valueOf(counted, 'allium_circuits_destroyed_total');
  assert.equal(built - destroyed, valueOf(counted, 'allium_circuits'), `open circuits = built (${built}) - destroyed (${destroyed})`);
  assert.ok(valueOf(client, 'process_resident_memory_bytes') > 0);

  // No label value is or contains an address, the destination's port, a relay identity or a key.
  const identities = net.relays.map((r) => r.identity).concat(net.authorities.map((a) => a.identity));
  for (const [name, { samples }] of after) {
    for (const s of samples) {
      for (const [label, value] of Object.entries(s.labels)) {
        const where = `${name}: ${s.name}{${label}="${value}"}`;
        assert.equal(parseIp(value), null, `address in ${where}`);
        assert.doesNotMatch(value, /\d+\.\d+\.\d+\.\d+|::|\b127\b/, `address-like ${where}`);
        assert.ok(!value.includes(String(destPort)), `destination port in ${where}`);
        assert.doesNotMatch(value, /[0-9a-f]{32,}|[A-Za-z0-9+/]{40,}/, `key-like ${where}`);
        for (const id of identities) assert.ok(!value.includes(id.slice(0, 16)), `identity in ${where}`);
      }
    }
  }

  // A node restarted by `testnet ctl` keeps its metrics port, and its progress line says where.
  const restarted = net.relays[0]!.nickname;
  const answer = await net.ctl(`restart ${restarted}`);
  assert.ok(answer.ok, answer.lines.join('\n'));
  const endpoint = net.metrics.get(restarted)!;
  const upAgain = new RegExp(`${restarted} up again at [^\\n]*, metrics on http://${endpoint.replace(/[.[\]]/g, '\\$&')}/metrics`);
  assert.match(net.stderrTail(), upAgain);
  assert.ok(valueOf((await scrape(endpoint)).samples, 'allium_info', { role: 'relay' }) === 1);

  const missing = promtoolMissing();
  if (missing !== null) {
    t.diagnostic(`skipped the promtool check: ${missing}`);
    return;
  }
  for (const [name, { text }] of after) {
    const check = promtoolCheck(text);
    assert.equal(check.status, 0, `${name}: ${check.output}`);
  }
});
