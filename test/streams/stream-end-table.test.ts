/**
 * The stream-end table of docs/protocol.md §6.7, row by row: the table is
 * read from the document, every row has a scenario here (and every scenario
 * a row), and each scenario makes the situation happen against real code —
 * a relay core (real links, layers and exit sockets) driven by a hostile
 * peer, or a real client circuit facing a fake relay — and reports what the
 * receiver answered, which must be what the row's "answer" column says. A
 * row answered with END must also leave the circuit working.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import net from 'node:net';
import { once } from 'node:events';
import { RelayCommand } from '../../src/cell/relay-cell.js';
import { DestroyReason, EndReason } from '../../src/cell/reasons.js';
import { BeginFlag, encodeBegin, encodeConnected } from '../../src/cell/stream-messages.js';
import { MAX_STREAMS_PER_CIRCUIT } from '../../src/circuit/circuit-edge.js';
import { AlliumError, CircuitDestroyedError, StreamEndedError } from '../../src/errors.js';
import { clientMessage, congestionControlFlow } from '../../src/circuit/cc-negotiation.js';
import { DEFAULT_CONGESTION_PARAMS } from '../../src/flow/cc-params.js';
import { DEFAULT_NETWORK_PARAMS } from '../../src/netdoc/params.js';
import { startSocksServer } from '../../client/socks/server.js';
import { encodeGreeting, encodeRequest } from '../../client/socks/messages.js';
import { memoryCircuit, memoryNetwork } from '../support/memory-network.js';
import { HostilePeer, closedPort, type PeerCircuit } from '../adversarial/hostile-peer.js';
import {
  WAIT_MS,
  answerFor,
  beginAt,
  clientAgainstFake,
  destination,
  hearUntil,
  streamRelay,
  within,
  type Heard,
} from './harness.js';

// ---------------------------------------------------------------------------
// the table, as the document has it

interface Row {
  id: string;
  where: string;
  what: string;
  answer: string;
}

const PROTOCOL_MD = fileURLToPath(new URL('../../../docs/protocol.md', import.meta.url));

function tableRows(): Row[] {
  const text = readFileSync(PROTOCOL_MD, 'utf8');
  const section = text.slice(text.indexOf('### 6.7 How streams end'), text.indexOf('## 7. Flow control'));
  const header = section.indexOf('| id | where | what arrives, or is found | answer |');
  assert.ok(header >= 0, 'the stream-end table is in §6.7');
  const rows: Row[] = [];
  for (const line of section.slice(header).split('\n').slice(2)) {
    if (!line.startsWith('|')) break;
    const cells = line.split('|').slice(1, -1).map((c) => c.trim());
    assert.equal(cells.length, 4, line);
    rows.push({ id: cells[0]!, where: cells[1]!, what: cells[2]!, answer: cells[3]! });
  }
  return rows;
}

/** What a scenario saw the receiver do. */
type Outcome =
  | { kind: 'end'; reason: number }
  | { kind: 'destroy'; reason: number }
  | { kind: 'dropped' }
  | { kind: 'ended-with-first-byte' }
  | { kind: 'refused-with-its-reason' }
  | { kind: 'resolved-error' }
  | { kind: 'credit' }
  | { kind: 'not-sent' };

/** The outcome a row's answer column states. */
function expected(answer: string): Outcome {
  let m = /^DESTROY ([A-Z_]+)$/.exec(answer);
  if (m) return { kind: 'destroy', reason: (DestroyReason as Record<string, number>)[m[1]!]! };
  m = /^END ([A-Z]+)$/.exec(answer);
  if (m) return { kind: 'end', reason: (EndReason as Record<string, number>)[m[1]!]! };
  if (answer.startsWith('dropped')) return { kind: 'dropped' };
  if (answer.startsWith("the stream ends, with the reason in the END's first byte")) return { kind: 'ended-with-first-byte' };
  if (answer.startsWith('the stream is refused with its reason')) return { kind: 'refused-with-its-reason' };
  if (answer.startsWith('nothing is sent')) return { kind: 'not-sent' };
  if (answer.startsWith('taken as credit')) return { kind: 'credit' };
  if (answer.startsWith('RESOLVED with one non-transient error answer')) return { kind: 'resolved-error' };
  throw new Error(`an answer this test does not know: ${answer}`);
}

// ---------------------------------------------------------------------------
// helpers

const ascii = (s: string) => new TextEncoder().encode(s);

function outcomeOf(h: Heard): Outcome {
  if (h.kind === 'destroy') return { kind: 'destroy', reason: h.reason };
  if (h.cell.command === RelayCommand.END) return { kind: 'end', reason: h.cell.data[0]! };
  throw new Error(`not an answer: relay command ${h.cell.command}`);
}

/** A BEGIN to a closed port on a fresh stream is answered on that stream (END CONNECTREFUSED at an exit, EXITPOLICY elsewhere): the circuit works. */
async function assertRelayCircuitWorks(peer: HostilePeer, circ: PeerCircuit, streamId: number): Promise<void> {
  peer.sendRelay(circ, RelayCommand.BEGIN, streamId, encodeBegin({ host: '127.0.0.1', port: await closedPort(), flags: 0 }));
  const answer = outcomeOf(await answerFor(peer, circ, streamId));
  assert.equal(answer.kind, 'end', 'the circuit still works');
}

/** Relay rows: a fresh hostile peer on a relay, one circuit; `act` sends, the answer about `streamId` is the outcome. */
async function atRelay(
  t: TestContext,
  act: (peer: HostilePeer, circ: PeerCircuit) => Promise<number> | number,
  relay: Parameters<typeof streamRelay>[1] = {},
  congestionControl = false,
): Promise<Outcome> {
  const target = streamRelay(t, relay);
  const peer = await HostilePeer.connect(t, target);
  // With congestion control asked for in the handshake (§7.2), which the relay's default parameters agree to.
  const circ = await peer.create(undefined, congestionControl ? clientMessage(DEFAULT_NETWORK_PARAMS) : undefined);
  const streamId = await act(peer, circ);
  const outcome = outcomeOf(await answerFor(peer, circ, streamId));
  if (outcome.kind === 'end') await assertRelayCircuitWorks(peer, circ, 0xfff0);
  return outcome;
}

/** A destination that accepts and holds its sockets (reads nothing, closes nothing). */
const holding = (t: TestContext) => destination(t);

const fresh = async (t: TestContext) => {
  const c = await clientAgainstFake(t);
  return { ...c, victim: await c.build() };
};

/** A client whose hop to the fake runs congestion control (Vegas, XON/XOFF: §7.3-7.4). */
const freshCc = async (t: TestContext) => {
  const c = await clientAgainstFake(t);
  return { ...c, victim: await c.build({ flow: congestionControlFlow(DEFAULT_CONGESTION_PARAMS, 'client') }) };
};

const XOFF_BODY = Uint8Array.of(0);
const XON_BODY = Uint8Array.of(0, 0, 0, 0, 0);

/** Client rows: what the client answered about `streamId`; END rows also check the circuit still opens streams. */
async function clientOutcome(c: Awaited<ReturnType<typeof fresh>>, streamId: number): Promise<Outcome> {
  const outcome = outcomeOf(await c.clientAnswer(c.victim.fc, streamId));
  if (outcome.kind === 'end') {
    assert.equal(c.victim.circuit.closed, false, 'the circuit lives');
    await c.open(c.victim);
  }
  return outcome;
}

// ---------------------------------------------------------------------------
// one scenario per row

const scenarios: Record<string, (t: TestContext) => Promise<Outcome>> = {
  'begin-zero': async (t) => {
    const outcomes = new Set<string>();
    for (const [command, body] of [
      [RelayCommand.BEGIN, ascii('127.0.0.1:80\0')],
      [RelayCommand.BEGIN_DIR, new Uint8Array(0)],
      [RelayCommand.RESOLVE, ascii('localhost\0')],
    ] as const) {
      outcomes.add(JSON.stringify(await atRelay(t, (peer, circ) => (peer.sendRelay(circ, command, 0, body), 0))));
    }
    assert.equal(outcomes.size, 1, [...outcomes].join(' '));
    return JSON.parse([...outcomes][0]!) as Outcome;
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
    assert.equal(outcomes.size, 1, [...outcomes].join(' '));
    return JSON.parse([...outcomes][0]!) as Outcome;
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

  'stream-zero': async (t) => {
    const outcomes = new Set<string>();
    for (const [command, body] of [
      [RelayCommand.DATA, ascii('x')],
      [RelayCommand.END, Uint8Array.of(EndReason.DONE)],
      [RelayCommand.FIN, new Uint8Array(0)],
      [RelayCommand.XON, XON_BODY],
      [RelayCommand.XOFF, XOFF_BODY],
    ] as const) {
      outcomes.add(JSON.stringify(await atRelay(t, (peer, circ) => (peer.sendRelay(circ, command, 0, body), 0))));
      // And at a client.
      const c = await fresh(t);
      c.fake.sendRelay(c.victim.fc, command, 0, body);
      outcomes.add(JSON.stringify(outcomeOf(await c.clientAnswer(c.victim.fc, 0))));
    }
    assert.equal(outcomes.size, 1, [...outcomes].join(' '));
    return JSON.parse([...outcomes][0]!) as Outcome;
  },

  'stream-unknown': async (t) => {
    const outcomes = new Set<string>();
    for (const [command, body] of [
      [RelayCommand.DATA, ascii('x')],
      [RelayCommand.SENDME, new Uint8Array(0)],
      [RelayCommand.END, Uint8Array.of(EndReason.DONE)],
      [RelayCommand.FIN, new Uint8Array(0)],
      [RelayCommand.XON, XON_BODY],
      [RelayCommand.XOFF, XOFF_BODY],
    ] as const) {
      outcomes.add(JSON.stringify(await atRelay(t, (peer, circ) => (peer.sendRelay(circ, command, 77, body), 77))));
      const c = await fresh(t);
      c.fake.sendRelay(c.victim.fc, command, 77, body);
      outcomes.add(JSON.stringify(outcomeOf(await c.clientAnswer(c.victim.fc, 77))));
    }
    assert.equal(outcomes.size, 1, [...outcomes].join(' '));
    return JSON.parse([...outcomes][0]!) as Outcome;
  },

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
    assert.equal(outcomes.size, 1, [...outcomes].join(' '));
    return JSON.parse([...outcomes][0]!) as Outcome;
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
    assert.equal(outcomes.size, 1, [...outcomes].join(' '));
    return JSON.parse([...outcomes][0]!) as Outcome;
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
    assert.equal(outcomes.size, 1, [...outcomes].join(' '));
    return JSON.parse([...outcomes][0]!) as Outcome;
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
    assert.equal(outcomes.size, 1, [...outcomes].join(' '));
    return JSON.parse([...outcomes][0]!) as Outcome;
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

test('every row of the stream-end table (docs/protocol.md §6.7) has a scenario, and every scenario a row', () => {
  const ids = tableRows().map((r) => r.id);
  assert.equal(new Set(ids).size, ids.length, 'ids are unique');
  assert.deepEqual([...ids].sort(), Object.keys(scenarios).sort());
});

for (const row of tableRows()) {
  test(`stream-end table: ${row.id} (${row.where}): ${row.what} → ${row.answer}`, { timeout: 30_000 }, async (t) => {
    const scenario = scenarios[row.id];
    assert.ok(scenario, `no scenario for ${row.id}`);
    assert.deepEqual(await scenario(t), expected(row.answer));
  });
}
