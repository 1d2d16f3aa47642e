/**
 * Link throughput: 514-byte cells through a Channel pair over 127.0.0.1.
 * Run: node dist/bench/link.bench.js [cells]
 */
import { createServer, connect } from 'node:net';
import { once } from 'node:events';
import { nodeCrypto } from '../src/crypto/crypto.js';
import { CELL_LENGTH } from '../src/constants.js';
import { Channel } from '../src/link/channel.js';
import { generateKeyPair } from '../src/link/noise.js';
import { newRelaySigner } from '../relay/keys.js';

const CELLS = Number(process.argv[2] ?? 50_000);

async function main(): Promise<void> {
  const seed = nodeCrypto.randomBytes(32);
  const identity = { identity: nodeCrypto.ed25519PublicKey(seed), signer: newRelaySigner(seed, Date.now(), 86_400_000) };
  const linkKey = generateKeyPair();

  const accepted = new Promise<Channel>((resolve, reject) => {
    const server = createServer((socket) => {
      server.close();
      Channel.accept(socket, { linkKey, identity, timeoutMs: 5000 }).then(resolve, reject);
    });
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      clientSocket = connect({ host: '127.0.0.1', port });
    });
  });
  let clientSocket: ReturnType<typeof connect> | undefined;
  while (clientSocket === undefined) await new Promise((resolve) => setImmediate(resolve));

  const hsStart = performance.now();
  const [client, server] = await Promise.all([
    Channel.connect(clientSocket, { peerLinkKey: linkKey.public, peerIdentity: identity.identity, timeoutMs: 5000 }),
    accepted,
  ]);
  const hsMs = performance.now() - hsStart;

  const run = async (label: string, from: Channel, to: Channel, both?: { from: Channel; to: Channel }) => {
    const cell = new Uint8Array(CELL_LENGTH);
    const pumps: Array<{ from: Channel; to: Channel }> = [{ from, to }];
    if (both !== undefined) pumps.push(both);
    const start = performance.now();
    await Promise.all(
      pumps.map(async ({ from: tx, to: rx }) => {
        let got = 0;
        const done = new Promise<void>((resolve) => {
          const onCell = (): void => {
            if (++got === CELLS) {
              rx.off('cell', onCell);
              resolve();
            }
          };
          rx.on('cell', onCell);
        });
        for (let i = 0; i < CELLS; i++) {
          new DataView(cell.buffer).setUint32(0, i);
          if (!tx.sendCell(cell)) await once(tx, 'drain');
        }
        await done;
      }),
    );
    const seconds = (performance.now() - start) / 1000;
    const mb = (pumps.length * CELLS * CELL_LENGTH) / 1e6;
    console.log(
      `${label}: ${pumps.length * CELLS} cells, ${mb.toFixed(1)} MB in ${seconds.toFixed(3)} s = ${(mb / seconds).toFixed(1)} MB/s (${Math.round((pumps.length * CELLS) / seconds)} cells/s)`,
    );
  };

  console.log(`link handshake (client -> relay, loopback): ${hsMs.toFixed(1)} ms`);
  await run('one way  ', client, server);
  await run('both ways', client, server, { from: server, to: client });
  client.destroy();
  server.destroy();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
