/**
 * A SOCKS port whose streams ride one 3-hop circuit over the in-memory
 * network (memory-network.ts): the client side of the memory tests that go
 * through real SOCKS sockets. Everything is torn down after the test.
 */
import type { TestContext } from 'node:test';
import type { OriginCircuit } from '../../client/origin-circuit.js';
import { startSocksServer } from '../../client/socks/server.js';
import type { RelayStream } from '../../src/stream/relay-stream.js';
import { memoryCircuit, memoryNetwork } from './memory-network.js';

export interface SocksCircuit {
  circuit: OriginCircuit;
  /** The circuit's streams, in the order the SOCKS port opened them. */
  streams: RelayStream[];
  /** The SOCKS port on 127.0.0.1. */
  socksPort: number;
}

/**
 * Start it; `onStream` sees each stream as it opens, before it is spliced
 * to its SOCKS socket. A stream waits at most `waitMs` for CONNECTED.
 */
export async function socksOverMemoryCircuit(t: TestContext, onStream: (stream: RelayStream) => void, waitMs = 10_000): Promise<SocksCircuit> {
  const net = memoryNetwork(3);
  t.after(() => {
    for (const r of net.relays) r.core.destroy();
    net.cleanup();
  });
  const { circuit, links } = await memoryCircuit(net.relays);
  t.after(() => links.destroy());
  const streams: RelayStream[] = [];
  const socks = await startSocksServer({
    port: 0,
    connect: async (request) => {
      const stream = await circuit.openStream(request.host, request.port, waitMs);
      streams.push(stream);
      onStream(stream);
      return stream;
    },
  });
  t.after(() => socks.close());
  return { circuit, streams, socksPort: socks.address.port };
}
