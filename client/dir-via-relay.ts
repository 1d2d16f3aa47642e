/**
 * Fetching the consensus through a relay's directory cache (docs/protocol.md
 * §6.5, §11): a one-hop circuit to the relay, a BEGIN_DIR stream, `GET
 * /allium/v1/consensus` asking for gzip, the answer bounded before and after
 * decompression — asking first for a diff from the consensus the client holds
 * (§8.9), and for the whole consensus when the relay has none — and the same
 * verification as a consensus from an authority
 * (more than half of the configured authorities signed it, within its
 * window). The relay is the client's directory guard: among the Guard relays
 * of its consensus, the one whose identity hashes lowest with a key the
 * client picks once, so it stays the same while it stays a guard.
 */
import { gunzipSync } from 'node:zlib';
import { concat, hex } from '../src/bytes.js';
import { DestroyReason } from '../src/cell/reasons.js';
import { crypto } from '../src/crypto/crypto.js';
import { decodeText, type AuthorityRef, type FetchedConsensus } from '../src/dirclient/consensus-fetch.js';
import { AlliumError } from '../src/errors.js';
import type { Channel } from '../src/link/channel.js';
import { LinkManager } from '../src/link/link-manager.js';
import { TcpTransport, type Transport } from '../src/link/transport.js';
import { MAX_CONSENSUS_BYTES, verifyConsensus, type Consensus, type ConsensusRelay } from '../src/netdoc/consensus.js';
import { compareBytes } from '../src/netdoc/text.js';
import { OriginCircuit } from './origin-circuit.js';
import type { CircuitStatsRecorder } from '../src/circuit/circuit-stats.js';
import { applyConsensusDiff, consensusDigest } from '../src/netdoc/consensus-diff.js';

/** The path of the consensus on a relay's directory streams. */
export const RELAY_CONSENSUS_PATH = '/allium/v1/consensus';
/** The prefix of a diff's path; the 64 hex digits of the base consensus's SHA-256 follow (§8.9). */
export const RELAY_CONSENSUS_DIFF_PREFIX = '/allium/v1/consensus-diff/';
const MAX_HEAD_BYTES = 8192;

/** The directory guard for `key`: the Running, Valid Guard relay whose SHA-256(key ‖ identity) is smallest, or undefined. */
export function directoryGuard(consensus: Consensus, key: Uint8Array): ConsensusRelay | undefined {
  let best: { relay: ConsensusRelay; rank: Uint8Array } | undefined;
  for (const relay of consensus.relays) {
    if (!relay.flags.includes('Guard') || !relay.flags.includes('Running') || !relay.flags.includes('Valid')) continue;
    const rank = crypto.sha256(concat(key, relay.identity));
    if (best === undefined || compareBytes(rank, best.rank) < 0) best = { relay, rank };
  }
  return best?.relay;
}

/** Splits a directory answer into status, headers and body; throws ERR_PROTOCOL / ERR_OVERSIZED. */
function splitAnswer(answer: Buffer): { status: number; headers: Map<string, string>; body: Buffer } {
  const end = answer.indexOf('\r\n\r\n');
  if (end < 0 || end > MAX_HEAD_BYTES) throw new AlliumError('ERR_PROTOCOL', 'directory answer without a header end');
  const lines = answer.subarray(0, end).toString('latin1').split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '');
  if (m === null) throw new AlliumError('ERR_PROTOCOL', 'directory answer without a status line');
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  return { status: Number(m[1]), headers, body: answer.subarray(end + 4) };
}

/** Sends `request` on `stream` and reads the whole answer, bounded in size and time. */
function readAnswer(stream: import('node:stream').Duplex, request: string, timeoutMs: number): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const timer = setTimeout(() => {
      stream.destroy();
      reject(new AlliumError('ERR_TIMEOUT', 'directory fetch through a relay timed out'));
    }, timeoutMs);
    stream.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_CONSENSUS_BYTES + MAX_HEAD_BYTES) {
        clearTimeout(timer);
        stream.destroy();
        reject(new AlliumError('ERR_OVERSIZED', `directory answer larger than ${MAX_CONSENSUS_BYTES} bytes`));
      } else chunks.push(chunk);
    });
    stream.once('end', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks));
    });
    stream.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    stream.write(request);
  });
}

/** The body as sent, gunzipped (bounded) when the answer says gzip. */
function decode(body: Buffer, encoding: string | undefined): Uint8Array {
  if (encoding === undefined || encoding === 'identity') return body;
  if (encoding !== 'gzip') throw new AlliumError('ERR_MALFORMED', `unexpected Content-Encoding ${JSON.stringify(encoding.slice(0, 40))}`);
  try {
    return gunzipSync(body, { maxOutputLength: MAX_CONSENSUS_BYTES });
  } catch (cause) {
    throw new AlliumError((cause as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE' ? 'ERR_OVERSIZED' : 'ERR_MALFORMED', 'a directory answer could not be decompressed', { cause });
  }
}

export interface RelayFetcherOptions {
  transport?: Transport;
  /** Time limit of one fetch (link, circuit, stream, answer), ms; default 10 s. */
  timeoutMs?: number;
  /** Clock-skew tolerance for verification (§11). */
  clockSkewMs?: number;
  now?: () => number;
  /** Reach the relay at its IPv6 OR address when it has one (the client's preferIPv6). Default false. */
  preferIPv6?: boolean;
  /** Counts the one-hop circuits (built, destroyed) and the directory stream bytes; default none. */
  stats?: CircuitStatsRecorder;
}

/** Fetches consensuses through relays; one fresh link per fetch, closed after it. */
export class RelayConsensusFetcher {
  readonly #links: LinkManager<OriginCircuit>;
  readonly #timeoutMs: number;
  readonly #opts: RelayFetcherOptions;

  constructor(opts: RelayFetcherOptions = {}) {
    this.#opts = opts;
    this.#timeoutMs = opts.timeoutMs ?? 10_000;
    this.#links = new LinkManager<OriginCircuit>({
      transport: opts.transport ?? new TcpTransport(),
      handler: {
        onCircuitCell: (slot, cell) => slot.circuit.receive(cell),
        onLinkClosed: (slot) => slot.circuit.linkClosed(),
      },
      dialTimeoutMs: this.#timeoutMs,
    });
  }

  /**
   * The consensus `relay` serves, verified against `authorities`. With
   * `base` (the whole text of the consensus the client holds) it asks for a
   * diff from it first and builds the consensus from that; if the relay has
   * no such diff, or the diff does not apply, it asks for the whole
   * consensus. Rejects with an AlliumError naming what failed (no cache:
   * ERR_DOCUMENT with the HTTP status; a refused consensus: as verifyConsensus).
   */
  async fetch(relay: ConsensusRelay, authorities: readonly AuthorityRef[], base?: string): Promise<FetchedConsensus & { viaDiff: boolean }> {
    const deadline = Date.now() + this.#timeoutMs;
    const left = () => Math.max(1, deadline - Date.now());
    let channel: Channel | undefined;
    let circuit: OriginCircuit | undefined;
    try {
      const at = this.#opts.preferIPv6 === true && relay.orAddress6 !== undefined ? relay.orAddress6 : { address: relay.address, port: relay.orPort };
      channel = await this.#links.get({ ...at, identity: relay.identity, linkKey: relay.linkKey });
      circuit = await OriginCircuit.build(channel, this.#links.circuitsOf(channel), [relay], left(), { stats: this.#opts.stats ?? null });
      const built = circuit;
      const get = async (path: string): Promise<{ status: number; text: string }> => {
        const stream = await built.openDirStream(0, left());
        const answer = await readAnswer(stream, `GET ${path} HTTP/1.0\r\nAccept-Encoding: gzip\r\n\r\n`, left());
        const { status, headers, body } = splitAnswer(answer);
        if (status !== 200) return { status, text: '' };
        return { status, text: decodeText(decode(body, headers.get('content-encoding'))) };
      };
      let text: string | undefined;
      let viaDiff = false;
      if (base !== undefined) {
        try {
          const diff = await get(`${RELAY_CONSENSUS_DIFF_PREFIX}${hex(consensusDigest(base))}`);
          if (diff.status === 200) {
            text = applyConsensusDiff(base, diff.text);
            viaDiff = true;
          }
        } catch {
          // a diff that does not apply: take the whole consensus
        }
      }
      if (text === undefined) {
        const full = await get(RELAY_CONSENSUS_PATH);
        if (full.status !== 200) throw new AlliumError('ERR_DOCUMENT', `the relay's directory answered ${full.status}`);
        text = full.text;
      }
      const now = (this.#opts.now ?? Date.now)();
      const verified = verifyConsensus(text, authorities.map((a) => a.identity), now, this.#opts.clockSkewMs === undefined ? {} : { clockSkewMs: this.#opts.clockSkewMs });
      return { ...verified, text, viaDiff };
    } finally {
      circuit?.destroy(DestroyReason.FINISHED, 'directory fetch done');
      channel?.close();
    }
  }

  close(): void {
    this.#links.close();
  }
}

/** A short name for a relay in messages: nickname and identity prefix. */
export function relayName(relay: ConsensusRelay): string {
  return `${relay.nickname} (${hex(relay.identity).slice(0, 8)})`;
}
