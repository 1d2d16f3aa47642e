/**
 * A real relay's published exit policy: started without `exitPolicy`, a
 * non-exit and an exit each upload a descriptor (over HTTP, to a capturing
 * server on loopback) whose policy is the default from
 * src/netdoc/default-policies.ts and refuses every private address.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRelay } from '../../relay/relay.js';
import { parseDescriptor } from '../../src/netdoc/descriptor.js';
import { exitPolicyAllows, formatExitPolicy } from '../../src/netdoc/exit-policy.js';
import { DEFAULT_EXIT_POLICY_LINES, NON_EXIT_POLICY_LINES } from '../../src/netdoc/default-policies.js';
import { crypto } from '../../src/crypto/crypto.js';
import { PRIVATE_SAMPLES } from '../net/address-table.js';

const WAIT_MS = 10_000;

/** An HTTP server on 127.0.0.1 that answers 200 to a descriptor upload and hands over its text. */
async function captureDescriptor(t: { after(fn: () => unknown): void }): Promise<{ url: string; next: Promise<string> }> {
  let deliver: (text: string) => void = () => {};
  const next = new Promise<string>((resolve, reject) => {
    deliver = resolve;
    setTimeout(() => reject(new Error(`no descriptor within ${WAIT_MS} ms`)), WAIT_MS).unref();
  });
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (s: string) => (body += s));
    req.on('end', () => {
      res.end('ok');
      if (req.method === 'POST' && req.url === '/allium/v1/descriptor') deliver(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const address = server.address();
  assert.ok(address !== null && typeof address !== 'string');
  return { url: `http://127.0.0.1:${address.port}`, next };
}

for (const exit of [false, true]) {
  test(`a ${exit ? 'default exit' : 'non-exit'} relay publishes a policy that refuses private addresses`, async (t) => {
    const dataDir = mkdtempSync(join(tmpdir(), 'allium-policy-test-'));
    t.after(() => rmSync(dataDir, { recursive: true, force: true }));
    const authority = await captureDescriptor(t);
    const relay = await startRelay({
      nickname: exit ? 'exit1' : 'middle1',
      dataDir,
      address: '127.0.0.1',
      port: 0,
      authorities: [{ url: authority.url, identity: crypto.randomBytes(32) }],
      exit,
    });
    t.after(() => relay.close());
    const { descriptor } = parseDescriptor(await authority.next);
    assert.deepEqual(formatExitPolicy(descriptor.exitPolicy), exit ? DEFAULT_EXIT_POLICY_LINES : NON_EXIT_POLICY_LINES);
    for (const ip of PRIVATE_SAMPLES) assert.equal(exitPolicyAllows(descriptor.exitPolicy, ip, 80), false, ip);
    assert.equal(exitPolicyAllows(descriptor.exitPolicy, '8.8.8.8', 443), exit);
  });
}
