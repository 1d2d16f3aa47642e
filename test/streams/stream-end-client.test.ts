/**
 * The rows of the stream-end table (docs/protocol.md §6.7) that a client
 * receives or finds: XON/XOFF sooner than its data allows, answers to its
 * stream requests (CONNECTED, END, SENDME, DATA or FIN before CONNECTED, no
 * answer in time), requests arriving backward, and destinations an
 * application names that are not valid. Each scenario drives a real client
 * circuit facing a fake relay (or the SOCKS server); see stream-end-table.ts.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { RelayCommand } from '../../src/cell/relay-cell.js';
import { EndReason } from '../../src/cell/reasons.js';
import { encodeConnected } from '../../src/cell/stream-messages.js';
import { AlliumError, CircuitDestroyedError, StreamEndedError } from '../../src/errors.js';
import { startSocksServer } from '../../client/socks/server.js';
import { encodeGreeting, encodeRequest } from '../../client/socks/messages.js';
import { WAIT_MS, within } from './harness.js';
import {
  XOFF_BODY,
  XON_BODY,
  ascii,
  clientOutcome,
  fresh,
  freshCc,
  outcomeOf,
  sameOutcome,
  tableTests,
  type Scenario,
} from './stream-end-table.js';

const scenarios: Record<string, Scenario> = {
  'xon-xoff-early': async (t) => {
    const outcomes = new Set<string>();
    for (const command of [RelayCommand.XOFF, RelayCommand.XON]) {
      // After CONNECTED, the client having sent nothing.
      const c = await freshCc(t);
      const { streamId } = await c.open(c.victim);
      c.fake.sendRelay(c.victim.fc, command, streamId, command === RelayCommand.XON ? XON_BODY : XOFF_BODY);
      outcomes.add(JSON.stringify(outcomeOf(await c.clientAnswer(c.victim.fc, streamId))));
      // Before CONNECTED, with a little optimistic data.
      const d = await freshCc(t);
      const opening = d.victim.circuit.openStream('127.0.0.1', 80, WAIT_MS, { earlyData: ascii('early') });
      opening.catch(() => {});
      const begin = await d.nextBegin(d.victim.fc);
      d.fake.sendRelay(d.victim.fc, command, begin.streamId, command === RelayCommand.XON ? XON_BODY : XOFF_BODY);
      outcomes.add(JSON.stringify(outcomeOf(await d.clientAnswer(d.victim.fc, begin.streamId))));
    }
    return sameOutcome(outcomes);
  },

  'connected-unasked': async (t) => {
    const outcomes = new Set<string>();
    {
      const c = await fresh(t);
      c.fake.sendRelay(c.victim.fc, RelayCommand.CONNECTED, 7, encodeConnected('127.0.0.1'));
      outcomes.add(JSON.stringify(outcomeOf(await c.clientAnswer(c.victim.fc, 7))));
    }
    {
      const c = await fresh(t);
      const { streamId } = await c.open(c.victim);
      c.fake.sendRelay(c.victim.fc, RelayCommand.CONNECTED, streamId, encodeConnected('127.0.0.1'));
      outcomes.add(JSON.stringify(outcomeOf(await c.clientAnswer(c.victim.fc, streamId))));
    }
    return sameOutcome(outcomes);
  },

  'connected-body': async (t) => {
    const c = await fresh(t);
    const opening = c.victim.circuit.openStream('127.0.0.1', 80, WAIT_MS);
    const begin = await c.nextBegin(c.victim.fc);
    c.fake.sendRelay(c.victim.fc, RelayCommand.CONNECTED, begin.streamId, Uint8Array.of(0x7f)); // part of an address
    await assert.rejects(opening, (e: unknown) => e instanceof StreamEndedError && e.reason === EndReason.TORPROTOCOL);
    return clientOutcome(c, begin.streamId);
  },

  'before-connected': async (t) => {
    const outcomes = new Set<string>();
    for (const [command, body] of [
      [RelayCommand.DATA, ascii('early')],
      [RelayCommand.FIN, new Uint8Array(0)],
    ] as const) {
      const c = await fresh(t);
      const opening = c.victim.circuit.openStream('127.0.0.1', 80, WAIT_MS);
      const begin = await c.nextBegin(c.victim.fc);
      c.fake.sendRelay(c.victim.fc, command, begin.streamId, body);
      await assert.rejects(opening, (e: unknown) => e instanceof StreamEndedError && e.reason === EndReason.TORPROTOCOL);
      outcomes.add(JSON.stringify(await clientOutcome(c, begin.streamId)));
    }
    return sameOutcome(outcomes);
  },

  'sendme-before-connected': async (t) => {
    const c = await fresh(t);
    // 50 cells of optimistic data: the exit owes one stream SENDME, and may send it before CONNECTED.
    const cells = (streamId: number) => c.victim.fc.messages.filter((m) => m.streamId === streamId && m.command === RelayCommand.DATA).length;
    const opening = c.victim.circuit.openStream('127.0.0.1', 80, WAIT_MS, { earlyData: new Uint8Array(50 * 498).fill(0x61) });
    const begin = await c.nextBegin(c.victim.fc);
    await c.fake.until(() => cells(begin.streamId) === 50, 'the optimistic data at the fake');
    c.fake.sendRelay(c.victim.fc, RelayCommand.SENDME, begin.streamId, new Uint8Array(0));
    c.fake.sendRelay(c.victim.fc, RelayCommand.CONNECTED, begin.streamId, encodeConnected('127.0.0.1'));
    const stream = await opening;
    stream.on('error', () => {});
    // The credit counts: a whole window (500 cells) more goes out, where 450 would without it.
    stream.write(new Uint8Array(500 * 498).fill(0x62));
    await c.fake.until(() => cells(begin.streamId) === 550, 'a full window after the early SENDME');
    assert.equal(c.victim.circuit.closed, false);
    assert.equal(stream.destroyed, false);
    assert.equal(c.victim.fc.messages.some((m) => m.streamId === begin.streamId && m.command === RelayCommand.END), false, 'no END on the stream');
    stream.destroy();
    return { kind: 'credit' };
  },

  'end-before-connected': async (t) => {
    const c = await fresh(t);
    // An unknown reason, and an END that does not decode (a byte after CONNECTREFUSED), refuse just the same.
    for (const body of [[EndReason.EXITPOLICY], [EndReason.CONNECTREFUSED], [200], [EndReason.CONNECTREFUSED, 0xee]]) {
      const reason = body[0]!;
      const opening = c.victim.circuit.openStream('127.0.0.1', 80, WAIT_MS);
      const begin = await c.nextBegin(c.victim.fc);
      c.fake.sendRelay(c.victim.fc, RelayCommand.END, begin.streamId, Uint8Array.from(body));
      await assert.rejects(opening, (e: unknown) => e instanceof StreamEndedError && e.reason === reason);
    }
    assert.equal(c.victim.circuit.closed, false);
    await c.open(c.victim);
    return { kind: 'refused-with-its-reason' };
  },

  'connect-timeout': async (t) => {
    const c = await fresh(t);
    const opening = c.victim.circuit.openStream('127.0.0.1', 80, 200);
    const begin = await c.nextBegin(c.victim.fc);
    await assert.rejects(opening, (e: unknown) => e instanceof AlliumError && e.code === 'ERR_TIMEOUT');
    return clientOutcome(c, begin.streamId);
  },

  'request-backward': async (t) => {
    const outcomes = new Set<string>();
    for (const [command, body] of [
      [RelayCommand.BEGIN, ascii('127.0.0.1:80\0')],
      [RelayCommand.BEGIN_DIR, new Uint8Array(0)],
      [RelayCommand.RESOLVE, ascii('localhost\0')],
      [RelayCommand.RESOLVED, new Uint8Array(0)],
    ] as const) {
      const c = await fresh(t);
      const closed = new Promise<Error>((resolve) => c.victim.circuit.onClose(resolve));
      c.fake.sendRelay(c.victim.fc, command, 9, body);
      assert.ok((await within(closed, 'the circuit to close')) instanceof CircuitDestroyedError);
      outcomes.add(JSON.stringify(outcomeOf(await c.clientAnswer(c.victim.fc, 9))));
    }
    return sameOutcome(outcomes);
  },

  'client-bad-name': async (t) => {
    let calls = 0;
    const server = await startSocksServer({
      port: 0,
      connect: async () => {
        calls++;
        throw new Error('the connector must not be called');
      },
    });
    t.after(() => server.close());
    for (const host of ['*', 'a*b.example', '127.0.9.1:443', 'a..b', '127.1', `${'a'.repeat(64)}.example`]) {
      const socket = net.connect(server.address.port, '127.0.0.1');
      socket.on('error', () => {});
      await once(socket, 'connect');
      socket.write(Buffer.concat([encodeGreeting({ methods: [0] }), encodeRequest({ command: 1, addressType: 'domain', host, port: 443 })]));
      const reply = await within(
        new Promise<Buffer>((resolve) => {
          const chunks: Buffer[] = [];
          socket.on('data', (c: Buffer) => chunks.push(c));
          socket.on('close', () => resolve(Buffer.concat(chunks)));
        }),
        `the reply for ${host}`,
      );
      assert.equal(reply.toString('hex'), '0500' + '05040001000000000000', host);
    }
    assert.equal(calls, 0);
    return { kind: 'not-sent' };
  },
};

tableTests('client', scenarios);
