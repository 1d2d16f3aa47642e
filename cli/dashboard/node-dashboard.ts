/**
 * A node's dashboard on its metrics port: GET / (the page), /api/status
 * (./status.ts), and the static assets. Read-only, the same access rules as
 * /metrics (cli/metrics/server.ts). Relays and authorities learn the current
 * consensus from their authorities every CONSENSUS_POLL_MS, to show their
 * flags; clients take it from the allium:consensus event.
 */
import { fetchConsensus, type AuthorityRef } from '../../client/directory-client.js';
import type { CircuitStats, LinkStats } from '../../src/events.js';
import type { VerifiedConsensus } from '../../src/netdoc/consensus.js';
import type { Routes } from '../metrics/server.js';
import { asset } from './assets.js';
import { nodePage } from './pages.js';
import { StatusBoard, type StatusSources } from './status.js';

/** Consensus polls for the flags: every 3 s until this node is listed (or, at an authority, lists relays), then every 60 s. */
export const CONSENSUS_POLL_MS = 3_000;
export const CONSENSUS_POLL_SETTLED_MS = 60_000;
const FIRST_POLL_MS = 2_000;

export interface NodeDashboard {
  readonly board: StatusBoard;
  readonly routes: Routes;
  close(): void;
}

export function nodeDashboard(
  sources: StatusSources & { linkStats?: () => LinkStats | undefined; circuitStats?: () => CircuitStats | undefined },
  authorities: AuthorityRef[],
): NodeDashboard {
  const board = new StatusBoard(sources);
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  if (authorities.length > 0) {
    let last: VerifiedConsensus | null = null;
    const poll = async () => {
      try {
        last = await fetchConsensus(authorities, Date.now, last);
        board.setConsensus(last);
      } catch {
        // shown as "no consensus yet"; the next poll retries
      }
      const status = board.status().consensus;
      const settled = status !== null && (status.flags !== null || (status.entries?.length ?? 0) > 0);
      if (!closed) timer = setTimeout(poll, settled ? CONSENSUS_POLL_SETTLED_MS : CONSENSUS_POLL_MS).unref();
    };
    timer = setTimeout(poll, FIRST_POLL_MS).unref();
  }
  return {
    board,
    routes: (path) => {
      if (path === '/' || path === '/index.html') return { contentType: 'text/html; charset=utf-8', body: nodePage(sources.role) };
      if (path === '/api/status') return { contentType: 'application/json', body: JSON.stringify(board.status()) };
      return asset(path);
    },
    close() {
      closed = true;
      clearTimeout(timer);
      board.close();
    },
  };
}
