/**
 * A client circuit's hop handshake (client/hop-handshake.ts; docs/protocol.md
 * §5, §6.3, §7.2) against the relay's side of ntor-v3 with real keys: the
 * CREATE2 cell and EXTEND2 message carry the onionskin; a good reply gives
 * the hop layers that match the relay's and the flow control both agreed on;
 * a reply nobody waits for, a forged reply, a circuit that closes, and a
 * closed circuit all fail the way the circuit relies on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ChannelCommand, cellCommand, cellPayload } from '../../src/cell/channel-cell.js';
import { decodeCreate2 } from '../../src/cell/create2.js';
import { decodeRelayMsg, encodeRelayMsg } from '../../src/cell/relay-msg.js';
import { DestroyReason } from '../../src/cell/reasons.js';
import { CELL_PAYLOAD_LENGTH, HANDSHAKE_TYPE_NTOR_V3, TOR1_KEY_MATERIAL_LENGTH } from '../../src/constants.js';
import { answerClientMessage } from '../../src/circuit/cc-negotiation.js';
import { CIRCUIT_VERIFICATION } from '../../src/circuit/handshake-params.js';
import { crypto } from '../../src/crypto/crypto.js';
import { ntorV3ServerHandshake, type NtorV3RelaySecret } from '../../src/crypto/ntor-v3.js';
import { tor1Layers } from '../../src/crypto/onion-layer.js';
import { CircuitDestroyedError, HandshakeError, ProtocolError } from '../../src/errors.js';
import { fixedWindows } from '../../src/flow/flow-control.js';
import { VegasCircuit } from '../../src/flow/vegas.js';
import { DEFAULT_NETWORK_PARAMS, type NetworkParams } from '../../src/netdoc/params.js';
import { HopHandshake, create2Cell, extend2Msg, type NewHop } from '../../client/hop-handshake.js';
import { extendSpecifiers, type HopInfo } from '../../client/hop-info.js';

const FIXED: NetworkParams = { ...DEFAULT_NETWORK_PARAMS, cc_alg: 0 };

function relay(address: string): { secret: NtorV3RelaySecret; info: HopInfo } {
  const onionSecret = crypto.randomBytes(32);
  const secret = { identity: crypto.ed25519PublicKey(crypto.randomBytes(32)), onionKey: crypto.x25519PublicKey(onionSecret), onionSecret };
  const info: HopInfo = {
    nickname: address,
    identity: secret.identity,
    linkKey: crypto.randomBytes(32),
    ntorOnionKey: secret.onionKey,
    address,
    orPort: 9001,
  };
  return { secret, info };
}

/** The relay's side: answer `onionskin` under the relay's `params`; its reply and keys. */
function answer(secret: NtorV3RelaySecret, onionskin: Uint8Array, params: NetworkParams = DEFAULT_NETWORK_PARAMS) {
  return ntorV3ServerHandshake(secret, onionskin, CIRCUIT_VERIFICATION, (cm) => answerClientMessage(cm, params).serverMessage, TOR1_KEY_MATERIAL_LENGTH);
}

/** A handshake whose circuit is open (or closed, with `closed`), recording the hops it adds. */
function handshake(params: NetworkParams = DEFAULT_NETWORK_PARAMS, closed = false): { hs: HopHandshake; added: NewHop[] } {
  const added: NewHop[] = [];
  return { hs: new HopHandshake(params, () => closed, (hop) => added.push(hop)), added };
}

test('create2Cell: a CREATE2 on the circuit carrying the ntor-v3 onionskin; extend2Msg: the EXTEND2 to the next hop', () => {
  const onionskin = crypto.randomBytes(100);
  const cell = create2Cell(0x80000007, onionskin);
  assert.equal(cellCommand(cell), ChannelCommand.CREATE2);
  assert.equal(new DataView(cell.buffer, cell.byteOffset).getUint32(0), 0x80000007);
  assert.deepEqual(decodeCreate2(cellPayload(cell)), { handshakeType: HANDSHAKE_TYPE_NTOR_V3, handshakeData: onionskin });
  assert.equal(cellPayload(cell).length, CELL_PAYLOAD_LENGTH);

  const a = relay('10.0.0.1');
  const b = relay('10.0.0.2');
  const msg = extend2Msg(a.info, b.info, false, onionskin);
  const { command, body } = encodeRelayMsg(msg);
  assert.deepEqual(decodeRelayMsg(command, body), {
    kind: 'extend2',
    specifiers: extendSpecifiers(a.info, b.info, false),
    handshakeType: HANDSHAKE_TYPE_NTOR_V3,
    handshakeData: onionskin,
  });
});

test('a CREATED2 that answers the onionskin adds the hop: layers that match the relay\'s, before the promise settles, and the flow control agreed on', async () => {
  // Asked for congestion control, the hop runs Vegas; not asked, fixed windows (§7.2).
  for (const [params, vegas] of [
    [DEFAULT_NETWORK_PARAMS, true],
    [FIXED, false],
  ] as const) {
    const guard = relay('10.0.0.1');
    const { hs, added } = handshake(params);
    let sent: Uint8Array | undefined;
    const done = hs.start(guard.info, 'CREATED2', (onionskin) => (sent = onionskin));
    assert.ok(sent !== undefined, 'the onionskin went out at once');
    assert.equal(hs.inFlight, true);
    assert.equal(hs.awaits('CREATED2'), true);
    assert.equal(hs.awaits('EXTENDED2'), false);
    const server = answer(guard.secret, sent);
    hs.finish('CREATED2', server.reply);
    assert.equal(added.length, 1, 'the hop is added at once, not a turn later');
    assert.equal(hs.inFlight, false);
    await done;
    // The client's forward layer seals what the relay's opens; the relay's backward layer seals what the client's opens.
    const theirs = tor1Layers(server.keyMaterial);
    const forward = crypto.randomBytes(CELL_PAYLOAD_LENGTH);
    added[0]!.layers.forward.seal(forward);
    theirs.forward.crypt(forward);
    assert.equal(theirs.forward.open(forward), true);
    const backward = crypto.randomBytes(CELL_PAYLOAD_LENGTH);
    theirs.backward.seal(backward);
    added[0]!.layers.backward.crypt(backward);
    assert.equal(added[0]!.layers.backward.open(backward), true);
    if (vegas) assert.ok(added[0]!.flow.circuit() instanceof VegasCircuit);
    else assert.equal(added[0]!.flow, fixedWindows);
  }
});

test('a reply no handshake waits for is a ProtocolError and leaves the handshake in flight as it was', async () => {
  const { hs, added } = handshake();
  assert.throws(() => hs.finish('CREATED2', new Uint8Array(64)), ProtocolError);
  const hop = relay('10.0.0.3');
  let sent: Uint8Array | undefined;
  const done = hs.start(hop.info, 'EXTENDED2', (onionskin) => (sent = onionskin));
  assert.throws(() => hs.finish('CREATED2', answer(hop.secret, sent!).reply), ProtocolError);
  assert.equal(hs.awaits('EXTENDED2'), true);
  hs.finish('EXTENDED2', answer(hop.secret, sent!).reply);
  await done;
  assert.equal(added.length, 1);
});

test('a forged reply, or a congestion-control answer not asked for, fails the handshake: thrown and rejected with the same error', async () => {
  for (const [params, forge] of [
    [DEFAULT_NETWORK_PARAMS, true],
    [FIXED, false],
  ] as const) {
    const hop = relay('10.0.0.4');
    const { hs, added } = handshake(params);
    let sent: Uint8Array | undefined;
    const done = hs.start(hop.info, 'CREATED2', (onionskin) => (sent = onionskin));
    const rejected = done.then(
      () => assert.fail('the handshake succeeded'),
      (e: unknown) => e,
    );
    let reply: Uint8Array;
    if (forge) {
      reply = answer(hop.secret, sent!).reply;
      reply[40]! ^= 1; // AUTH
    } else {
      // A relay that answers a request the client did not make (its client message asked for nothing).
      reply = ntorV3ServerHandshake(hop.secret, sent!, CIRCUIT_VERIFICATION, () => Uint8Array.from([1, 2, 1, 31]), TOR1_KEY_MATERIAL_LENGTH).reply;
    }
    const thrown = (() => {
      try {
        hs.finish('CREATED2', reply);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    assert.ok(thrown instanceof HandshakeError, String(thrown));
    assert.equal(await rejected, thrown);
    assert.equal(added.length, 0);
    assert.equal(hs.inFlight, false);
  }
});

test('abort() rejects the handshake in flight with its error; start() on a closed circuit rejects without sending', async () => {
  const { hs } = handshake();
  const done = hs.start(relay('10.0.0.5').info, 'CREATED2', () => {});
  const gone = new CircuitDestroyedError(DestroyReason.CHANNEL_CLOSED, 'link closed');
  hs.abort(gone);
  await assert.rejects(done, (e: unknown) => e === gone);
  assert.equal(hs.inFlight, false);
  hs.abort(gone); // nothing in flight: nothing happens

  const closed = handshake(DEFAULT_NETWORK_PARAMS, true).hs;
  let sends = 0;
  await assert.rejects(
    closed.start(relay('10.0.0.6').info, 'CREATED2', () => sends++),
    (e: unknown) => e instanceof CircuitDestroyedError && e.reason === DestroyReason.FINISHED,
  );
  assert.equal(sends, 0);
  assert.equal(closed.inFlight, false);
});
