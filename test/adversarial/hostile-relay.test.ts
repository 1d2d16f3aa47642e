/**
 * Hostile relays (docs/protocol.md §2, §4.4, §6.2): a fake relay with real
 * keys that completes the circuit handshake and then sends cells nobody
 * asked for.
 *
 * - Toward a client (OriginCircuit, its only hop): anything unexpected
 *   destroys that circuit (DESTROY PROTOCOL to the relay), and only that one.
 * - As the next hop of a real relay core: a RELAY_EARLY travelling backward,
 *   an unexpected CREATED2, a CREATE2 on an id in use or an unknown command
 *   destroys the circuit both ways; a DESTROY is passed to the client with
 *   its reason; the link closing destroys its circuits with CHANNEL_CLOSED.
 *   The relay's other circuits and its link to the client live on.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { ChannelCommand, cellCircuitId, encodeChannelCell } from '../../src/cell/channel-cell.js';
import { encodeCreate2, encodeCreated2 } from '../../src/cell/create2.js';
import { decodeExtended2, encodeExtend2, targetToSpecifiers } from '../../src/cell/extend2.js';
import { RelayCommand, decodeRelayCell, encodeRelayCell, type DecodedRelayCell } from '../../src/cell/relay-cell.js';
import { DestroyReason, EndReason } from '../../src/cell/reasons.js';
import { encodeConnected, encodeEnd } from '../../src/cell/stream-messages.js';
import { encodeSendmeV1 } from '../../src/cell/sendme.js';
import { HANDSHAKE_TYPE_NTOR_V3, TOR1_KEY_MATERIAL_LENGTH } from '../../src/constants.js';
import { ntorV3ClientFinish, ntorV3ClientStart } from '../../src/crypto/ntor-v3.js';
import { tor1Layers, type HopLayers } from '../../src/crypto/onion-layer.js';
import { CIRCUIT_VERIFICATION, EMPTY_NTOR_MESSAGE } from '../../src/circuit/handshake-params.js';
import { ChannelCircuits } from '../../src/circuit/circuit-ids.js';
import { crypto } from '../../src/crypto/crypto.js';
import { Channel } from '../../src/link/channel.js';
import { CircuitDestroyedError } from '../../src/errors.js';
import { OriginCircuit } from '../../client/origin-circuit.js';
import { duplexPair } from '../support/duplex-pair.js';
import { FakeRelay, type FakeCircuit } from './fake-relay.js';
import { HostilePeer, WAIT_MS, memoryRelay, type PeerCircuit } from './hostile-peer.js';

/** Resolves with the circuit's close error; rejects if it stays open `ms`. */
function closedWithin(circuit: OriginCircuit, ms = WAIT_MS): Promise<Error> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('circuit still open')), ms);
    circuit.onClose((error) => {
      clearTimeout(timer);
      resolve(error);
    });
  });
}

// ---------------------------------------------------------------------------
// a hostile relay as the client's only hop

async function clientAgainstFake(t: TestContext) {
  const fake = new FakeRelay(t);
  const [near, far] = duplexPair();
  const accepted = fake.accept(far);
  const channel = await Channel.connect(near, { peerLinkKey: fake.info.linkKey, peerIdentity: fake.info.identity, timeoutMs: WAIT_MS });
  t.after(() => channel.destroy());
  await accepted;
  const table = new ChannelCircuits<OriginCircuit>();
  channel.on('cell', (cell: Uint8Array) => table.get(cellCircuitId(cell))?.circuit.receive(cell));
  const build = async (): Promise<{ circuit: OriginCircuit; fc: FakeCircuit }> => {
    const circuit = await OriginCircuit.build(channel, table, [fake.info], WAIT_MS);
    return { circuit, fc: fake.circuits.find((c) => c.id === circuit.id)! };
  };
  /** Open a stream the fake answers with CONNECTED. */
  const openStream = async (circuit: OriginCircuit, fc: FakeCircuit) => {
    const before = fc.messages.length;
    const opening = circuit.openStream('127.0.0.1', 80, WAIT_MS);
    await fake.until(() => fc.messages.length > before, 'BEGIN');
    const begin = fc.messages[fc.messages.length - 1]!;
    assert.equal(begin.command, RelayCommand.BEGIN);
    fake.sendRelay(fc, RelayCommand.CONNECTED, begin.streamId, encodeConnected('127.0.0.1'));
    return { stream: await opening, streamId: begin.streamId };
  };
  return { fake, channel, build, openStream };
}

test('a client destroys its circuit when its exit sends what it did not ask for; its other circuits live on', { timeout: 20_000 }, async (t) => {
  const { fake, channel, build, openStream } = await clientAgainstFake(t);
  const control = await build();
  await openStream(control.circuit, control.fc);

  const cases: Array<[string, (c: { circuit: OriginCircuit; fc: FakeCircuit }) => Promise<void> | void]> = [
    ['CONNECTED for a stream never opened', ({ fc }) => fake.sendRelay(fc, RelayCommand.CONNECTED, 7, encodeConnected('127.0.0.1'))],
    ['a second CONNECTED for an open stream', async ({ circuit, fc }) => {
      const { streamId } = await openStream(circuit, fc);
      fake.sendRelay(fc, RelayCommand.CONNECTED, streamId, encodeConnected('127.0.0.1'));
    }],
    ['DATA for a stream never opened', ({ fc }) => fake.sendRelay(fc, RelayCommand.DATA, 7, new Uint8Array([1, 2, 3]))],
    ['END for a stream never opened', ({ fc }) => fake.sendRelay(fc, RelayCommand.END, 7, encodeEnd(EndReason.DONE))],
    ['a relay cell no hop recognizes', ({ fc }) => fc.channel.sendCell(encodeChannelCell(fc.id, ChannelCommand.RELAY, crypto.randomBytes(509)))],
    ['RELAY_EARLY travelling backward', ({ fc }) => fake.sendRelay(fc, RelayCommand.DROP, 0, new Uint8Array(0), ChannelCommand.RELAY_EARLY)],
    ['EXTENDED2 with no extension pending', ({ fc }) => fake.sendRelay(fc, RelayCommand.EXTENDED2, 0, new Uint8Array(66))],
    ['TRUNCATED', ({ fc }) => fake.sendRelay(fc, RelayCommand.TRUNCATED, 0, new Uint8Array([DestroyReason.REQUESTED]))],
    ['BEGIN travelling backward', ({ fc }) => fake.sendRelay(fc, RelayCommand.BEGIN, 7, new TextEncoder().encode('127.0.0.1:80\0'))],
    ['EXTEND2 travelling backward', ({ fc }) => fake.sendRelay(fc, RelayCommand.EXTEND2, 0, new Uint8Array(10))],
    ['unknown relay command 99', ({ fc }) => fake.sendRelay(fc, 99, 0)],
    ['a circuit SENDME when none is due', ({ fc }) => fake.sendRelay(fc, RelayCommand.SENDME, 0, encodeSendmeV1(crypto.randomBytes(20)))],
    ['a second CREATED2', ({ fc }) => fc.channel.sendCell(encodeChannelCell(fc.id, ChannelCommand.CREATED2, encodeCreated2(crypto.randomBytes(64))))],
    ['an unknown channel command', ({ fc }) => fc.channel.sendCell(encodeChannelCell(fc.id, 42))],
    ['DATA beyond the stream window while the application does not read', async ({ circuit, fc }) => {
      const { streamId } = await openStream(circuit, fc);
      // The client grants credit only as far as its stream buffer (64 KiB) takes the data: 1000 cells overrun it.
      for (let i = 0; i < 1000; i++) fake.sendRelay(fc, RelayCommand.DATA, streamId, new Uint8Array(498));
    }],
  ];
  for (const [what, attack] of cases) {
    const victim = await build();
    const closed = closedWithin(victim.circuit);
    await attack(victim);
    const error = await closed.catch((e: Error) => assert.fail(`${what}: ${e.message}`));
    assert.ok(error instanceof CircuitDestroyedError, what);
    assert.equal(await fake.destroyed(victim.fc), DestroyReason.PROTOCOL, what);
  }
  assert.equal(control.circuit.closed, false);
  assert.equal(channel.closed, false);
  await openStream(control.circuit, control.fc);
});

// ---------------------------------------------------------------------------
// a hostile relay as the next hop of a real relay

interface TwoHop {
  id: number;
  hops: [HopLayers, HopLayers];
  fc: FakeCircuit;
}

async function relayWithHostileNextHop(t: TestContext) {
  const fake = new FakeRelay(t);
  const target = memoryRelay(t, {
    // Every EXTEND2 reaches the fake; the relay's link manager shares one link among the circuits.
    transport: {
      connect: async () => {
        const [near, far] = duplexPair();
        void fake.accept(far).catch(() => far.destroy());
        return near;
      },
    },
  });
  const peer = await HostilePeer.connect(t, target);
  const bystander = await HostilePeer.connect(t, target);
  const bystanderCirc = await bystander.create();

  const extend = async (): Promise<TwoHop> => {
    const circ = await peer.create();
    const { state, onionskin } = ntorV3ClientStart({ identity: fake.info.identity, onionKey: fake.info.ntorOnionKey }, EMPTY_NTOR_MESSAGE, CIRCUIT_VERIFICATION);
    const specifiers = targetToSpecifiers({ address: fake.info.address, port: fake.info.orPort, identity: fake.info.identity, linkKey: fake.info.linkKey });
    peer.sendRelay(circ, RelayCommand.EXTEND2, 0, encodeExtend2({ specifiers, handshakeType: HANDSHAKE_TYPE_NTOR_V3, handshakeData: onionskin }), true);
    const reply = await peer.relay(circ, 'EXTENDED2');
    assert.equal(reply.command, RelayCommand.EXTENDED2);
    const hop2 = tor1Layers(ntorV3ClientFinish(state, decodeExtended2(reply.data), TOR1_KEY_MATERIAL_LENGTH).keyMaterial);
    return { id: circ.id, hops: [circ.layers, hop2], fc: fake.circuits[fake.circuits.length - 1]! };
  };

  /** DROP "ping" to the fake and DROP "pong" back: the two-hop circuit carries cells both ways. */
  const assertTwoHopWorks = async (c: TwoHop) => {
    const payload = encodeRelayCell({ command: RelayCommand.DROP, streamId: 0, data: new TextEncoder().encode('ping') });
    c.hops[1].forward.seal(payload);
    c.hops[0].forward.crypt(payload);
    const before = c.fc.messages.length;
    peer.sendCell(c.id, ChannelCommand.RELAY, payload);
    await fake.until(() => c.fc.messages.length > before, 'ping at the fake');
    fake.sendRelay(c.fc, RelayCommand.DROP, 0, new TextEncoder().encode('pong'));
    const cell = await peer.next((x) => cellCircuitId(x) === c.id && x[4] === ChannelCommand.RELAY, 'pong');
    const back = cell.subarray(5);
    c.hops[0].backward.crypt(back);
    assert.equal(c.hops[0].backward.open(back), false, 'pong recognized at hop 1');
    c.hops[1].backward.crypt(back);
    assert.equal(c.hops[1].backward.open(back), true, 'pong not recognized at hop 2');
    const message: DecodedRelayCell = decodeRelayCell(back);
    assert.equal(new TextDecoder().decode(message.data), 'pong');
  };

  const othersWork = async (control: TwoHop) => {
    await assertTwoHopWorks(control);
    assert.equal(peer.channel.closed, false);
    await assertOneHopWorks(bystander, bystanderCirc);
  };
  return { fake, peer, extend, assertTwoHopWorks, othersWork };
}

/** A DROP the relay ignores, then a BEGIN it refuses with END EXITPOLICY (it is not an exit). */
async function assertOneHopWorks(peer: HostilePeer, circ: PeerCircuit): Promise<void> {
  peer.sendRelay(circ, RelayCommand.BEGIN, 77, new TextEncoder().encode('10.0.0.1:80\0'));
  const end = await peer.relay(circ, 'END');
  assert.deepEqual([end.command, end.streamId, end.data[0]], [RelayCommand.END, 77, EndReason.EXITPOLICY]);
}

test('a relay whose next hop misbehaves destroys that circuit both ways and nothing else', { timeout: 20_000 }, async (t) => {
  const { fake, peer, extend, othersWork } = await relayWithHostileNextHop(t);
  const control = await extend();
  await othersWork(control);

  const cases: Array<[string, (c: TwoHop) => void]> = [
    ['RELAY_EARLY travelling backward', (c) => fake.sendRelay(c.fc, RelayCommand.DROP, 0, new Uint8Array(0), ChannelCommand.RELAY_EARLY)],
    ['CREATED2 with no extension pending', (c) => c.fc.channel.sendCell(encodeChannelCell(c.fc.id, ChannelCommand.CREATED2, encodeCreated2(crypto.randomBytes(64))))],
    ['CREATE2 on the id of a live circuit', (c) => {
      const { onionskin } = ntorV3ClientStart({ identity: c.fc.channel.peer.identity!, onionKey: crypto.randomBytes(32) }, EMPTY_NTOR_MESSAGE, CIRCUIT_VERIFICATION);
      c.fc.channel.sendCell(encodeChannelCell(c.fc.id, ChannelCommand.CREATE2, encodeCreate2({ handshakeType: 3, handshakeData: onionskin })));
    }],
    ['an unknown channel command', (c) => c.fc.channel.sendCell(encodeChannelCell(c.fc.id, 42))],
  ];
  for (const [what, attack] of cases) {
    const victim = await extend();
    attack(victim);
    assert.equal(await peer.destroyed(victim.id), DestroyReason.PROTOCOL, `${what}: toward the client`);
    assert.equal(await fake.destroyed(victim.fc), DestroyReason.PROTOCOL, `${what}: toward the next hop`);
    await othersWork(control);
  }

  // A DESTROY from the next hop reaches the client with its reason, and is not echoed back.
  const victim = await extend();
  victim.fc.channel.sendCell(encodeChannelCell(victim.fc.id, ChannelCommand.DESTROY, new Uint8Array([DestroyReason.HIBERNATING])));
  assert.equal(await peer.destroyed(victim.id), DestroyReason.HIBERNATING);
  await othersWork(control);
  assert.equal(fake.received.filter((r) => r.channel === victim.fc.channel && cellCircuitId(r.cell) === victim.fc.id && r.cell[4] === ChannelCommand.DESTROY).length, 0);
});

test('circuits the next hop opens toward the relay follow the id rules; its link closing destroys only its circuits', { timeout: 20_000 }, async (t) => {
  const { fake, peer, extend, assertTwoHopWorks } = await relayWithHostileNextHop(t);
  const a = await extend();
  const b = await extend();
  const toRelay = a.fc.channel; // the fake is the responder on this link: its ids have the high bit clear
  const answers = () => fake.received.filter((r) => r.channel === toRelay && cellCircuitId(r.cell) < 0x80000000);
  const makeCreate2 = () => {
    const { onionskin } = ntorV3ClientStart({ identity: toRelay.peer.identity!, onionKey: peer.target.keys.ntor.onionKey }, EMPTY_NTOR_MESSAGE, CIRCUIT_VERIFICATION);
    return encodeCreate2({ handshakeType: HANDSHAKE_TYPE_NTOR_V3, handshakeData: onionskin });
  };
  toRelay.sendCell(encodeChannelCell(0x00000042, ChannelCommand.CREATE2, makeCreate2()));
  await fake.until(() => answers().length === 1, 'CREATED2 from the relay');
  assert.equal(answers()[0]!.cell[4], ChannelCommand.CREATED2);
  // An unused id from the relay's own half: refused, and the relay's circuits on that link are untouched.
  toRelay.sendCell(encodeChannelCell(0x80000042, ChannelCommand.CREATE2, makeCreate2()));
  await fake.until(() => fake.received.some((r) => cellCircuitId(r.cell) === 0x80000042), 'DESTROY from the relay');
  assert.equal(fake.received.find((r) => cellCircuitId(r.cell) === 0x80000042)!.cell[5], DestroyReason.PROTOCOL);
  await assertTwoHopWorks(a);

  // The fake drops the link: both circuits through it end with CHANNEL_CLOSED at the client; a one-hop circuit does not.
  const oneHop = await peer.create();
  toRelay.destroy();
  assert.equal(await peer.destroyed(a.id), DestroyReason.CHANNEL_CLOSED);
  assert.equal(await peer.destroyed(b.id), DestroyReason.CHANNEL_CLOSED);
  await assertOneHopWorks(peer, oneHop);
  // And the relay extends again over a new link.
  await assertTwoHopWorks(await extend());
});
