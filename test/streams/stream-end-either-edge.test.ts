/**
 * The rows of the stream-end table (docs/protocol.md §6.7) that either edge
 * receives on a stream: cells for stream 0 or unknown or recently ended
 * streams, window overruns, XON/XOFF and SENDME against the hop's flow
 * control, END and FIN misuse, the half-closed idle limit and unknown
 * commands. Each scenario makes the situation happen at a relay (a real
 * core driven by a hostile peer), at a client (a real circuit facing a fake
 * relay), or at both, which must then answer alike; see stream-end-table.ts.
 */
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { RelayCommand } from '../../src/cell/relay-cell.js';
import { EndReason } from '../../src/cell/reasons.js';
import { BeginFlag, encodeBegin } from '../../src/cell/stream-messages.js';
import { StreamEndedError } from '../../src/errors.js';
import { HostilePeer, closedPort } from '../adversarial/hostile-peer.js';
import { beginAt, clientAgainstFake, destination, hearUntil, streamRelay, within } from './harness.js';
import {
  XOFF_BODY,
  XON_BODY,
  ascii,
  assertRelayCircuitWorks,
  atRelay,
  clientOutcome,
  fresh,
  freshCc,
  holding,
  outcomeOf,
  sameOutcome,
  tableTests,
  type Outcome,
  type Scenario,
} from './stream-end-table.js';

/**
 * Each of `cells` (command, body) sent on stream `streamId` to a relay and
 * to a client, each time on a fresh circuit: all the answers must be alike,
 * and that one is the outcome.
 */
async function eachAtBothEdges(t: TestContext, streamId: number, cells: ReadonlyArray<readonly [number, Uint8Array]>): Promise<Outcome> {
  const outcomes = new Set<string>();
  for (const [command, body] of cells) {
    outcomes.add(JSON.stringify(await atRelay(t, (peer, circ) => (peer.sendRelay(circ, command, streamId, body), streamId))));
    const c = await fresh(t);
    c.fake.sendRelay(c.victim.fc, command, streamId, body);
    outcomes.add(JSON.stringify(outcomeOf(await c.clientAnswer(c.victim.fc, streamId))));
  }
  return sameOutcome(outcomes);
}

const scenarios: Record<string, Scenario> = {
  // SENDME on stream 0 is the circuit's (§7), so not in this list.
  'stream-zero': (t) =>
    eachAtBothEdges(t, 0, [
      [RelayCommand.DATA, ascii('x')],
      [RelayCommand.END, Uint8Array.of(EndReason.DONE)],
      [RelayCommand.FIN, new Uint8Array(0)],
      [RelayCommand.XON, XON_BODY],
      [RelayCommand.XOFF, XOFF_BODY],
    ]),

  'stream-unknown': (t) =>
    eachAtBothEdges(t, 77, [
      [RelayCommand.DATA, ascii('x')],
      [RelayCommand.SENDME, new Uint8Array(0)],
      [RelayCommand.END, Uint8Array.of(EndReason.DONE)],
      [RelayCommand.FIN, new Uint8Array(0)],
      [RelayCommand.XON, XON_BODY],
      [RelayCommand.XOFF, XOFF_BODY],
    ]),

  'stream-recent': async (t) => {
    const dest = await destination(t, (s) => s.resume());
    const target = streamRelay(t);
    const peer = await HostilePeer.connect(t, target);
    const circ = await peer.create();
    await beginAt(peer, circ, 4, dest.port, { halfClose: true });
    peer.sendRelay(circ, RelayCommand.END, 4, Uint8Array.of(EndReason.DONE));
    // Everything for the ended stream is dropped...
    for (const [command, body] of [
      [RelayCommand.DATA, ascii('late')],
      [RelayCommand.SENDME, new Uint8Array(0)],
      [RelayCommand.END, Uint8Array.of(EndReason.DONE)],
      [RelayCommand.FIN, new Uint8Array(0)],
      [RelayCommand.XON, XON_BODY],
      [RelayCommand.XOFF, XOFF_BODY],
    ] as const) {
      peer.sendRelay(circ, command, 4, body);
    }
    // ...and the circuit answers the next request as if nothing happened.
    const probe = 5;
    peer.sendRelay(circ, RelayCommand.BEGIN, probe, encodeBegin({ host: '127.0.0.1', port: await closedPort(), flags: 0 }));
    const heard = await hearUntil(peer, circ, (h) => h.kind === 'relay' && h.cell.streamId === probe, 'the probe');
    const about4 = heard.filter((h) => h.kind === 'destroy' || h.cell.streamId === 4);
    assert.deepEqual(about4, [], 'nothing answered the late cells');
    // The client side drops them too.
    const c = await fresh(t);
    const { stream, streamId } = await c.open(c.victim, { flags: BeginFlag.HALF_CLOSE });
    stream.destroy();
    await c.clientAnswer(c.victim.fc, streamId); // our END DONE
    c.fake.sendRelay(c.victim.fc, RelayCommand.DATA, streamId, ascii('late'));
    c.fake.sendRelay(c.victim.fc, RelayCommand.FIN, streamId);
    c.fake.sendRelay(c.victim.fc, RelayCommand.XOFF, streamId, XOFF_BODY);
    c.fake.sendRelay(c.victim.fc, RelayCommand.END, streamId, Uint8Array.of(EndReason.DONE));
    await c.open(c.victim);
    assert.equal(c.victim.circuit.closed, false);
    return { kind: 'dropped' };
  },

  'data-overrun': async (t) => {
    const c = await fresh(t);
    const { streamId } = await c.open(c.victim);
    // The application does not read: the client grants credit only as far as its 64 KiB buffer takes the data.
    for (let i = 0; i < 1000; i++) c.fake.sendRelay(c.victim.fc, RelayCommand.DATA, streamId, new Uint8Array(498));
    return outcomeOf(await c.clientAnswer(c.victim.fc, streamId));
  },

  'sendme-overrun': async (t) => {
    const { port } = await holding(t);
    return atRelay(t, async (peer, circ) => {
      await beginAt(peer, circ, 3, port);
      peer.sendRelay(circ, RelayCommand.SENDME, 3); // nothing was sent: the window would go to 550
      return 3;
    });
  },

  'xon-xoff-fixed': async (t) => {
    const { port } = await holding(t);
    const relay = await atRelay(t, async (peer, circ) => {
      await beginAt(peer, circ, 3, port);
      peer.sendRelay(circ, RelayCommand.XOFF, 3, XOFF_BODY);
      return 3;
    });
    const c = await fresh(t);
    const { streamId } = await c.open(c.victim);
    c.fake.sendRelay(c.victim.fc, RelayCommand.XON, streamId, XON_BODY);
    assert.deepEqual(outcomeOf(await c.clientAnswer(c.victim.fc, streamId)), relay);
    return relay;
  },

  'sendme-cc': async (t) => {
    const { port } = await holding(t);
    const relay = await atRelay(
      t,
      async (peer, circ) => {
        await beginAt(peer, circ, 3, port);
        // The hop runs XON/XOFF: an XON is in order here (it would destroy a fixed-window hop).
        peer.sendRelay(circ, RelayCommand.XON, 3, XON_BODY);
        await assertRelayCircuitWorks(peer, circ, 9);
        peer.sendRelay(circ, RelayCommand.SENDME, 3);
        return 3;
      },
      {},
      true,
    );
    const c = await freshCc(t);
    const { streamId } = await c.open(c.victim);
    c.fake.sendRelay(c.victim.fc, RelayCommand.SENDME, streamId);
    assert.deepEqual(outcomeOf(await c.clientAnswer(c.victim.fc, streamId)), relay);
    return relay;
  },

  'end-body': async (t) => {
    // At a client: END CONNRESET with a trailing byte still ends the stream with CONNRESET.
    const c = await fresh(t);
    const { stream, streamId } = await c.open(c.victim);
    const failed = new Promise<Error | null>((resolve) => stream.once('close', () => resolve(stream.errored)));
    c.fake.sendRelay(c.victim.fc, RelayCommand.END, streamId, Uint8Array.of(EndReason.CONNRESET, 0xee));
    const error = await within(failed, 'the stream to end');
    assert.ok(error instanceof StreamEndedError && error.reason === EndReason.CONNRESET, String(error));
    assert.equal(c.victim.circuit.closed, false);
    await c.open(c.victim);
    // At an exit: END DONE with a trailing byte closes the destination cleanly (FIN), circuit alive.
    const dest = await destination(t);
    const target = streamRelay(t);
    const peer = await HostilePeer.connect(t, target);
    const circ = await peer.create();
    await beginAt(peer, circ, 3, dest.port);
    const socket = await dest.next();
    const ended = once(socket, 'end');
    peer.sendRelay(circ, RelayCommand.END, 3, Uint8Array.of(EndReason.DONE, 0, 0));
    await within(ended, 'FIN at the destination');
    await assertRelayCircuitWorks(peer, circ, 4);
    return { kind: 'ended-with-first-byte' };
  },

  'fin-not-negotiated': async (t) => {
    const { port } = await holding(t);
    const relay = await atRelay(t, async (peer, circ) => {
      const connected = await beginAt(peer, circ, 3, port); // no HALF_CLOSE asked
      assert.equal(connected.data.length, 8, 'CONNECTED without flags');
      peer.sendRelay(circ, RelayCommand.FIN, 3);
      return 3;
    });
    // At a client whose exit did not agree (CONNECTED without the flag).
    const c = await fresh(t);
    const { streamId } = await c.open(c.victim);
    c.fake.sendRelay(c.victim.fc, RelayCommand.FIN, streamId);
    assert.deepEqual(await clientOutcome(c, streamId), relay);
    return relay;
  },

  'fin-again': async (t) => {
    const { port } = await holding(t);
    const twice = await atRelay(t, async (peer, circ) => {
      await beginAt(peer, circ, 3, port, { halfClose: true });
      peer.sendRelay(circ, RelayCommand.FIN, 3);
      peer.sendRelay(circ, RelayCommand.FIN, 3);
      return 3;
    });
    const withBody = await atRelay(t, async (peer, circ) => {
      await beginAt(peer, circ, 3, port, { halfClose: true });
      peer.sendRelay(circ, RelayCommand.FIN, 3, Uint8Array.of(0));
      return 3;
    });
    assert.deepEqual(withBody, twice);
    const c = await fresh(t);
    const { streamId } = await c.open(c.victim, { flags: BeginFlag.HALF_CLOSE });
    c.fake.sendRelay(c.victim.fc, RelayCommand.FIN, streamId, Uint8Array.of(1, 2));
    assert.deepEqual(await clientOutcome(c, streamId), twice);
    return twice;
  },

  'data-after-fin': async (t) => {
    const { port } = await holding(t);
    const relay = await atRelay(t, async (peer, circ) => {
      await beginAt(peer, circ, 3, port, { halfClose: true });
      peer.sendRelay(circ, RelayCommand.FIN, 3);
      peer.sendRelay(circ, RelayCommand.DATA, 3, ascii('too late'));
      return 3;
    });
    const c = await fresh(t);
    const { stream, streamId } = await c.open(c.victim, { flags: BeginFlag.HALF_CLOSE });
    stream.on('error', () => {});
    stream.resume();
    c.fake.sendRelay(c.victim.fc, RelayCommand.FIN, streamId);
    c.fake.sendRelay(c.victim.fc, RelayCommand.DATA, streamId, ascii('too late'));
    assert.deepEqual(await clientOutcome(c, streamId), relay);
    return relay;
  },

  'half-closed-idle': async (t) => {
    let failed = false;
    // The destination reads (so it notices the end) but never closes its side.
    const dest = await destination(t, (s) => {
      s.on('error', (e: NodeJS.ErrnoException) => (failed = e.code === 'ECONNRESET' || e.code === 'EPIPE'));
      s.resume();
    });
    const outcome = await atRelay(
      t,
      async (peer, circ) => {
        await beginAt(peer, circ, 3, dest.port, { halfClose: true });
        peer.sendRelay(circ, RelayCommand.FIN, 3); // the client is done; the destination says nothing
        return 3;
      },
      { halfClosedIdleMs: 200 },
    );
    // The exit's socket is gone: the destination (which already had the client's FIN) gets a reset when it next sends.
    const socket = dest.accepted[0]!;
    const closed = new Promise((resolve) => socket.once('close', resolve));
    const writer = setInterval(() => socket.write('are you there?'), 20);
    await within(closed, 'the destination socket to fail').finally(() => clearInterval(writer));
    assert.equal(failed, true, 'the destination saw a reset');
    // At a client, a half-closed stream (the exit sent FIN, the application keeps its side open) likewise.
    const c = await clientAgainstFake(t);
    const victim = await c.build({ halfClosedIdleMs: 200 });
    const { stream, streamId } = await c.open(victim, { flags: BeginFlag.HALF_CLOSE });
    stream.on('error', () => {});
    stream.resume();
    c.fake.sendRelay(victim.fc, RelayCommand.FIN, streamId);
    assert.deepEqual(outcomeOf(await c.clientAnswer(victim.fc, streamId)), outcome);
    assert.ok(stream.errored instanceof StreamEndedError && stream.errored.reason === EndReason.TIMEOUT);
    return outcome;
  },

  'unknown-command': async (t) => {
    const relay = await atRelay(t, (peer, circ) => (peer.sendRelay(circ, 99, 3, ascii('?')), 3));
    const c = await fresh(t);
    const { streamId } = await c.open(c.victim);
    c.fake.sendRelay(c.victim.fc, 99, streamId, ascii('?'));
    assert.deepEqual(outcomeOf(await c.clientAnswer(c.victim.fc, streamId)), relay);
    return relay;
  },

};

tableTests('either edge', scenarios);
