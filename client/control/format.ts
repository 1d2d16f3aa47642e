/**
 * How the control port writes what the client knows in Tor's formats
 * (control-spec §3.9, §4.1; docs/control-port.md): circuit and stream status
 * lines, router status entries for `ns/*`, bootstrap status, and the event
 * lines. Pure functions.
 *
 * Fingerprints: Tor names a relay by 40 hex digits (a SHA-1 digest) and
 * controllers check that length. Allium's relay identity is a 32-byte
 * Ed25519 key, so the control port shows its first 20 bytes, in uppercase
 * hex: `$` + 40 hex digits, a prefix of the identity Allium prints
 * elsewhere (64 hex digits).
 */
import type { BootstrapStatus } from '../bootstrap.js';
import type { CircuitInfo } from '../circuit-manager.js';
import type { AppStream } from '../stream-table.js';
import type { ConsensusRelay } from '../../src/netdoc/consensus.js';
import { formatSummary } from '../../src/netdoc/exit-policy.js';
import { DestroyReason, EndReason, endReasonName } from '../../src/cell/reasons.js';
import { hex } from '../../src/bytes.js';
import { quote } from './protocol.js';

/** Unpadded base64, as router status entries write digests. */
function toBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64').replace(/=+$/, '');
}

/** Bytes of the identity a control-port fingerprint shows. */
export const FINGERPRINT_BYTES = 20;

/** 40 uppercase hex digits for an identity given as bytes or as 64 hex digits. */
export function fingerprint(identity: Uint8Array | string): string {
  const text = typeof identity === 'string' ? identity : hex(identity);
  return text.slice(0, FINGERPRINT_BYTES * 2).toUpperCase();
}

/** Tor's LongName: `$FINGERPRINT~nickname`. */
export function longName(relay: { identity: Uint8Array | string; nickname: string }): string {
  return `$${fingerprint(relay.identity)}~${relay.nickname}`;
}

/** ISOTime2Frac with microseconds, UTC: `2024-05-01T12:00:00.123000`. */
export function isoTime2Frac(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 23)}000`;
}

/** ISOTime, UTC: `2024-05-01 12:00:00`. */
export function isoTime(ms: number): string {
  return new Date(ms).toISOString().slice(0, 19).replace('T', ' ');
}

/**
 * One circuit as `circuit-status` and CIRC events write it (without the
 * leading `650 CIRC `): `ID STATUS PATH BUILD_FLAGS=NEED_CAPACITY
 * PURPOSE=GENERAL TIME_CREATED=...` and REASON when given.
 */
export function circuitLine(c: Pick<CircuitInfo, 'id' | 'path' | 'builtAt'>, status: 'BUILT' | 'CLOSED', reason?: { reason: number; remote: boolean }): string {
  const parts = [String(c.id), status];
  if (c.path.length > 0) parts.push(c.path.map(longName).join(','));
  parts.push('BUILD_FLAGS=NEED_CAPACITY', 'PURPOSE=GENERAL', `TIME_CREATED=${isoTime2Frac(c.builtAt)}`);
  if (reason !== undefined) {
    const name = circuitReasonName(reason.reason);
    // Tor says REASON=DESTROYED and the peer's reason in REMOTE_REASON when the network ended it.
    if (reason.remote) parts.push('REASON=DESTROYED', `REMOTE_REASON=${name}`);
    else parts.push(`REASON=${name}`);
  }
  return parts.join(' ');
}

/** Tor's circuit reason names for DESTROY reasons (control-spec §4.1.1). */
export function circuitReasonName(reason: number): string {
  switch (reason) {
    case DestroyReason.NONE:
      return 'NONE';
    case DestroyReason.PROTOCOL:
      return 'TORPROTOCOL';
    case DestroyReason.INTERNAL:
      return 'INTERNAL';
    case DestroyReason.REQUESTED:
      return 'REQUESTED';
    case DestroyReason.HIBERNATING:
      return 'HIBERNATING';
    case DestroyReason.RESOURCELIMIT:
      return 'RESOURCELIMIT';
    case DestroyReason.CONNECTFAILED:
      return 'CONNECTFAILED';
    case DestroyReason.OR_IDENTITY:
      return 'OR_IDENTITY';
    case DestroyReason.CHANNEL_CLOSED:
      return 'CHANNEL_CLOSED';
    case DestroyReason.FINISHED:
      return 'FINISHED';
    case DestroyReason.TIMEOUT:
      return 'TIMEOUT';
    case DestroyReason.DESTROYED:
      return 'DESTROYED';
    case DestroyReason.NOSUCHSERVICE:
      return 'NOSUCHSERVICE';
    default:
      return 'NONE';
  }
}

/**
 * One stream as `stream-status` and STREAM events write it: `ID STATUS
 * CIRCID HOST:PORT`, plus (events) REASON for a failed or closed stream and
 * CLIENT_PROTOCOL and PURPOSE.
 */
export function streamLine(s: AppStream, withExtras: boolean): string {
  const host = s.host.includes(':') ? `[${s.host}]` : s.host;
  const parts = [String(s.id), s.status, String(s.circuitId), `${host}:${s.port}`];
  if (withExtras) {
    if (s.reason !== null && (s.status === 'FAILED' || s.status === 'CLOSED')) parts.push(`REASON=${streamReasonName(s.reason)}`);
    parts.push(`CLIENT_PROTOCOL=${s.protocol}`);
    if (s.purpose === 'resolve') parts.push('PURPOSE=DNS_REQUEST');
    else parts.push('PURPOSE=USER');
  }
  return parts.join(' ');
}

/** Tor's stream reason names: END reason names (DONE for a clean close). */
export function streamReasonName(reason: number): string {
  return reason === 0 ? endReasonName(EndReason.DONE) : endReasonName(reason);
}

/**
 * A router status entry as `ns/*` answers (control-spec §3.9, dir-spec
 * §3.4.1): `r` nickname, identity (the fingerprint's 20 bytes) and
 * descriptor digest (its first 20 bytes) in unpadded base64, the consensus
 * time, address, OR port, DirPort 0; `s` flags; `w Bandwidth=`; `p` the
 * exit policy summary.
 */
export function routerStatusEntry(relay: ConsensusRelay, published: number): string {
  return [
    `r ${relay.nickname} ${toBase64(relay.identity.subarray(0, FINGERPRINT_BYTES))} ${toBase64(relay.descriptorDigest.subarray(0, FINGERPRINT_BYTES))} ${isoTime(published)} ${relay.address} ${relay.orPort} 0`,
    `s ${relay.flags.join(' ')}`,
    `w Bandwidth=${relay.bandwidth}`,
    `p ${formatSummary(relay.exitSummary)}`,
  ].join('\n');
}

/**
 * `status/bootstrap-phase` and the STATUS_CLIENT event body: `NOTICE BOOTSTRAP
 * PROGRESS=N TAG=t SUMMARY="..."`, or `WARN ...` with WARNING, REASON, COUNT
 * and RECOMMENDATION when a problem keeps the client from going on.
 */
export function bootstrapLine(status: BootstrapStatus): string {
  const base = `BOOTSTRAP PROGRESS=${status.progress} TAG=${status.tag} SUMMARY=${quote(status.summary)}`;
  if (status.warning === null) return `NOTICE ${base}`;
  return `WARN ${base} WARNING=${quote(status.warning)} REASON=MISC COUNT=${status.problems} RECOMMENDATION=warn`;
}
