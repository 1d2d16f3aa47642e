/**
 * Floods against one relay (docs/protocol.md §3.6, §5): a CREATE2 flood, the
 * per-link circuit bound, and a client that never reads. The relay answers
 * every request or refuses with the documented reply, frees what a closed
 * link held, bounds what it buffers, and keeps serving a bystander client.
 */
import { test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import assert from 'node:assert/strict';
import { ChannelCommand, cellCircuitId, encodeChannelCell } from '../../src/cell/channel-cell.js';
import { encodeCreate2 } from '../../src/cell/create2.js';
import { RelayCommand, encodeRelayCell } from '../../src/cell/relay-cell.js';
import { DestroyReason } from '../../src/cell/reasons.js';
import { encodeBegin } from '../../src/cell/stream-messages.js';
import { HANDSHAKE_TYPE_NTOR_V3 } from '../../src/constants.js';
import { crypto } from '../../src/crypto/crypto.js';
import type { Channel } from '../../src/link/channel.js';
import { startRelay } from '../../relay/relay.js';
import { loadRelayKeys } from '../../relay/keys.js';
import { HostilePeer, WAIT_MS, tcpTarget, tempDir, type RelayTarget } from './hostile-peer.js';
import { assertCircuitWorks, assertLinkWorks, bystander, setup } from './bystander.js';

function exposeGc(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

/**
 * Open a link, flood it with `count` CREATE2 (every tenth garbage), check every
 * one is answered, close it. Returns the relay's side of the link, weakly held:
 * if anything in the relay still held a circuit of the link, the link would
 * stay reachable through it.
 */
async function floodAndClose(target: RelayTarget, count: number): Promise<WeakRef<Channel>> {
  const peer = await HostilePeer.connect(null, target);
  const relaySide = await target.relaySide!(peer.socket);
  // One valid onionskin replayed under many ids (ntor v3 keeps no replay cache, so each makes a real circuit).
  const { onionskin } = peer.onionskin();
  const ids: number[] = [];
  for (let i = 0; i < count; i++) {
    const id = peer.freshId();
    ids.push(id);
    peer.sendCreate2(id, i % 10 === 9 ? crypto.randomBytes(129) : onionskin);
  }
  const deadline = Date.now() + 20_000;
  while (peer.received.length < count && Date.now() < deadline && !peer.channel.closed) await peer.settle(20);
  assert.equal(peer.channel.closed, false);
  assert.equal(peer.received.length, count, 'every CREATE2 answered once');
  const byId = new Map(peer.received.map((c) => [cellCircuitId(c), c[4]]));
  for (let i = 0; i < count; i++) {
    assert.equal(byId.get(ids[i]!), i % 10 === 9 ? ChannelCommand.DESTROY : ChannelCommand.CREATED2, `answer to CREATE2 #${i}`);
  }
  peer.channel.destroy();
  await peer.linkClosed();
  return new WeakRef(relaySide);
}

test('a CREATE2 flood: 2000 in a row are all answered; closing the link frees its circuits', { timeout: 30_000 }, async (t) => {
  const gc = exposeGc();
  const { target, peer, bystanderWorks } = await setup(t);
  const relaySide = await floodAndClose(target, 2000);
  await bystanderWorks();
  // The relay accepts new links and circuits after the flood...
  await assertLinkWorks(peer);
  await assertLinkWorks(await HostilePeer.connect(t, target));
  // ...and holds nothing of the flooded link: its 1800 circuits are gone with it.
  for (let i = 0; i < 20 && relaySide.deref() !== undefined; i++) {
    await new Promise((resolve) => setTimeout(resolve, 10));
    gc();
  }
  assert.equal(relaySide.deref(), undefined, 'the relay still holds the closed link (and so its circuits)');
});

test('circuits per link are bounded: past 8192 a CREATE2 gets DESTROY RESOURCELIMIT; a freed slot can be used again', { timeout: 150_000 }, async (t) => {
  const { peer, bystanderWorks } = await setup(t);
  const { onionskin } = peer.onionskin();
  const limit = 8192;
  const ids = Array.from({ length: limit + 5 }, () => peer.freshId());
  const body = encodeCreate2({ handshakeType: HANDSHAKE_TYPE_NTOR_V3, handshakeData: onionskin });
  // More than 4 MiB of cells: paced by our link's backpressure, or our own link would give up.
  // 8197 ntor-v3 handshakes at the relay: a few seconds alone, much longer on a loaded 2-core machine.
  await peer.sendPaced(ids.map((id) => encodeChannelCell(id, ChannelCommand.CREATE2, body)), 60_000);
  const deadline = Date.now() + 60_000;
  while (peer.received.length < limit + 5 && Date.now() < deadline && !peer.channel.closed) await peer.settle(20);
  assert.equal(peer.received.length, limit + 5);
  const byId = new Map(peer.received.map((c) => [cellCircuitId(c), c]));
  for (let i = 0; i < limit + 5; i++) {
    const cell = byId.get(ids[i]!)!;
    if (i < limit) assert.equal(cell[4], ChannelCommand.CREATED2, `CREATE2 #${i}`);
    else assert.deepEqual([cell[4], cell[5]], [ChannelCommand.DESTROY, DestroyReason.RESOURCELIMIT], `CREATE2 #${i}`);
  }
  await bystanderWorks();
  // We destroy one circuit: its slot is free again.
  peer.sendCell(ids[0]!, ChannelCommand.DESTROY, new Uint8Array([DestroyReason.REQUESTED]));
  await assertCircuitWorks(peer, await peer.create());
});

test('a client that never reads: the relay closes its link at the queue cap instead of buffering without bound', { timeout: 30_000 }, async (t) => {
  const dataDir = tempDir(t);
  const relay = await startRelay({ nickname: 'hostile1', dataDir, address: '127.0.0.1', port: 0, authorities: [], exit: false });
  t.after(() => relay.close());
  const tcp = tcpTarget(loadRelayKeys(dataDir), relay.port);
  const check = await bystander(t, tcp);
  const peer = await HostilePeer.connect(t, tcp);
  const circ = await peer.create();
  peer.channel.pauseReading();
  // Each BEGIN makes the relay answer with END EXITPOLICY: 60 000 of them is 30 MB of answers we never read,
  // far more than the kernel's socket buffers and the link's 4 MiB cap.
  const started = Date.now();
  let sent = 0;
  const begin = encodeBegin({ host: '10.0.0.1', port: 80, flags: 0 });
  const cells = function* () {
    for (; sent < 60_000 && !peer.channel.closed; sent++) {
      const payload = encodeRelayCell({ command: RelayCommand.BEGIN, streamId: 1 + (sent % 60_000), data: begin });
      circ.layers.forward.seal(payload);
      yield encodeChannelCell(circ.id, ChannelCommand.RELAY, payload);
    }
  };
  await peer.sendPaced(cells(), 10_000).catch(() => {});
  await peer.linkClosed(WAIT_MS);
  assert.ok(sent < 60_000, `the relay kept buffering: all ${sent} BEGINs went in`);
  assert.ok(Date.now() - started < 15_000);
  await check();
});
