/**
 * The dashboards in headless Chromium (Debian's chromium, driven by
 * playwright-core; installed by .ci/run, skipped with the reason elsewhere):
 * after a download through the testnet, the network page lists every relay
 * and draws a non-empty traffic chart, a relay's own page shows its flags in
 * the consensus and a non-empty bandwidth chart, neither page logs a console
 * error, and neither shows the destination. Screenshots go to a temporary
 * directory, or to $ALLIUM_SCREENSHOT_DIR (docs/ keeps one of each).
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, it } from 'node:test';
import assert from 'node:assert/strict';
import { chromium, type Page } from 'playwright-core';
import { SocksClient } from 'socks';
import { startTestnetProcess } from '../support/testnet-process.js';

const CHROMIUM = '/usr/bin/chromium';
const N = 4_000_000;
const SINK_HOST = '127.200.0.1';
const shots = process.env['ALLIUM_SCREENSHOT_DIR'] ?? mkdtempSync(join(tmpdir(), 'allium-dashboard-'));
if (process.env['ALLIUM_SCREENSHOT_DIR'] === undefined) after(() => rmSync(shots, { recursive: true, force: true }));

/** Console errors and page errors of `page`, collected from now on. */
function errorsOf(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(e.message));
  return errors;
}

it('the network and relay dashboards show the relays and traffic after a download, without console errors or destinations', { timeout: 120_000 }, async (t) => {
  if (!existsSync(CHROMIUM)) {
    t.skip(`${CHROMIUM} not installed (Debian package chromium; .ci/run installs it)`);
    return;
  }
  const payload = Buffer.alloc(N, 0x61);
  const sink = createServer((socket) => socket.end(payload));
  await new Promise<void>((resolve) => sink.listen(0, SINK_HOST, resolve));
  t.after(() => new Promise<void>((resolve) => sink.close(() => resolve())));
  const sinkPort = (sink.address() as AddressInfo).port;

  const net = await startTestnetProcess(t, { dashboard: true, relays: 4, exits: 2 });
  assert.ok(net.dashboardUrl !== undefined, net.stderrTail());

  const { socket } = await SocksClient.createConnection({
    proxy: { host: net.socksHost, port: net.socksPort, type: 5 },
    command: 'connect',
    destination: { host: SINK_HOST, port: sinkPort },
    timeout: 20_000,
  });
  let received = 0;
  await new Promise<void>((resolve, reject) => {
    socket.on('data', (c: Buffer) => (received += c.length));
    socket.once('end', resolve);
    socket.once('error', reject);
    setTimeout(() => reject(new Error('download not done in 30 s')), 30_000).unref();
  });
  socket.destroy();
  assert.equal(received, N);

  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-dev-shm-usage', '--no-first-run'],
    timeout: 30_000,
  });
  t.after(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  const errors = errorsOf(page);

  // The network page.
  await page.goto(net.dashboardUrl, { timeout: 15_000 });
  await page.waitForFunction(
    (relays: number) => {
      const v = (globalThis as unknown as { alliumNetwork?: { nodes: { role: string; status: { bandwidth: number[][] } | null }[] } }).alliumNetwork;
      if (v === undefined) return false;
      const up = v.nodes.filter((n) => n.role === 'relay' && n.status !== null);
      return up.length === relays && up.some((n) => n.status!.bandwidth.some((p) => p[2]! > 0));
    },
    net.relays.length,
    { timeout: 20_000 },
  );
  const rows = await page.locator('#nodes tbody tr').allInnerTexts();
  for (const relay of net.relays) assert.ok(rows.some((r) => r.startsWith(relay.nickname)), `${relay.nickname} not listed:\n${rows.join('\n')}`);
  assert.ok((await page.locator('#chart canvas').count()) >= 1, 'the chart is drawn');
  // Which relays the client's circuits use: each open circuit as guard → middle → exit, all testnet relays.
  const paths = (await page.locator('#circuits li').allInnerTexts()).map((line) => line.split(' → '));
  const nicknames = new Set(net.relays.map((r) => r.nickname));
  assert.ok(paths.length >= 1 && paths.every((p) => p.length === 3 && p.every((n) => nicknames.has(n))), `client circuits:\n${paths.map((p) => p.join(' → ')).join('\n')}`);
  await page.screenshot({ path: join(shots, 'dashboard-testnet.png'), fullPage: true });
  const networkText = await page.content();
  assert.ok(!networkText.includes(SINK_HOST) && !networkText.includes(`:${sinkPort}`), 'the network page shows no destination');

  // The busiest exit's own page.
  const view = await page.evaluate(() => (globalThis as unknown as { alliumNetwork: { nodes: { nickname: string; metrics?: string; exit?: boolean; status: { bandwidth: number[][] } | null }[] } }).alliumNetwork);
  const busiest = view.nodes
    .filter((n) => n.exit === true && n.status !== null)
    .sort((a, b) => Math.max(...b.status!.bandwidth.map((p) => p[2]!)) - Math.max(...a.status!.bandwidth.map((p) => p[2]!)))[0]!;
  await page.goto(`http://${busiest.metrics}/`, { timeout: 15_000 });
  await page
    .waitForFunction(() => {
      const s = (globalThis as unknown as { alliumStatus?: { consensus: { flags: string[] | null } | null; bandwidth: number[][] } }).alliumStatus;
      return s !== undefined && s.consensus?.flags?.includes('Running') === true && s.bandwidth.some((p) => p[2]! > 0);
    }, undefined, { timeout: 30_000 })
    .catch(async (error: Error) => {
      const status = await page.evaluate(() => JSON.stringify((globalThis as unknown as { alliumStatus?: unknown }).alliumStatus ?? null));
      throw new Error(`${error.message}\n${busiest.nickname} status: ${status.slice(0, 3000)}`);
    });
  assert.match(await page.locator('#flags').innerText(), /Exit.*Running/);
  assert.match(await page.locator('#nickname').innerText(), new RegExp(busiest.nickname));
  assert.ok((await page.locator('#chart canvas').count()) >= 1);
  assert.ok((await page.locator('#notices li').count()) >= 2, 'recent notices listed');
  await page.screenshot({ path: join(shots, 'dashboard-relay.png'), fullPage: true });
  const relayText = await page.content();
  assert.ok(!relayText.includes(SINK_HOST) && !relayText.includes(`:${sinkPort}`), 'the relay page shows no destination');

  assert.deepEqual(errors, [], 'console errors');
});
