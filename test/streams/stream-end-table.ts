/**
 * The stream-end table of docs/protocol.md §6.7, read from the document, and
 * what the row tests share. Each row has a scenario that makes the situation
 * happen against real code — a relay core (real links, layers and exit
 * sockets) driven by a hostile peer, or a real client circuit facing a fake
 * relay — and reports what the receiver answered, which must be what the
 * row's "answer" column says. A row answered with END must also leave the
 * circuit working.
 *
 * The rows are split over one test file per value of the `where` column
 * (stream-end-relay, stream-end-either-edge, stream-end-client); `tableTests`
 * checks that a file's scenarios are exactly its rows, so together every row
 * of the table runs, and no scenario is without a row.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { RelayCommand } from '../../src/cell/relay-cell.js';
import { DestroyReason, EndReason } from '../../src/cell/reasons.js';
import { encodeBegin } from '../../src/cell/stream-messages.js';
import { clientMessage, congestionControlFlow } from '../../src/circuit/cc-negotiation.js';
import { DEFAULT_CONGESTION_PARAMS } from '../../src/flow/cc-params.js';
import { DEFAULT_NETWORK_PARAMS } from '../../src/netdoc/params.js';
import { HostilePeer, closedPort, type PeerCircuit } from '../adversarial/hostile-peer.js';
import { answerFor, clientAgainstFake, destination, streamRelay, type Heard } from './harness.js';

// ---------------------------------------------------------------------------
// the table, as the document has it

/** Which edge receives what a row describes: the table's `where` column. */
export type Where = 'relay' | 'either edge' | 'client';

const WHERES: readonly Where[] = ['relay', 'either edge', 'client'];

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
export type Outcome =
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

/** One row's scenario: makes the situation happen and reports what the receiver answered. */
export type Scenario = (t: TestContext) => Promise<Outcome>;

/**
 * Registers the tests for the rows whose `where` is `where`: one that checks
 * the table's ids are unique, every `where` is one of the three, and
 * `scenarios` has exactly this column's rows; then one test per row, which
 * runs its scenario and compares the outcome with the row's answer.
 */
export function tableTests(where: Where, scenarios: Record<string, Scenario>): void {
  test(`every "${where}" row of the stream-end table (docs/protocol.md §6.7) has a scenario here, and every scenario here a row`, () => {
    const rows = tableRows();
    const ids = rows.map((r) => r.id);
    assert.equal(new Set(ids).size, ids.length, 'ids are unique');
    for (const row of rows) assert.ok((WHERES as readonly string[]).includes(row.where), `${row.id}: where is ${row.where}`);
    const mine = rows.filter((r) => r.where === where).map((r) => r.id);
    assert.deepEqual([...mine].sort(), Object.keys(scenarios).sort());
  });

  for (const row of tableRows().filter((r) => r.where === where)) {
    test(`stream-end table: ${row.id} (${row.where}): ${row.what} → ${row.answer}`, { timeout: 30_000 }, async (t) => {
      const scenario = scenarios[row.id];
      assert.ok(scenario, `no scenario for ${row.id}`);
      assert.deepEqual(await scenario(t), expected(row.answer));
    });
  }
}

/**
 * What a scenario that tries several variants saw: they must all have had
 * the same outcome (each JSON-encoded into `outcomes`), which is returned.
 */
export function sameOutcome(outcomes: Set<string>): Outcome {
  assert.equal(outcomes.size, 1, [...outcomes].join(' '));
  return JSON.parse([...outcomes][0]!) as Outcome;
}

// ---------------------------------------------------------------------------
// drivers

export const ascii = (s: string) => new TextEncoder().encode(s);

/** The outcome a cell heard by the hostile peer or the fake relay stands for: END (its reason) or DESTROY. */
export function outcomeOf(h: Heard): Outcome {
  if (h.kind === 'destroy') return { kind: 'destroy', reason: h.reason };
  if (h.cell.command === RelayCommand.END) return { kind: 'end', reason: h.cell.data[0]! };
  throw new Error(`not an answer: relay command ${h.cell.command}`);
}

/** A BEGIN to a closed port on a fresh stream is answered on that stream (END CONNECTREFUSED at an exit, EXITPOLICY elsewhere): the circuit works. */
export async function assertRelayCircuitWorks(peer: HostilePeer, circ: PeerCircuit, streamId: number): Promise<void> {
  peer.sendRelay(circ, RelayCommand.BEGIN, streamId, encodeBegin({ host: '127.0.0.1', port: await closedPort(), flags: 0 }));
  const answer = outcomeOf(await answerFor(peer, circ, streamId));
  assert.equal(answer.kind, 'end', 'the circuit still works');
}

/** Relay rows: a fresh hostile peer on a relay, one circuit; `act` sends, the answer about `streamId` is the outcome. */
export async function atRelay(
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
export const holding = (t: TestContext) => destination(t);

/** A real client with one built circuit (`victim`) to a fake relay, fixed windows. */
export const fresh = async (t: TestContext) => {
  const c = await clientAgainstFake(t);
  return { ...c, victim: await c.build() };
};

/** A client whose hop to the fake runs congestion control (Vegas, XON/XOFF: §7.3-7.4). */
export const freshCc = async (t: TestContext) => {
  const c = await clientAgainstFake(t);
  return { ...c, victim: await c.build({ flow: congestionControlFlow(DEFAULT_CONGESTION_PARAMS, 'client') }) };
};

/** An XOFF body (version 0) and an XON body (version 0, rate 0), §7.4. */
export const XOFF_BODY = Uint8Array.of(0);
export const XON_BODY = Uint8Array.of(0, 0, 0, 0, 0);

/** Client rows: what the client answered about `streamId`; END rows also check the circuit still opens streams. */
export async function clientOutcome(c: Awaited<ReturnType<typeof fresh>>, streamId: number): Promise<Outcome> {
  const outcome = outcomeOf(await c.clientAnswer(c.victim.fc, streamId));
  if (outcome.kind === 'end') {
    assert.equal(c.victim.circuit.closed, false, 'the circuit lives');
    await c.open(c.victim);
  }
  return outcome;
}
