/**
 * The testnet's one page for the whole network (`allium testnet
 * --dashboard-port`): every node with its state, its flags, links, circuits
 * and traffic, the consensus as the authority sees it, and a chart of each
 * relay's traffic. GET /api/network gathers each node's /api/status from its
 * metrics port (loopback, bounded by a timeout). Read-only, loopback only.
 */
import { LOOPBACK_PREFIXES } from '../../src/net/prefix.js';
import { startMetricsServer, type MetricsServer } from '../metrics/server.js';
import { asset } from './assets.js';
import { networkPage } from './pages.js';
import type { NodeStatus } from './status.js';

const NODE_TIMEOUT_MS = 2_000;

export interface NetworkNode {
  nickname: string;
  role: 'relay' | 'authority' | 'client';
  alive: boolean;
  /** `HOST:PORT` of its metrics port. */
  metrics?: string;
  exit?: boolean;
}

export interface NetworkView {
  nodes: (NetworkNode & { status: NodeStatus | null })[];
}

async function statusOf(node: NetworkNode): Promise<NodeStatus | null> {
  if (!node.alive || node.metrics === undefined) return null;
  try {
    const res = await fetch(`http://${node.metrics}/api/status`, { signal: AbortSignal.timeout(NODE_TIMEOUT_MS) });
    return res.ok ? ((await res.json()) as NodeStatus) : null;
  } catch {
    return null;
  }
}

/** Serve the network page on 127.0.0.1:port (0 = any free port). */
export async function startNetworkDashboard(port: number, nodes: () => NetworkNode[]): Promise<MetricsServer> {
  return startMetricsServer({
    address: '127.0.0.1',
    port,
    allow: LOOPBACK_PREFIXES,
    routes: async (path) => {
      if (path === '/' || path === '/index.html') return { contentType: 'text/html; charset=utf-8', body: networkPage() };
      if (path === '/api/network') {
        const list = nodes();
        const statuses = await Promise.all(list.map(statusOf));
        const view: NetworkView = { nodes: list.map((n, i) => ({ ...n, status: statuses[i]! })) };
        return { contentType: 'application/json', body: JSON.stringify(view) };
      }
      return asset(path);
    },
  });
}
