/**
 * The relay role's public shapes: what startRelay (relay.ts) takes
 * (RelayConfig), what it returns (RelayHandle) and what a running relay can
 * change (RelayReconfig) or report (BandwidthStats).
 */
import type { CircuitStats, LinkStats } from '../src/events.js';
import type { LinkShape } from '../src/link/delay-line.js';
import type { NetworkParams } from '../src/netdoc/params.js';
import type { AccountingSettings, AccountingState } from './bandwidth/accounting.js';
import type { DosOptions, DosStats } from './dos.js';
import type { MemoryCapOptions, MemoryCapStats } from './mem-cap.js';
import type { AuthorityRef } from './publisher.js';

export interface RelayConfig {
  nickname: string;
  dataDir: string;
  /** IPv4 address advertised in the descriptor; also listened on and connected out from unless `listenAddress` is given. */
  address: string;
  /** OR port advertised; also listened on unless `listenPort` is given. 0 picks a free port (and advertises it). */
  port: number;
  /** Address the OR port listens on and links are dialled from, when it differs from the advertised one (NAT). */
  listenAddress?: string;
  /** Port the OR port listens on, when it differs from the advertised one (port forwarding). 0 picks a free port. */
  listenPort?: number;
  /**
   * A second OR port on this IPv6 address (listened on and advertised as is,
   * the descriptor's `or-address`, torrc `ORPort [addr]:port`); absent: IPv4 only.
   */
  ipv6Address?: string;
  /** Its port; default `port` when that is not 0, else a free port. */
  ipv6Port?: number;
  authorities: AuthorityRef[];
  exit: boolean;
  /** Exit policy rule lines ("accept 127.0.0.0/8:*"); default from `exit`. */
  exitPolicy?: string[];
  /** Bytes per second advertised in the descriptor; default the rate limit, else DEFAULT_BANDWIDTH. */
  bandwidth?: number;
  /** Token-bucket limit on the bytes read from all OR links together, bytes/s (torrc BandwidthRate); absent: none. */
  bandwidthRate?: number;
  /** Bucket size, bytes (torrc BandwidthBurst); default the rate. */
  bandwidthBurst?: number;
  /** A byte budget per period, then hibernation (docs/protocol.md §8.2.1); absent: none. */
  accounting?: AccountingSettings;
  /** Contact line for the descriptor (torrc ContactInfo). */
  contact?: string;
  /** Identities of this relay's family (torrc MyFamily). */
  family?: readonly Uint8Array[];
  /** Rotate the onion key when it is this old (default 28 days, as Tor). */
  onionKeyLifetimeMs?: number;
  /** Keep accepting the previous onion key this long after a rotation (default 7 days). */
  onionKeyGraceMs?: number;
  /** Lifetime of the signing-key certificates an online relay makes itself (default 30 days, docs/protocol.md §8.2.3). */
  signingKeyLifetimeMs?: number;
  /** Re-upload an unchanged descriptor this often (a changed one goes out at once, §9.3); default 10 min. */
  publishIntervalMs?: number;
  /**
   * Worker processes carrying the links (relay-workers.ts); default 1, which
   * runs everything in this process. More: this process only accepts.
   */
  workers?: number;
  /** DoS limits (relay/dos.ts; defaults DOS_DEFAULTS). */
  dos?: DosOptions;
  /** Memory cap for queued cells and stream buffers (relay/mem-cap.ts). */
  memoryCap?: MemoryCapOptions;
  /** Give every link this relay dials a wide-area shape (delay, rate; src/link/shaped-transport.ts). */
  linkShape?: LinkShape;
  /** The relay's own network parameters (congestion control, docs/protocol.md §7.2); default all at their defaults. */
  params?: NetworkParams;
}

export interface RelayHandle {
  /** The advertised address and OR port (the descriptor's). */
  readonly address: string;
  readonly port: number;
  /** Where the OR port actually listens. */
  readonly listening: { address: string; port: number };
  /** The IPv6 OR port (listened on and advertised), if the relay has one. */
  readonly orAddress6?: { address: string; port: number };
  readonly identity: Uint8Array;
  readonly nickname: string;
  /** The relay's links: a read-only snapshot. */
  linkStats(): LinkStats;
  /** The relay's circuits and streams: a read-only snapshot. */
  circuitStats(): CircuitStats;
  /** Refusals by the DoS limits so far. */
  dosStats(): DosStats;
  /** The memory cap: bytes queued at the last check, events, circuits freed. */
  memoryStats(): MemoryCapStats;
  /**
   * Change what can change on a running relay (SIGHUP, cli/config/reload.ts)
   * and republish the descriptor. Throws AlliumError ERR_CONFIG (nothing
   * changed) for an exit policy on a relay that is not an exit, or a bad rule.
   */
  reconfigure(change: RelayReconfig): void;
  /** The rate limit and how often it was reached; null without one. */
  bandwidthStats(): BandwidthStats | null;
  /** The accounting period's count and state; null without accounting. */
  accountingStats(): AccountingState | null;
  /**
   * Rejects with AlliumError ERR_RESOURCE_LIMIT if the relay can no longer
   * serve as advertised (with workers: one exited on its own); never
   * resolves. The CLI then stops with exit status 1 so a supervisor restarts it.
   */
  readonly failed: Promise<never>;
  close(): Promise<void>;
}

/** What RelayHandle.reconfigure can change. */
export interface RelayReconfig {
  /** New exit policy rule lines (an exit only). */
  exitPolicy?: readonly string[];
  /** New rate and burst, bytes/s and bytes (a relay started with a rate limit only). */
  bandwidth?: { rate: number; burst: number };
  /** New contact line; null removes it. */
  contact?: string | null;
  /** New family (identities); empty removes it. */
  family?: readonly Uint8Array[];
}

/** RelayHandle.bandwidthStats(): the rate limit, if any. */
export interface BandwidthStats {
  rate: number;
  burst: number;
  /** Times the bucket ran empty (reads waited): Tor's global rate limit reached. */
  limited: number;
}
