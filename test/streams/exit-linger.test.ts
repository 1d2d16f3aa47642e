/**
 * The exit's linger (docs/protocol.md §6.7, src/stream/splice.ts): a
 * destination that never reads cannot keep its socket, the stream and their
 * buffered bytes once the stream has closed on the wire. A hostile client
 * fills the destination's socket until the exit stops granting stream
 * SENDMEs (its writes to the destination are stuck), then sends END DONE: the
 * exit destroys the stream and resets the socket `lingerMs` later, though it
 * never finished writing. (Without the bound the stream stays open for as
 * long as the destination does not read.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { RelayCommand } from '../../src/cell/relay-cell.js';
import { EndReason } from '../../src/cell/reasons.js';
import { RELAY_DATA_LENGTH } from '../../src/constants.js';
import { EXIT_LINGER_MS } from '../../relay/exit.js';
import { HostilePeer } from '../adversarial/hostile-peer.js';
import { beginAt, destination, hear, streamRelay, until, within } from './harness.js';

const LINGER_MS = 300;

test('exit: a destination that never reads is reset EXIT_LINGER_MS after its stream ends, whether or not the writes finished', { timeout: 60_000 }, async (t) => {
  assert.equal(EXIT_LINGER_MS, 10_000);
  // The destination takes the connection and never reads from it.
  const dest = await destination(t);
  const target = streamRelay(t, { lingerMs: LINGER_MS });
  const peer = await HostilePeer.connect(t, target);
  const circ = await peer.create();
  await beginAt(peer, circ, 3, dest.port);
  const socket: Socket = await dest.next();

  // Send within the stream and circuit windows until the exit grants no more: its socket is stuck.
  let sent = 0;
  let streamWindow = 500;
  let circuitWindow = 1000;
  let stuck = false;
  for (let round = 0; round < 200 && !stuck; round++) {
    while (sent < streamWindow && sent < circuitWindow) {
      peer.sendRelay(circ, RelayCommand.DATA, 3, new Uint8Array(RELAY_DATA_LENGTH).fill(sent & 0xff));
      sent++;
    }
    stuck = true;
    for (;;) {
      const h = await hear(peer, circ, 'a SENDME', 500).catch(() => null);
      if (h === null) break;
      assert.equal(h.kind, 'relay', 'no DESTROY');
      if (h.kind !== 'relay' || h.cell.command !== RelayCommand.SENDME) continue;
      if (h.cell.streamId === 3) {
        streamWindow += 50;
        stuck = false;
      } else if (h.cell.streamId === 0) {
        circuitWindow += 100;
      }
    }
  }
  assert.ok(stuck, `the exit kept granting after ${sent} cells`);
  assert.equal(target.core.stats().streams, 1);

  // The client closes the stream both ways; the exit still holds bytes for the destination.
  const endedAt = Date.now();
  peer.sendRelay(circ, RelayCommand.END, 3, Uint8Array.of(EndReason.DONE));
  await until(() => target.core.stats().streams === 0, 'the exit to drop the stream');
  assert.ok(Date.now() - endedAt >= LINGER_MS - 20, 'not before the linger');

  // The destination, reading at last, gets less than was sent, then its connection is over: the exit gave up on the
  // rest. (The exit resets it; a peer whose window was closed may see that as an EOF, as Linux reports it.)
  let received = 0;
  socket.on('data', (chunk: Buffer) => (received += chunk.length));
  const over = new Promise<string | undefined>((resolve) => {
    socket.once('error', (e: NodeJS.ErrnoException) => resolve(e.code));
    socket.once('end', () => resolve('end'));
  });
  socket.resume();
  const how = await within(over, 'the end of the connection at the destination');
  assert.ok(how === 'ECONNRESET' || how === 'end', String(how));
  assert.ok(received < sent * RELAY_DATA_LENGTH, `${received} of ${sent * RELAY_DATA_LENGTH} bytes`);
  // The circuit carries on.
  peer.sendRelay(circ, RelayCommand.BEGIN_DIR, 5);
  const answer = await hear(peer, circ, 'an answer to BEGIN_DIR');
  assert.ok(answer.kind === 'relay' && answer.cell.streamId === 5, JSON.stringify(answer));
});
