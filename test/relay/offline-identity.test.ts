/**
 * A relay's identity kept offline (docs/protocol.md §8.2.3), through real
 * processes, sockets and crypto: a relay whose data directory holds only its
 * signing key and certificate (made by `allium keys create`, re-certified by
 * `allium keys sign` from the identity key kept elsewhere) joins a testnet,
 * is in the consensus and carries a circuit whose links it authenticates with
 * the signing key both ways; it warns that its certificate expires soon, and
 * takes a certificate signed again while it runs (republishing it). The
 * testnet's authority refuses, with a reason, descriptors whose signing-key
 * certificate has expired, names another identity, or certifies another
 * signing key than the one that signed.
 */
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { after, it } from 'node:test';
import assert from 'node:assert/strict';
import { b64 } from '../../src/netdoc/text.js';
import { equalBytes, fromHex, hex, utf8 } from '../../src/bytes.js';
import { crypto } from '../../src/crypto/crypto.js';
import { LinkManager } from '../../src/link/link-manager.js';
import { TcpTransport } from '../../src/link/transport.js';
import { signLinkCertificate } from '../../src/link/link-handshake.js';
import { parseConsensus, type ConsensusRelay } from '../../src/netdoc/consensus.js';
import { encodeDescriptor, type RelayDescriptor } from '../../src/netdoc/descriptor.js';
import { parseExitPolicy } from '../../src/netdoc/exit-policy.js';
import { makeSigningKeyCert, type SigningKeySigner } from '../../src/netdoc/signing-key-cert.js';
import { OriginCircuit } from '../../client/origin-circuit.js';
import { DIR_SELF_DESCRIPTOR_PATH } from '../../relay/dir/dir-server.js';
import { newRelaySigner } from '../../relay/keys.js';
import { startRoleProcess } from '../support/role-process.js';
import { CLI_MAIN, startTestnetProcess } from '../support/testnet-process.js';

const DAY = 86_400_000;
const tmp = mkdtempSync(join(tmpdir(), 'allium-offline-id-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const keysCli = (...args: string[]) => spawnSync(process.execPath, [CLI_MAIN, 'keys', ...args], { encoding: 'utf8', timeout: 15_000 });

async function poll<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function within<T>(p: Promise<T>, what: string, ms = 10_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)));
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function readAll(stream: Duplex): Promise<string> {
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  await within(once(stream, 'end'), 'end of directory stream');
  return Buffer.concat(chunks).toString('utf8');
}

function relayToml(authorities: readonly string[], dataDir: string): string {
  return `[storage]
data_dir = ${JSON.stringify(dataDir)}

[network]
authorities = [${authorities.map((a) => JSON.stringify(a)).join(', ')}]

[relay]
nickname = "offline1"
address = "127.62.0.1"
or_port = 0
publish_interval = "1 minute"
# Only sets how often the relay looks at its signing key file (an eighth of it, at most a minute): offline, it renews nothing itself.
signing_key_lifetime = "10 s"
`;
}

/** A descriptor for `identitySeed`'s relay at the testnet's clock, not yet signed. */
function descriptorFor(identity: Uint8Array, linkCert: Uint8Array, linkKey: Uint8Array, nickname: string): RelayDescriptor {
  return {
    nickname,
    identity,
    linkKey,
    linkCert,
    ntorOnionKey: crypto.x25519PublicKey(crypto.randomBytes(32)),
    address: '127.63.0.1',
    orPort: 9999,
    bandwidth: 1000,
    platform: 'test',
    published: Math.floor(Date.now() / 1000) * 1000,
    exitPolicy: parseExitPolicy(['reject *:*']),
  };
}

/** Replaces the signature line of `text` with one by `signingSeed` over its body. */
function resign(text: string, signingSeed: Uint8Array): string {
  const at = text.lastIndexOf('signature ');
  const body = text.slice(0, at);
  return `${body}signature ${b64(crypto.ed25519Sign(signingSeed, utf8(body)))}\n`;
}

it('a relay with its identity key offline joins the testnet, is in the consensus, carries a circuit; bad chains are refused', { timeout: 180_000 }, async (t) => {
  // Keys made as an operator would: create, move the identity away, re-certify from the offline copy.
  const dataDir = join(tmp, 'relay');
  const offline = join(tmp, 'offline-media');
  mkdirSync(offline, { mode: 0o700 });
  const created = keysCli('create', '--data-dir', dataDir, '--lifetime-days', '30');
  assert.equal(created.status, 0, created.stderr);
  const identityHex = /^identity\s+([0-9a-f]{64})/m.exec(created.stdout)![1]!;
  const firstSigning = /^signing key\s+([0-9a-f]{64})/m.exec(created.stdout)![1]!;
  renameSync(join(dataDir, 'keys', 'identity_ed25519'), join(offline, 'identity_ed25519'));
  // Renewed from the offline copy for 3 days, so the relay warns that it expires soon.
  const signed = keysCli('sign', '--identity', join(offline, 'identity_ed25519'), '--data-dir', dataDir, '--lifetime-days', '3');
  assert.equal(signed.status, 0, signed.stderr);
  assert.match(signed.stdout, /^identity key\s+offline/m);
  assert.match(signed.stdout, new RegExp(`^identity\\s+${identityHex}\\s`, 'm'), 'same identity');
  const signingHex = /^signing key\s+([0-9a-f]{64})/m.exec(signed.stdout)![1]!;
  assert.notEqual(signingHex, firstSigning, 'signing again makes a new signing key');
  assert.match(signed.stdout, /^signing cert\s+valid .* \(expires in 3\.0 days: renew it\)$/m);
  assert.equal(statSync(join(dataDir, 'keys', 'signing_ed25519')).mode & 0o777, 0o600);
  assert.equal(existsSync(join(dataDir, 'keys', 'identity_ed25519')), false);

  const net = await startTestnetProcess(t, { relays: 3, exits: 1 });
  const authorities = net.authorities.map((a) => `${a.url}#${a.identity}`);
  const file = join(tmp, 'relay.toml');
  writeFileSync(file, relayToml(authorities, dataDir));
  const relay = startRoleProcess(t, ['relay', '--config', file]);
  const up = await relay.up(20_000);
  assert.ok(up.role === "relay");
  assert.equal(up.identity, identityHex, 'the relay runs under the offline identity');
  await relay.waitStderr(/The signing key certificate expires .* and the identity key is offline/, 10_000);
  assert.equal(existsSync(join(dataDir, 'keys', 'identity_ed25519')), false, 'the relay made no identity key');

  // In the consensus.
  const identity = fromHex(identityHex);
  const consensus = await poll('the offline relay in the consensus', 60_000, async () => {
    const c = parseConsensus(await (await fetch(`${net.authorityUrl}/allium/v1/consensus`)).text());
    return c.relays.some((r) => equalBytes(r.identity, identity)) ? c : undefined;
  }).catch((e: Error) => {
    throw new Error(`${e.message}\n${relay.stderr()}`);
  });
  const descriptor = await (await fetch(`${net.authorityUrl}/allium/v1/descriptor/${identityHex}`)).text();
  assert.ok(descriptor.includes(`link-cert `), descriptor);

  // A circuit guard → offline relay → exit: the guard dials the offline relay (checks its link
  // certificate), the offline relay dials the exit (which checks the offline relay's certificate).
  const entry = (r: ConsensusRelay) => ({ nickname: r.nickname, identity: r.identity, linkKey: r.linkKey, ntorOnionKey: r.ntorOnionKey, address: r.address, orPort: r.orPort });
  const middle = consensus.relays.find((r) => equalBytes(r.identity, identity))!;
  const exitHex = net.relays.find((r) => r.exit)!.identity;
  const exit = consensus.relays.find((r) => hex(r.identity) === exitHex)!;
  const guard = consensus.relays.find((r) => r !== middle && r !== exit)!;
  assert.ok(exit !== undefined && guard !== undefined);
  const links = new LinkManager<OriginCircuit>({
    transport: new TcpTransport({ localAddress: '127.0.0.1' }),
    handler: { onCircuitCell: (slot, cell) => slot.circuit.receive(cell), onRelayCells: (slot, cells) => slot.circuit.receiveCells(cells), onLinkClosed: (slot) => slot.circuit.linkClosed() },
    dialTimeoutMs: 10_000,
  });
  t.after(() => links.close());
  const channel = await links.get({ address: guard.address, port: guard.orPort, identity: guard.identity, linkKey: guard.linkKey });
  const circuit = await OriginCircuit.build(channel, links.circuitsOf(channel), [entry(guard), entry(middle), entry(exit)], 15_000);
  for (const [hop, who] of [[1, identityHex], [2, exitHex]] as const) {
    const stream = await circuit.openDirStream(hop);
    stream.write(`GET ${DIR_SELF_DESCRIPTOR_PATH} HTTP/1.0\r\n\r\n`);
    const answer = await readAll(stream);
    assert.match(answer, /^HTTP\/1\.0 200 OK\r\n/);
    assert.ok(answer.includes(`\nidentity ${b64(fromHex(who))}\n`), `hop ${hop} serves its own descriptor`);
  }
  assert.equal(circuit.closed, false);

  // Renewing while it runs: sign again from the offline key; the relay takes the new file and republishes.
  const mark = relay.stderr().length;
  const renewed = keysCli('sign', '--identity', join(offline, 'identity_ed25519'), '--data-dir', dataDir, '--lifetime-days', '30');
  assert.equal(renewed.status, 0, renewed.stderr);
  const renewedSigning = /^signing key\s+([0-9a-f]{64})/m.exec(renewed.stdout)![1]!;
  await relay.waitStderr(/Loaded the new signing key certificate from the data directory/, 15_000, mark);
  // The link certificate in the descriptor starts with the signing-key certificate: version, identity, signing key.
  await poll('the renewed signing key at the authority', 20_000, async () => {
    const text = await (await fetch(`${net.authorityUrl}/allium/v1/descriptor/${identityHex}`)).text();
    const cert = Buffer.from(/^link-cert (\S+)$/m.exec(text)![1]!, 'base64');
    return hex(cert.subarray(33, 65)) === renewedSigning ? true : undefined;
  });
  assert.ok(relay.alive);

  // The authority refuses broken chains, saying why.
  const post = async (text: string) => {
    const res = await fetch(`${net.authorityUrl}/allium/v1/descriptor`, { method: 'POST', body: text });
    return { status: res.status, body: await res.text() };
  };
  const seedA = crypto.randomBytes(32);
  const seedB = crypto.randomBytes(32);
  const linkKey = crypto.x25519PublicKey(crypto.randomBytes(32));
  const now = Date.now();
  // A genuine one is accepted (the harness itself is right).
  const good = newRelaySigner(seedA, now, DAY);
  assert.equal((await post(encodeDescriptor(descriptorFor(good.cert.identity, signLinkCertificate(good, linkKey), linkKey, 'goodChain'), good))).status, 200);
  // Expired: certified from 10 days ago until 1 day ago.
  const expiredSeed = crypto.randomBytes(32);
  const expired: SigningKeySigner = { signingSeed: expiredSeed, cert: makeSigningKeyCert('relay', seedB, expiredSeed, Math.floor(now / 1000) * 1000 - 10 * DAY, Math.floor(now / 1000) * 1000 - DAY) };
  const r1 = await post(encodeDescriptor(descriptorFor(expired.cert.identity, signLinkCertificate(expired, linkKey), linkKey, 'expiredChain'), expired));
  assert.equal(r1.status, 409, r1.body); // a time problem, as for a stale descriptor (§9.3)
  assert.match(r1.body, /signing-key certificate expired at /);
  // Another identity: the descriptor names B, its certificate and signature are A's.
  const other = newRelaySigner(seedA, now, DAY);
  const forB = encodeDescriptor(descriptorFor(other.cert.identity, signLinkCertificate(other, linkKey), linkKey, 'otherIdentity'), other).replace(
    /^identity .*$/m,
    `identity ${b64(crypto.ed25519PublicKey(seedB))}`,
  );
  const r2 = await post(resign(forB, other.signingSeed));
  assert.equal(r2.status, 403, r2.body); // a bad signature chain (§9.3)
  assert.match(r2.body, /signing-key certificate in link-cert is for another identity/);
  // A certificate for another signing key than the one that signed the descriptor.
  const certified = newRelaySigner(seedB, now, DAY);
  const rogue = crypto.randomBytes(32);
  const r3 = await post(resign(encodeDescriptor(descriptorFor(certified.cert.identity, signLinkCertificate(certified, linkKey), linkKey, 'otherSigner'), certified), rogue));
  assert.equal(r3.status, 403, r3.body);
  assert.match(r3.body, /signature by the certified signing key does not verify/);
  // … and a link certificate whose link signature is by another signing key.
  const r4 = await post(encodeDescriptor(descriptorFor(certified.cert.identity, signLinkCertificate({ signingSeed: rogue, cert: certified.cert }, linkKey), linkKey, 'otherLinkSig'), certified));
  assert.equal(r4.status, 403, r4.body);
  assert.match(r4.body, /link certificate signature does not verify/);
  assert.ok(relay.alive);
});

it('an offline relay refuses to start with an expired certificate, naming the command that renews it', { timeout: 30_000 }, async (t) => {
  const dataDir = join(tmp, 'expired');
  const created = keysCli('create', '--data-dir', dataDir);
  assert.equal(created.status, 0, created.stderr);
  const idPath = join(tmp, 'expired-identity');
  renameSync(join(dataDir, 'keys', 'identity_ed25519'), idPath);
  // Replace the signing key with one whose certificate expired an hour ago.
  const { saveRelaySigner, readIdentitySeed } = await import('../../relay/keys.js');
  saveRelaySigner(dataDir, newRelaySigner(readIdentitySeed(idPath), Date.now() - 2 * DAY, 2 * DAY - 3600_000));
  const shown = keysCli('show', '--data-dir', dataDir);
  assert.equal(shown.status, 0, shown.stderr);
  assert.match(shown.stdout, /^signing cert\s+valid .*\(EXPIRED\)$/m);
  // No authority listens there: this relay never gets as far as publishing.
  const flags = ['--nickname', 'expired1', '--data-dir', dataDir, '--address', '127.0.0.1', '--port', '0', '--authority', `http://127.0.0.1:9#${'ab'.repeat(32)}`];
  const relay = startRoleProcess(t, ['relay', ...flags]);
  await relay.waitStderr(/signing key certificate expired at .* identity key is offline .*allium keys sign --identity/, 15_000);
  await poll('the relay exits', 10_000, async () => (relay.alive ? undefined : true));
  assert.notEqual(relay.child.exitCode, 0);
  // Signing again from the offline key lets it start.
  const signed = keysCli('sign', '--identity', idPath, '--data-dir', dataDir);
  assert.equal(signed.status, 0, signed.stderr);
  assert.match(signed.stdout, /^signing cert\s+valid .*\(30\.0 days left\)$/m);
  const again = startRoleProcess(t, ['relay', ...flags]);
  const up = await again.up(15_000);
  assert.ok(up.role === "relay");
  assert.equal(up.identity, hex(crypto.ed25519PublicKey(readIdentitySeed(idPath))));
  // A different identity key cannot re-certify this data directory.
  const stranger = join(tmp, 'stranger-identity');
  writeFileSync(stranger, crypto.randomBytes(32), { mode: 0o600 });
  const refused = keysCli('sign', '--identity', stranger, '--data-dir', dataDir);
  assert.notEqual(refused.status, 0);
  assert.match(refused.stderr, /is certified for identity [0-9a-f]{64}, not for .*refusing to replace it/);
});
