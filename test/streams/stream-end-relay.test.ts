/**
 * The rows of the stream-end table (docs/protocol.md §6.7) that a relay
 * receives: stream requests (BEGIN, BEGIN_DIR, RESOLVE) it refuses, each
 * answered on its stream or by destroying the circuit, and an XOFF repeated
 * on a congestion-controlled hop. Each scenario drives a real relay core
 * from a hostile peer; see stream-end-table.ts.
 */
import assert from 'node:assert/strict';
import { RelayCommand } from '../../src/cell/relay-cell.js';
import { EndReason } from '../../src/cell/reasons.js';
import { encodeBegin } from '../../src/cell/stream-messages.js';
import { MAX_STREAMS_PER_CIRCUIT } from '../../src/circuit/circuit-edge.js';
import { StreamEndedError } from '../../src/errors.js';
import { memoryCircuit, memoryNetwork } from '../support/memory-network.js';
import { HostilePeer, closedPort } from '../adversarial/hostile-peer.js';
import { WAIT_MS, answerFor, beginAt, hearUntil, streamRelay } from './harness.js';
import {
  XOFF_BODY,
  ascii,
  assertRelayCircuitWorks,
  atRelay,
  holding,
  outcomeOf,
  sameOutcome,
  tableTests,
  type Scenario,
} from './stream-end-table.js';

const scenarios: Record<string, Scenario> = {
  'begin-zero': async (t) => {
    const outcomes = new Set<string>();
    for (const [command, body] of [
      [RelayCommand.BEGIN, ascii('127.0.0.1:80\0')],
      [RelayCommand.BEGIN_DIR, new Uint8Array(0)],
      [RelayCommand.RESOLVE, ascii('localhost\0')],
    ] as const) {
      outcomes.add(JSON.stringify(await atRelay(t, (peer, circ) => (peer.sendRelay(circ, command, 0, body), 0))));
    }
    return sameOutcome(outcomes);
  },

  'begin-in-use': async (t) => {
    const { port } = await holding(t);
    return atRelay(t, async (peer, circ) => {
      await beginAt(peer, circ, 5, port);
      peer.sendRelay(circ, RelayCommand.BEGIN, 5, encodeBegin({ host: '127.0.0.1', port, flags: 0 }));
      return 5;
    });
  },

  'begin-body': (t) =>
    atRelay(t, (peer, circ) => {
      peer.sendRelay(circ, RelayCommand.BEGIN, 3, ascii('127.0.0.1:80')); // no NUL
      return 3;
    }),

  'begin-middle': async (t) => {
    const network = memoryNetwork(3);
    t.after(() => network.cleanup());
    const { port } = await holding(t);
    const { circuit, channel } = await memoryCircuit(network.relays);
    t.after(() => channel.destroy());
    const error = await circuit.openStream('127.0.0.1', port, WAIT_MS, { hop: 1 }).then(
      () => assert.fail('a BEGIN at the middle hop connected'),
      (e: unknown) => e,
    );
    assert.ok(error instanceof StreamEndedError, String(error));
    assert.equal(circuit.closed, false);
    (await circuit.openStream('127.0.0.1', port, WAIT_MS)).destroy();
    return { kind: 'end', reason: error.reason };
  },

  'begin-not-exit': (t) =>
    atRelay(
      t,
      (peer, circ) => {
        peer.sendRelay(circ, RelayCommand.BEGIN, 3, encodeBegin({ host: '127.0.0.1', port: 80, flags: 0 }));
        return 3;
      },
      { policy: null },
    ),

  'begin-bad-name': async (t) => {
    const outcomes = new Set<string>();
    // Names the BEGIN codec carries (letters, digits, '.', '-', '_') but no resolver should be asked.
    for (const host of ['a..b', '127.1', '2130706433', `${'a'.repeat(64)}.example`, '-a.example', '.example']) {
      outcomes.add(
        JSON.stringify(
          await atRelay(t, (peer, circ) => {
            peer.sendRelay(circ, RelayCommand.BEGIN, 3, ascii(`${host}:80\0`));
            return 3;
          }),
        ),
      );
    }
    return sameOutcome(outcomes);
  },

  'begin-full': async (t) => {
    const held: unknown[] = [];
    const { port } = await holding(t);
    return atRelay(
      t,
      async (peer, circ) => {
        for (let id = 1; id <= MAX_STREAMS_PER_CIRCUIT; id++) peer.sendRelay(circ, RelayCommand.BEGIN_DIR, id);
        const heard = await hearUntil(peer, circ, (h) => h.kind === 'relay' && h.cell.streamId === MAX_STREAMS_PER_CIRCUIT, 'the last CONNECTED');
        assert.equal(heard.filter((h) => h.kind === 'relay' && h.cell.command === RelayCommand.CONNECTED).length, MAX_STREAMS_PER_CIRCUIT);
        // The hop is full: BEGIN_DIR and BEGIN are refused on their own streams.
        peer.sendRelay(circ, RelayCommand.BEGIN_DIR, 2000);
        assert.deepEqual(outcomeOf(await answerFor(peer, circ, 2000)), { kind: 'end', reason: EndReason.RESOURCELIMIT });
        // One stream ends: there is room again for exactly one.
        peer.sendRelay(circ, RelayCommand.END, 1, Uint8Array.of(EndReason.DONE));
        peer.sendRelay(circ, RelayCommand.BEGIN, 2001, encodeBegin({ host: '127.0.0.1', port, flags: 0 }));
        assert.equal((await answerFor(peer, circ, 2001)).kind === 'relay', true);
        peer.sendRelay(circ, RelayCommand.BEGIN, 2002, encodeBegin({ host: '127.0.0.1', port, flags: 0 }));
        return 2002;
      },
      { directory: (stream) => held.push(stream) },
    );
  },

  'begin-unresolved': (t) =>
    atRelay(
      t,
      (peer, circ) => {
        peer.sendRelay(circ, RelayCommand.BEGIN, 3, encodeBegin({ host: 'no-such-host.example', port: 80, flags: 0 }));
        return 3;
      },
      // No DNS in tests: a resolver that knows no names, as getaddrinfo says it.
      { lookup: async () => Promise.reject(Object.assign(new Error('getaddrinfo ENOTFOUND'), { code: 'ENOTFOUND' })) },
    ),

  'begin-policy': async (t) => {
    const refused = await atRelay(t, (peer, circ) => {
      peer.sendRelay(circ, RelayCommand.BEGIN, 3, encodeBegin({ host: '10.0.0.1', port: 80, flags: 0 }));
      return 3;
    });
    // "Any" is refused even by a policy that accepts everything.
    for (const host of ['0.0.0.0', '::']) {
      const any = await atRelay(
        t,
        (peer, circ) => {
          peer.sendRelay(circ, RelayCommand.BEGIN, 3, encodeBegin({ host, port: 80, flags: 0 }));
          return 3;
        },
        { policy: ['accept *:*'] },
      );
      assert.deepEqual(any, refused, host);
    }
    return refused;
  },

  'begin-refused': async (t) => {
    const port = await closedPort();
    return atRelay(t, (peer, circ) => {
      peer.sendRelay(circ, RelayCommand.BEGIN, 3, encodeBegin({ host: '127.0.0.1', port, flags: 0 }));
      return 3;
    });
  },

  'begin-dir-none': (t) =>
    atRelay(t, (peer, circ) => {
      peer.sendRelay(circ, RelayCommand.BEGIN_DIR, 3);
      return 3;
    }),

  'resolve-refused': async (t) => {
    for (const [hostname, relay] of [
      ['localhost', { policy: null }],
      // A partial PTR name (a network, not one address) is never looked up (§6.4).
      ['0.127.in-addr.arpa', {}],
    ] as const) {
      const target = streamRelay(t, relay);
      const peer = await HostilePeer.connect(t, target);
      const circ = await peer.create();
      peer.sendRelay(circ, RelayCommand.RESOLVE, 6, ascii(`${hostname}\0`));
      const heard = await hearUntil(peer, circ, (h) => h.kind === 'relay' && h.cell.streamId === 6, 'RESOLVED');
      const last = heard[heard.length - 1]!;
      assert.ok(last.kind === 'relay' && last.cell.command === RelayCommand.RESOLVED, hostname);
      assert.equal(Buffer.from(last.cell.data.subarray(0, 2)).toString('hex'), 'f100', `${hostname}: one non-transient error`);
      await assertRelayCircuitWorks(peer, circ, 6); // the id is free again
    }
    return { kind: 'resolved-error' };
  },

  'xoff-again': async (t) => {
    const { port } = await holding(t);
    return atRelay(
      t,
      async (peer, circ) => {
        await beginAt(peer, circ, 3, port);
        peer.sendRelay(circ, RelayCommand.XOFF, 3, XOFF_BODY);
        await assertRelayCircuitWorks(peer, circ, 9); // one XOFF is in order
        peer.sendRelay(circ, RelayCommand.XOFF, 3, XOFF_BODY);
        return 3;
      },
      {},
      true,
    );
  },

};

tableTests('relay', scenarios);
