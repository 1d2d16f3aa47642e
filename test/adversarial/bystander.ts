/**
 * What the hostile-client tests share: probes that a circuit, a link and a
 * bystander client on another link still work after an attack on one relay.
 */
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { RelayCommand } from '../../src/cell/relay-cell.js';
import { EndReason } from '../../src/cell/reasons.js';
import { encodeBegin } from '../../src/cell/stream-messages.js';
import { HostilePeer, memoryRelay, type PeerCircuit, type RelayTarget } from './hostile-peer.js';

let probeStream = 1000;

/** A circuit is alive if a BEGIN the policy refuses comes back as END EXITPOLICY. */
export async function assertCircuitWorks(peer: HostilePeer, circ: PeerCircuit): Promise<void> {
  const streamId = probeStream++;
  peer.sendRelay(circ, RelayCommand.BEGIN, streamId, encodeBegin({ host: '10.0.0.1', port: 80, flags: 0 }));
  const reply = await peer.relay(circ, 'END EXITPOLICY');
  assert.equal(reply.command, RelayCommand.END);
  assert.equal(reply.streamId, streamId);
  assert.equal(reply.data[0], EndReason.EXITPOLICY);
}

/** The link is up and a new circuit on it works. */
export async function assertLinkWorks(peer: HostilePeer): Promise<void> {
  assert.equal(peer.channel.closed, false, 'link closed');
  await assertCircuitWorks(peer, await peer.create());
}

/** A second client on its own link, with a circuit made before the attack. */
export async function bystander(t: TestContext, target: RelayTarget): Promise<() => Promise<void>> {
  const peer = await HostilePeer.connect(t, target);
  const circ = await peer.create();
  return async () => {
    await assertCircuitWorks(peer, circ);
    await assertLinkWorks(peer);
  };
}

/** A relay in this process, a bystander on it, and a hostile peer linked to it. */
export async function setup(t: TestContext, opts: { exit?: boolean } = {}) {
  const target = memoryRelay(t, opts);
  const check = await bystander(t, target);
  const peer = await HostilePeer.connect(t, target);
  return { target, peer, bystanderWorks: check };
}

