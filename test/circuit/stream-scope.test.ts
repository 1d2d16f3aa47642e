/**
 * Rejection at the smallest scope (docs/protocol.md §6.2, §6.4): at a real
 * exit relay (in memory, real Noise link and tor1 layers, a real TCP echo
 * destination), a malformed BEGIN is answered with END TORPROTOCOL on its own
 * stream, while another stream on the same circuit keeps carrying its data.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RelayCommand } from '../../src/cell/relay-cell.js';
import { EndReason } from '../../src/cell/reasons.js';
import { encodeBegin } from '../../src/cell/stream-messages.js';
import { HostilePeer, memoryRelay, tcpServer, type PeerCircuit } from '../adversarial/hostile-peer.js';

/** Send `text` as DATA on `streamId` and collect the echo. */
async function echo(peer: HostilePeer, circ: PeerCircuit, streamId: number, text: string): Promise<void> {
  peer.sendRelay(circ, RelayCommand.DATA, streamId, new TextEncoder().encode(text));
  let got = '';
  while (got.length < text.length) {
    const cell = await peer.relay(circ, `echo of ${text}`);
    assert.equal(cell.command, RelayCommand.DATA);
    assert.equal(cell.streamId, streamId);
    got += new TextDecoder().decode(cell.data);
  }
  assert.equal(got, text);
}

test('a malformed BEGIN ends only its stream: END TORPROTOCOL, and another stream on the circuit keeps its data', { timeout: 20_000 }, async (t) => {
  const target = memoryRelay(t, { exit: true });
  const { port } = await tcpServer(t, (socket) => socket.pipe(socket));
  const peer = await HostilePeer.connect(t, target);
  const circ = await peer.create();

  peer.sendRelay(circ, RelayCommand.BEGIN, 1, encodeBegin({ host: '127.0.0.1', port, flags: 0 }));
  const connected = await peer.relay(circ, 'CONNECTED');
  assert.deepEqual([connected.command, connected.streamId], [RelayCommand.CONNECTED, 1]);
  await echo(peer, circ, 1, 'before');

  const text = (s: string) => new TextEncoder().encode(s);
  for (const [what, body] of [
    ['no NUL', text(`127.0.0.1:${port}`)],
    ['bad hostname', text(`exa mple.com:${port}\0`)],
    ['port 0', text('127.0.0.1:0\0')],
    ['3 bytes of flags', text(`127.0.0.1:${port}\0\x01\x02\x03`)],
  ] as const) {
    peer.sendRelay(circ, RelayCommand.BEGIN, 2, body);
    const end = await peer.relay(circ, `END for ${what}`);
    assert.deepEqual([end.command, end.streamId, end.data[0]], [RelayCommand.END, 2, EndReason.TORPROTOCOL], what);
    await echo(peer, circ, 1, `after ${what}`);
  }
  // The refused id is free again: a good BEGIN on it works.
  peer.sendRelay(circ, RelayCommand.BEGIN, 2, encodeBegin({ host: '127.0.0.1', port, flags: 0 }));
  assert.equal((await peer.relay(circ, 'CONNECTED')).command, RelayCommand.CONNECTED);
  await echo(peer, circ, 2, 'second stream');
  await echo(peer, circ, 1, 'first stream');
  assert.deepEqual(peer.pending(circ.id), []);
});
