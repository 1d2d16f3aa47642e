/**
 * A hostile client against one relay (docs/protocol.md §2-§7): hand-built
 * cells on an anonymous link. For every abuse the relay must answer as the
 * spec says (DESTROY for that circuit, END, or closing the link where §2 says
 * so), keep the link and the other circuits on it alive otherwise, and keep
 * serving a bystander client on another link.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ChannelCommand, cellCircuitId } from '../../src/cell/channel-cell.js';
import { encodeCreate2 } from '../../src/cell/create2.js';
import { encodeExtend2, targetToSpecifiers, LinkSpecifierType } from '../../src/cell/extend2.js';
import { RelayCommand } from '../../src/cell/relay-cell.js';
import { DestroyReason, EndReason } from '../../src/cell/reasons.js';
import { encodeBegin, encodeResolve } from '../../src/cell/stream-messages.js';
import { decodeRelayMsg } from '../../src/cell/relay-msg.js';
import { encodeSendmeV1 } from '../../src/cell/sendme.js';
import { HANDSHAKE_TYPE_NTOR_V3 } from '../../src/constants.js';
import { crypto } from '../../src/crypto/crypto.js';
import { startRelay } from '../../relay/relay.js';
import { loadRelayKeys } from '../../relay/keys.js';
import { HostilePeer, closedPort, tcpServer, tcpTarget, tempDir, type PeerCircuit } from './hostile-peer.js';
import { assertCircuitWorks, assertLinkWorks, bystander, setup } from './bystander.js';

test('CREATE2 abuse: each bad CREATE2 gets DESTROY PROTOCOL for its id, the link and its good circuits live on', { timeout: 20_000 }, async (t) => {
  const { peer, bystanderWorks } = await setup(t);
  const good = await peer.create();
  const refused = async (id: number, body: Uint8Array, what: string) => {
    peer.sendCell(id, ChannelCommand.CREATE2, body);
    assert.equal(await peer.destroyed(id), DestroyReason.PROTOCOL, what);
    assert.equal(peer.channel.closed, false, `${what}: link closed`);
  };
  const valid = () => encodeCreate2({ handshakeType: HANDSHAKE_TYPE_NTOR_V3, handshakeData: peer.onionskin().onionskin });

  // An id from the responder's half (high bit clear), as the initiator.
  await refused(0x00000005, valid(), 'wrong half');
  await refused(0x7fffffff, valid(), 'wrong half (top)');
  // Handshake types other than ntor v3 (0 TAP, 1 fast, 2 ntor, unknown).
  for (const type of [0, 1, 2, 0xffff]) {
    await refused(peer.freshId(), encodeCreate2({ handshakeType: type, handshakeData: peer.onionskin().onionskin }), `handshake type ${type}`);
  }
  // Garbage onionskins: random, short, empty, length beyond the cell, another relay's identity, a zero key.
  await refused(peer.freshId(), encodeCreate2({ handshakeType: 3, handshakeData: crypto.randomBytes(129) }), 'random onionskin');
  await refused(peer.freshId(), encodeCreate2({ handshakeType: 3, handshakeData: crypto.randomBytes(40) }), 'short onionskin');
  await refused(peer.freshId(), encodeCreate2({ handshakeType: 3, handshakeData: new Uint8Array(0) }), 'empty onionskin');
  await refused(peer.freshId(), new Uint8Array([0, 3, 0xff, 0xff]), 'length beyond the cell');
  const forged = peer.onionskin().onionskin;
  forged[0]! ^= 1; // the ID field no longer names this relay
  await refused(peer.freshId(), encodeCreate2({ handshakeType: 3, handshakeData: forged }), 'wrong relay identity');
  const tampered = peer.onionskin().onionskin;
  tampered[tampered.length - 1]! ^= 1; // CMAC
  await refused(peer.freshId(), encodeCreate2({ handshakeType: 3, handshakeData: tampered }), 'bad CMAC');
  const zeroKey = peer.onionskin().onionskin;
  zeroKey.fill(0, 64, 96); // X = 0, a small-order point
  await refused(peer.freshId(), encodeCreate2({ handshakeType: 3, handshakeData: zeroKey }), 'all-zero X');

  // A refused id was never a circuit: a good CREATE2 may use it afterwards.
  const id = peer.freshId();
  await refused(id, encodeCreate2({ handshakeType: 3, handshakeData: crypto.randomBytes(129) }), 'garbage, then reuse');
  await assertCircuitWorks(peer, await peer.create(id));

  await assertCircuitWorks(peer, good);
  await assertLinkWorks(peer);
  await bystanderWorks();
});

test('a CREATE2 for an id in use gets DESTROY, and that circuit is really gone (the id can be used again)', { timeout: 20_000 }, async (t) => {
  const { peer, bystanderWorks } = await setup(t);
  const other = await peer.create();
  const first = await peer.create();
  peer.sendCreate2(first.id, peer.onionskin().onionskin);
  assert.equal(await peer.destroyed(first.id), DestroyReason.PROTOCOL);
  // The relay told us circuit `first` is destroyed: cells on it are now dropped, not answered.
  peer.sendRelay(first, RelayCommand.BEGIN, 1, encodeBegin({ host: '10.0.0.1', port: 80, flags: 0 }));
  await peer.settle(100);
  assert.deepEqual(peer.pending(first.id), [], 'a circuit the relay said it destroyed still answers');
  // And the id is free again.
  await assertCircuitWorks(peer, await peer.create(first.id));
  await assertCircuitWorks(peer, other);
  await bystanderWorks();
});

test('a cell on circuit id 0 other than PADDING closes the link (§2); PADDING is ignored; others are unaffected', { timeout: 20_000 }, async (t) => {
  const { target, peer, bystanderWorks } = await setup(t);
  peer.sendCell(0, ChannelCommand.PADDING, crypto.randomBytes(509));
  await assertLinkWorks(peer);
  for (const command of [ChannelCommand.CREATE2, ChannelCommand.RELAY, ChannelCommand.DESTROY, 77]) {
    const victim = await HostilePeer.connect(t, target);
    const circ = await victim.create();
    victim.sendCell(0, command, command === ChannelCommand.CREATE2 ? encodeCreate2({ handshakeType: 3, handshakeData: victim.onionskin().onionskin }) : undefined);
    await victim.linkClosed();
    assert.equal(victim.pending(circ.id).filter((c) => c[4] !== ChannelCommand.DESTROY).length, 0);
  }
  await assertLinkWorks(peer);
  await bystanderWorks();
});

test('cells for circuit ids the relay does not know are dropped; the link stays up', { timeout: 20_000 }, async (t) => {
  const { peer, bystanderWorks } = await setup(t);
  const good = await peer.create();
  const unknownIds = [0x80001234, 0x00001234, 0xffffffff];
  for (const id of unknownIds) {
    peer.sendCell(id, ChannelCommand.RELAY, crypto.randomBytes(509));
    peer.sendCell(id, ChannelCommand.RELAY_EARLY, crypto.randomBytes(509));
    peer.sendCell(id, ChannelCommand.DESTROY, new Uint8Array([DestroyReason.REQUESTED]));
    peer.sendCell(id, ChannelCommand.CREATED2, crypto.randomBytes(100));
  }
  // The same, 500 times over, to be sure nothing accumulates or answers.
  for (let i = 0; i < 500; i++) peer.sendCell(0x80100000 + i, ChannelCommand.RELAY, crypto.randomBytes(509));
  await assertCircuitWorks(peer, good);
  for (const id of unknownIds) assert.deepEqual(peer.pending(id), [], `answer for unknown id ${id.toString(16)}`);
  assert.equal(peer.received.filter((c) => cellCircuitId(c) >= 0x80100000 && cellCircuitId(c) < 0x80100000 + 500).length, 0);
  await assertLinkWorks(peer);
  await bystanderWorks();
});

test('an unknown channel command destroys that circuit only (§2)', { timeout: 20_000 }, async (t) => {
  const { peer, bystanderWorks } = await setup(t);
  const victim = await peer.create();
  const other = await peer.create();
  for (const command of [1 /* CREATE (TAP) */, 5 /* CREATE_FAST */, 7 /* VERSIONS */, 128, 255]) {
    const circ = await peer.create();
    peer.sendCell(circ.id, command);
    assert.equal(await peer.destroyed(circ.id), DestroyReason.PROTOCOL, `command ${command}`);
  }
  // A CREATED2 toward a relay on the client side of a circuit is out of place too.
  peer.sendCell(victim.id, ChannelCommand.CREATED2, crypto.randomBytes(66));
  assert.equal(await peer.destroyed(victim.id), DestroyReason.PROTOCOL);
  // Unknown command on an unknown id: DESTROY, nothing else.
  peer.sendCell(0x80777777, 200);
  assert.equal(await peer.destroyed(0x80777777), DestroyReason.PROTOCOL);
  await assertCircuitWorks(peer, other);
  await bystanderWorks();
});

test('more than 8 RELAY_EARLY cells on one circuit destroy it; 8 are fine', { timeout: 20_000 }, async (t) => {
  const { peer, bystanderWorks } = await setup(t);
  const circ = await peer.create();
  const other = await peer.create();
  for (let i = 0; i < 8; i++) peer.sendRelay(circ, RelayCommand.DROP, 0, new Uint8Array(0), true);
  await assertCircuitWorks(peer, circ);
  peer.sendRelay(circ, RelayCommand.DROP, 0, new Uint8Array(0), true);
  assert.equal(await peer.destroyed(circ.id), DestroyReason.PROTOCOL);
  // Even a RELAY_EARLY that would not decrypt counts, and the 9th is refused before any crypto.
  const second = await peer.create();
  for (let i = 0; i < 8; i++) peer.sendRelay(second, RelayCommand.DROP, 0, new Uint8Array(0), true);
  peer.sendCell(second.id, ChannelCommand.RELAY_EARLY, crypto.randomBytes(509));
  assert.equal(await peer.destroyed(second.id), DestroyReason.PROTOCOL);
  await assertCircuitWorks(peer, other);
  await assertLinkWorks(peer);
  await bystanderWorks();
});

test('EXTEND2 out of place: in a plain RELAY cell, to the relay itself, malformed, twice → circuit destroyed', { timeout: 20_000 }, async (t) => {
  const { target, peer, bystanderWorks } = await setup(t);
  const other = await peer.create();
  const self = { address: '127.0.0.1', port: 9001, identity: target.keys.identity.identity, linkKey: target.keys.linkKey.public };
  const elsewhere = loadRelayKeys(tempDir(t));
  const stranger = { address: '127.0.0.1', port: 9002, identity: elsewhere.identity.identity, linkKey: elsewhere.linkKey.public };
  const extend2 = (to: typeof self) =>
    encodeExtend2({ specifiers: targetToSpecifiers(to), handshakeType: HANDSHAKE_TYPE_NTOR_V3, handshakeData: peer.onionskin().onionskin });

  const cases: Array<[string, (circ: PeerCircuit) => void]> = [
    ['EXTEND2 in a plain RELAY cell', (circ) => peer.sendRelay(circ, RelayCommand.EXTEND2, 0, extend2(stranger), false)],
    ['EXTEND2 to the relay itself', (circ) => peer.sendRelay(circ, RelayCommand.EXTEND2, 0, extend2(self), true)],
    ['EXTEND2 on a stream id', (circ) => peer.sendRelay(circ, RelayCommand.EXTEND2, 7, extend2(stranger), true)],
    ['EXTEND2 without a link key', (circ) => {
      const specifiers = targetToSpecifiers(stranger).filter((s) => s.type !== LinkSpecifierType.ALLIUM_LINK_KEY);
      peer.sendRelay(circ, RelayCommand.EXTEND2, 0, encodeExtend2({ specifiers, handshakeType: 3, handshakeData: peer.onionskin().onionskin }), true);
    }],
    ['EXTEND2 with two identities', (circ) => {
      const specifiers = [...targetToSpecifiers(stranger), { type: LinkSpecifierType.ED25519_ID, body: self.identity }];
      peer.sendRelay(circ, RelayCommand.EXTEND2, 0, encodeExtend2({ specifiers, handshakeType: 3, handshakeData: peer.onionskin().onionskin }), true);
    }],
    ['EXTEND2 truncated', (circ) => peer.sendRelay(circ, RelayCommand.EXTEND2, 0, extend2(stranger).subarray(0, 50), true)],
    ['obsolete EXTEND', (circ) => peer.sendRelay(circ, RelayCommand.EXTEND, 0, extend2(stranger), true)],
  ];
  for (const [what, attack] of cases) {
    const circ = await peer.create();
    attack(circ);
    assert.equal(await peer.destroyed(circ.id), DestroyReason.PROTOCOL, what);
  }
  await assertCircuitWorks(peer, other);
  await assertLinkWorks(peer);
  await bystanderWorks();
});

test('EXTEND2 that cannot be completed ends the circuit in bounded time (connect refused; second EXTEND2 while pending)', { timeout: 20_000 }, async (t) => {
  // A real relay with a real channel pool, on 127.0.0.1:0, publishing nothing.
  const dataDir = tempDir(t);
  const relay = await startRelay({ nickname: 'hostile0', dataDir, address: '127.0.0.1', port: 0, authorities: [], exit: false });
  t.after(() => relay.close());
  // startRelay keeps its keys in its data directory: read the same keys back for the peer.
  const tcp = tcpTarget(loadRelayKeys(dataDir), relay.port);
  const check = await bystander(t, tcp);
  const peer = await HostilePeer.connect(t, tcp);
  const other = await peer.create();

  const elsewhere = loadRelayKeys(tempDir(t));
  const port = await closedPort();
  const circ = await peer.create();
  const started = Date.now();
  peer.sendRelay(circ, RelayCommand.EXTEND2, 0, encodeExtend2({
    specifiers: targetToSpecifiers({ address: '127.0.0.1', port, identity: elsewhere.identity.identity, linkKey: elsewhere.linkKey.public }),
    handshakeType: HANDSHAKE_TYPE_NTOR_V3,
    handshakeData: peer.onionskin().onionskin,
  }), true);
  const reason = await peer.destroyed(circ.id, 16_000);
  assert.ok(reason === DestroyReason.CONNECTFAILED || reason === DestroyReason.TIMEOUT, `reason ${reason}`);
  assert.ok(Date.now() - started < 15_500, 'took longer than the 15 s extend limit');

  // A listener that accepts and never answers the link handshake: a second EXTEND2 while that is pending.
  const { port: silentPort } = await tcpServer(t, () => {});
  const slow = await peer.create();
  const slowExtend = () => encodeExtend2({
    specifiers: targetToSpecifiers({ address: '127.0.0.1', port: silentPort, identity: elsewhere.identity.identity, linkKey: elsewhere.linkKey.public }),
    handshakeType: HANDSHAKE_TYPE_NTOR_V3,
    handshakeData: peer.onionskin().onionskin,
  });
  peer.sendRelay(slow, RelayCommand.EXTEND2, 0, slowExtend(), true);
  peer.sendRelay(slow, RelayCommand.EXTEND2, 0, slowExtend(), true);
  assert.equal(await peer.destroyed(slow.id), DestroyReason.PROTOCOL);

  await assertCircuitWorks(peer, other);
  await assertLinkWorks(peer);
  await check();
});

test('relay cells the last hop cannot use destroy the circuit: garbage, bad length, unknown or reserved commands', { timeout: 20_000 }, async (t) => {
  const { peer, bystanderWorks } = await setup(t);
  const other = await peer.create();
  const cases: Array<[string, (circ: PeerCircuit) => void]> = [
    ['random payload (recognized by nobody, no next hop)', (circ) => peer.sendCell(circ.id, ChannelCommand.RELAY, crypto.randomBytes(509))],
    ['sealed with the wrong layer', (circ) => {
      const payload = new Uint8Array(509);
      payload[0] = RelayCommand.DROP;
      circ.layers.backward.seal(payload); // a layer the relay does not use for this direction
      peer.sendCell(circ.id, ChannelCommand.RELAY, payload);
    }],
    ['length field above 498', (circ) => {
      const payload = new Uint8Array(509);
      payload[0] = RelayCommand.DROP;
      payload[9] = 0x01;
      payload[10] = 0xf3; // 499
      circ.layers.forward.seal(payload);
      peer.sendCell(circ.id, ChannelCommand.RELAY, payload);
    }],
    ['unknown relay command 99', (circ) => peer.sendRelay(circ, 99, 0)],
    ['TRUNCATE with a stream id', (circ) => peer.sendRelay(circ, RelayCommand.TRUNCATE, 3)],
    ['TRUNCATED forward', (circ) => peer.sendRelay(circ, RelayCommand.TRUNCATED, 0)],
    ['RESOLVE on stream 0', (circ) => peer.sendRelay(circ, RelayCommand.RESOLVE, 0, encodeResolve('example.com'))],
    ['BEGIN_DIR on stream 0', (circ) => peer.sendRelay(circ, RelayCommand.BEGIN_DIR, 0)],
    ['CONNECTED forward', (circ) => peer.sendRelay(circ, RelayCommand.CONNECTED, 1)],
    ['EXTENDED2 forward', (circ) => peer.sendRelay(circ, RelayCommand.EXTENDED2, 0, new Uint8Array(2))],
    ['EXTENDED forward', (circ) => peer.sendRelay(circ, RelayCommand.EXTENDED, 0)],
  ];
  for (const [what, attack] of cases) {
    const circ = await peer.create();
    attack(circ);
    assert.equal(await peer.destroyed(circ.id), DestroyReason.PROTOCOL, what);
  }
  // TRUNCATE at the last hop is answered with TRUNCATED REQUESTED; the circuit lives.
  const truncated = await peer.create();
  peer.sendRelay(truncated, RelayCommand.TRUNCATE, 0);
  const reply = await peer.relay(truncated, 'TRUNCATED');
  assert.deepEqual([reply.command, reply.streamId, reply.data[0]], [RelayCommand.TRUNCATED, 0, DestroyReason.REQUESTED]);
  await assertCircuitWorks(peer, truncated);
  // BEGIN_DIR at a relay with no directory handler: END NOTDIRECTORY; the circuit lives.
  const dir = await peer.create();
  peer.sendRelay(dir, RelayCommand.BEGIN_DIR, 4);
  const end = await peer.relay(dir, 'END NOTDIRECTORY');
  assert.deepEqual([end.command, end.streamId, end.data[0]], [RelayCommand.END, 4, EndReason.NOTDIRECTORY]);
  await assertCircuitWorks(peer, dir);
  // RESOLVE at a non-exit: RESOLVED with one non-transient error; a malformed one: END TORPROTOCOL. The circuit lives.
  const resolving = await peer.create();
  peer.sendRelay(resolving, RelayCommand.RESOLVE, 5, encodeResolve('example.com'));
  const resolved = await peer.relay(resolving, 'RESOLVED');
  assert.equal(resolved.streamId, 5);
  assert.deepEqual(decodeRelayMsg(resolved.command, resolved.data), { kind: 'resolved', answers: [{ type: 'error', transient: false, ttl: 0 }] });
  peer.sendRelay(resolving, RelayCommand.RESOLVE, 6, encodeBegin({ host: 'example.com', port: 80, flags: 0 }));
  const refused = await peer.relay(resolving, 'END TORPROTOCOL');
  assert.deepEqual([refused.command, refused.streamId, refused.data[0]], [RelayCommand.END, 6, EndReason.TORPROTOCOL]);
  await assertCircuitWorks(peer, resolving);
  // DROP is long-range padding: ignored, the circuit lives.
  const padded = await peer.create();
  for (let i = 0; i < 20; i++) peer.sendRelay(padded, RelayCommand.DROP, 0, crypto.randomBytes(100));
  await assertCircuitWorks(peer, padded);
  await assertCircuitWorks(peer, other);
  await assertLinkWorks(peer);
  await bystanderWorks();
});

test('stream abuse at a non-exit: BEGIN gets END EXITPOLICY, a bad BEGIN END TORPROTOCOL; BEGIN on stream 0, DATA/END/SENDME for unknown streams destroy the circuit', { timeout: 20_000 }, async (t) => {
  const { peer, bystanderWorks } = await setup(t);
  const other = await peer.create();
  // A non-exit refuses every BEGIN, hostnames and addresses alike, and keeps the circuit.
  const circ = await peer.create();
  for (const host of ['127.0.0.1', 'localhost', 'example.com', '::1']) {
    peer.sendRelay(circ, RelayCommand.BEGIN, 5, encodeBegin({ host, port: 80, flags: 0 }));
    const end = await peer.relay(circ, `END for ${host}`);
    assert.deepEqual([end.command, end.streamId, end.data[0]], [RelayCommand.END, 5, EndReason.EXITPOLICY]);
  }
  const text = (s: string) => new TextEncoder().encode(s);
  // A BEGIN whose body does not decode ends that stream only (§6.4): END TORPROTOCOL, the circuit lives.
  const badBegins: Array<[string, Uint8Array]> = [
    ['BEGIN without NUL', text('127.0.0.1:80')],
    ['BEGIN without a port', text('127.0.0.1\0')],
    ['BEGIN port 0', text('127.0.0.1:0\0')],
    ['BEGIN port 70000', text('127.0.0.1:70000\0')],
    ['BEGIN bad host characters', text('exa mple.com:80\0')],
    ['BEGIN bad IPv6', text('[::g]:80\0')],
    ['BEGIN truncated flags', text('a.com:80\0\x01\x02')],
  ];
  for (const [what, body] of badBegins) {
    peer.sendRelay(circ, RelayCommand.BEGIN, 6, body);
    const end = await peer.relay(circ, `END for ${what}`);
    assert.deepEqual([end.command, end.streamId, end.data[0]], [RelayCommand.END, 6, EndReason.TORPROTOCOL], what);
  }
  const cases: Array<[string, (circ: PeerCircuit) => void]> = [
    ['BEGIN on stream 0', (c) => peer.sendRelay(c, RelayCommand.BEGIN, 0, encodeBegin({ host: '10.0.0.1', port: 80, flags: 0 }))],
    ['DATA for a stream never opened', (c) => peer.sendRelay(c, RelayCommand.DATA, 9, text('hello'))],
    ['DATA on stream 0', (c) => peer.sendRelay(c, RelayCommand.DATA, 0, text('hello'))],
    ['END on stream 0', (c) => peer.sendRelay(c, RelayCommand.END, 0, new Uint8Array([EndReason.DONE]))],
    ['END for a stream never opened', (c) => peer.sendRelay(c, RelayCommand.END, 9, new Uint8Array([EndReason.DONE]))],
    ['stream SENDME for a stream never opened', (c) => peer.sendRelay(c, RelayCommand.SENDME, 9)],
    ['circuit SENDME version 0', (c) => peer.sendRelay(c, RelayCommand.SENDME, 0)],
    ['circuit SENDME with a wrong digest, none due', (c) => peer.sendRelay(c, RelayCommand.SENDME, 0, encodeSendmeV1(crypto.randomBytes(20)))],
    ['circuit SENDME version 7', (c) => peer.sendRelay(c, RelayCommand.SENDME, 0, new Uint8Array([7, 0, 0]))],
  ];
  for (const [what, attack] of cases) {
    const victim = await peer.create();
    attack(victim);
    assert.equal(await peer.destroyed(victim.id), DestroyReason.PROTOCOL, what);
  }
  await assertCircuitWorks(peer, circ);
  await assertCircuitWorks(peer, other);
  await bystanderWorks();
});

test('at an exit: a circuit SENDME with the wrong digest destroys the circuit, the right one keeps data flowing', { timeout: 20_000 }, async (t) => {
  const { peer, bystanderWorks } = await setup(t, { exit: true });
  // A destination that sends 150 cells' worth on connect. The exit's circuit window is 1000, so it sends all
  // 150; the 100th DATA cell is the one our circuit SENDME must authenticate (its running digest, §7).
  const size = 150 * 498;
  const { port } = await tcpServer(t, (socket) => socket.end(crypto.randomBytes(size)));

  const run = async (honest: boolean) => {
    const circ = await peer.create();
    peer.sendRelay(circ, RelayCommand.BEGIN, 1, encodeBegin({ host: '127.0.0.1', port, flags: 0 }));
    const connected = await peer.relay(circ, 'CONNECTED');
    assert.equal(connected.command, RelayCommand.CONNECTED);
    let cells = 0;
    let digestAt100: Uint8Array | null = null;
    while (cells < 100) {
      const cell = await peer.relay(circ, 'DATA');
      if (cell.command !== RelayCommand.DATA) continue;
      cells++;
      if (cells === 100) digestAt100 = circ.layers.backward.lastDigest;
    }
    const digest = honest ? digestAt100! : crypto.randomBytes(20);
    peer.sendRelay(circ, RelayCommand.SENDME, 0, encodeSendmeV1(digest));
    return circ;
  };

  const liar = await run(false);
  assert.equal(await peer.destroyed(liar.id), DestroyReason.PROTOCOL);

  const honest = await run(true);
  // The circuit lives on: the rest of the data and END arrive, and a second circuit SENDME (none due) would be refused.
  for (;;) {
    const cell = await peer.relay(honest, 'rest of the data');
    if (cell.command === RelayCommand.END) break;
  }
  await assertCircuitWorks(peer, honest);
  peer.sendRelay(honest, RelayCommand.SENDME, 0, encodeSendmeV1(honest.layers.backward.lastDigest));
  assert.equal(await peer.destroyed(honest.id), DestroyReason.PROTOCOL);
  await bystanderWorks();
});

/** Node's gc(), without --expose-gc on the command line. */
