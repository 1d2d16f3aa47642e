/**
 * startRelay(): the relay role, wiring only. One TCP listener on the relay's
 * address; every accepted socket becomes a Noise responder link; cells on
 * every link go through the cell router; EXTEND2 reuses or opens links via the
 * channel pool; BEGIN and RESOLVE go to the exit code, BEGIN_DIR to the
 * directory handler (relay/dir/dir-server.ts). The descriptor is published at
 * start and periodically.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import { debuglog } from 'node:util';
import { Channel } from '../src/link/channel.js';
import { signLinkCertificate } from '../src/link/link-handshake.js';
import { parseExitPolicy, type ExitPolicy } from '../src/netdoc/exit-policy.js';
import { encodeDescriptor, type RelayDescriptor } from '../src/netdoc/descriptor.js';
import { AlliumError } from '../src/errors.js';
import type { ExtendTarget } from '../src/cell/extend2.js';
import { hex } from '../src/bytes.js';
import { ChannelCircuits } from '../src/circuit/circuit-ids.js';
import { routeChannel } from './cell-router.js';
import { ChannelPool, LINK_HANDSHAKE_TIMEOUT_MS } from './channel-pool.js';
import { beginExitStream, resolveForClient, type ExitConfig } from './exit.js';
import { loadRelayKeys, type RelayKeys } from './keys.js';
import { DescriptorPublisher, type AuthorityRef } from './publisher.js';
import type { DirectoryHandler, RelayCircuit, RelayContext } from './relay-circuit.js';
import { relayDirectory } from './dir/dir-server.js';
import { CircuitStatsRecorder } from '../src/circuit/circuit-stats.js';
import type { CircuitStats } from '../src/events.js';

export type { AuthorityRef } from './publisher.js';

const log = debuglog('allium:relay');

export interface RelayConfig {
  nickname: string;
  dataDir: string;
  /** IPv4 address to listen on and to connect out from. */
  address: string;
  /** 0 picks a free port. */
  port: number;
  authorities: AuthorityRef[];
  exit: boolean;
  /** Exit policy rule lines ("accept 127.0.0.0/8:*"); default from `exit`. */
  exitPolicy?: string[];
  /** Bytes per second advertised in the descriptor. */
  bandwidth?: number;
  publishIntervalMs?: number;
}

export interface RelayHandle {
  readonly address: string;
  readonly port: number;
  readonly identity: Uint8Array;
  readonly nickname: string;
  close(): Promise<void>;
}

/** Ports Tor's default exit policy rejects (mail, file sharing, Windows networking). */
export const DEFAULT_REJECTED_PORTS = ['25', '119', '135-139', '445', '563', '1214', '4661-4666', '6346-6429', '6699', '6881-6999'];
export const DEFAULT_EXIT_POLICY = [...DEFAULT_REJECTED_PORTS.map((p) => `reject *:${p}`), 'reject private:*', 'accept *:*'];
export const NON_EXIT_POLICY = ['reject *:*'];
const MAX_CONNECTIONS = 4096;

export async function startRelay(config: RelayConfig): Promise<RelayHandle> {
  const keys = loadRelayKeys(config.dataDir);
  const policyLines = config.exitPolicy ?? (config.exit ? DEFAULT_EXIT_POLICY : NON_EXIT_POLICY);
  const exitPolicy: ExitPolicy = parseExitPolicy(policyLines);
  const linkCert = signLinkCertificate(keys.identity.seed, keys.linkKey.public);

  const channels = new Set<Channel>();
  const sockets = new Set<Socket>();
  const core = createRelayCore({
    keys,
    exit: { policy: config.exit ? exitPolicy : null, localAddress: config.address },
    connectTo: (target) => pool.get(target),
    directory: relayDirectory(() => encodeDescriptor(describe(), keys.identity.seed)),
  });
  const adopt = (channel: Channel) => {
    channels.add(channel);
    channel.once('close', () => channels.delete(channel));
    core.adopt(channel);
  };
  const pool = new ChannelPool({ linkKey: keys.linkKey, identity: keys.identity, localAddress: config.address, onChannel: adopt });

  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    Channel.accept(socket, { linkKey: keys.linkKey, identity: keys.identity, timeoutMs: LINK_HANDSHAKE_TIMEOUT_MS }).then(
      (channel) => {
        adopt(channel);
        pool.add(channel);
      },
      (error: Error) => {
        log('inbound link refused: %s', error.message);
        socket.destroy();
      },
    );
  });
  server.maxConnections = MAX_CONNECTIONS;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.address, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new AlliumError('ERR_CONFIG', 'relay listener has no address');
  const port = address.port;

  const describe = (): RelayDescriptor => ({
    nickname: config.nickname,
    identity: keys.identity.identity,
    linkKey: keys.linkKey.public,
    linkCert,
    ntorOnionKey: keys.ntor.onionKey,
    address: config.address,
    orPort: port,
    bandwidth: config.bandwidth ?? 10_000_000,
    platform: `Allium 0.1.0 on Node ${process.versions.node}`,
    published: Math.floor(Date.now() / 1000) * 1000,
    exitPolicy,
  });
  const publisher = new DescriptorPublisher(config.authorities, keys.identity.seed, describe);
  if (config.authorities.length > 0) publisher.start(config.publishIntervalMs ?? 10 * 60_000);
  log('relay %s listening on %s:%d', hex(keys.identity.identity).slice(0, 16), config.address, port);

  return {
    address: config.address,
    port,
    identity: keys.identity.identity,
    nickname: config.nickname,
    async close() {
      publisher.close();
      pool.closeAll();
      for (const channel of channels) channel.destroy();
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Reachability check for authorities: a complete Noise link handshake as an anonymous client. */
export async function probeRelay(d: RelayDescriptor, timeoutMs: number): Promise<boolean> {
  const socket = connect({ host: d.address, port: d.orPort });
  socket.on('error', () => {});
  try {
    const channel = await Channel.connect(socket, { peerLinkKey: d.linkKey, peerIdentity: d.identity, timeoutMs });
    channel.close();
    return true;
  } catch {
    socket.destroy();
    return false;
  }
}

/** The relay without sockets: feed it authenticated links; tests wire links in memory. */
export interface RelayCore {
  /** Route the cells of an authenticated link through this relay (once per link; links from connectTo are adopted by the core itself). */
  adopt(channel: Channel): void;
  /** A snapshot of the relay's circuit and stream counters. */
  stats(): CircuitStats;
}

export function createRelayCore(opts: {
  keys: RelayKeys;
  exit: ExitConfig;
  connectTo: (target: ExtendTarget) => Promise<Channel>;
  /** Serves BEGIN_DIR streams; absent: BEGIN_DIR is refused with END NOTDIRECTORY. */
  directory?: DirectoryHandler | null;
}): RelayCore {
  const stats = new CircuitStatsRecorder();
  const circuitTables = new WeakMap<Channel, ChannelCircuits<RelayCircuit>>();
  const adopted = new WeakSet<Channel>();
  const adopt = (channel: Channel) => {
    if (adopted.has(channel)) return;
    adopted.add(channel);
    routeChannel(ctx, channel, opts.keys.ntor);
  };
  const ctx: RelayContext = {
    identity: opts.keys.identity.identity,
    circuitsOf(channel) {
      let table = circuitTables.get(channel);
      if (table === undefined) {
        table = new ChannelCircuits<RelayCircuit>();
        circuitTables.set(channel, table);
      }
      return table;
    },
    connectTo: async (target) => {
      const channel = await opts.connectTo(target);
      adopt(channel);
      return channel;
    },
    begin: (circuit, streamId, body) => beginExitStream(opts.exit, circuit, streamId, body),
    resolve: (circuit, streamId, hostname) => resolveForClient(opts.exit, circuit, streamId, hostname),
    directory: opts.directory ?? null,
    stats,
  };
  return { adopt, stats: () => stats.snapshot() };
}
