/**
 * Fetching the consensus through a relay's directory cache (docs/protocol.md
 * §6.5, §11): a one-hop circuit to the relay, a BEGIN_DIR stream, `GET
 * /allium/v1/consensus` asking for gzip, the answer bounded before and after
 * decompression, and the same verification as a consensus from an authority
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

/** The path of the consensus on a relay's directory streams. */
export const RELAY_CONSENSUS_PATH = '/allium/v1/consensus';
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

export interface RelayFetcherOptions {
  transport?: Transport;
  /** Time limit of one fetch (link, circuit, stream, answer), ms; default 10 s. */
  timeoutMs?: number;
  /** Clock-skew tolerance for verification (§11). */
  clockSkewMs?: number;
  now?: () => number;
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
   * The consensus `relay` serves, verified against `authorities`. Rejects
   * with an AlliumError naming what failed (no cache: ERR_DOCUMENT with the
   * HTTP status; a refused consensus: as verifyConsensus).
   */
  async fetch(relay: ConsensusRelay, authorities: readonly AuthorityRef[]): Promise<FetchedConsensus> {
    const deadline = Date.now() + this.#timeoutMs;
    const left = () => Math.max(1, deadline - Date.now());
    let channel: Channel | undefined;
    let circuit: OriginCircuit | undefined;
    let timer: NodeJS.Timeout | undefined;
    try {
      channel = await this.#links.get({ address: relay.address, port: relay.orPort, identity: relay.identity, linkKey: relay.linkKey });
      circuit = await OriginCircuit.build(channel, this.#links.circuitsOf(channel), [relay], left());
      const stream = await circuit.openDirStream(0, left());
      const answer = await new Promise<Buffer>((resolve, reject) => {
        const chunks: Buffer[] = [];
        let size = 0;
        timer = setTimeout(() => {
          stream.destroy();
          reject(new AlliumError('ERR_TIMEOUT', 'directory fetch through a relay timed out'));
        }, left());
        stream.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_CONSENSUS_BYTES + MAX_HEAD_BYTES) {
            stream.destroy();
            reject(new AlliumError('ERR_OVERSIZED', `directory answer larger than ${MAX_CONSENSUS_BYTES} bytes`));
          } else chunks.push(chunk);
        });
        stream.once('end', () => resolve(Buffer.concat(chunks)));
        stream.once('error', reject);
        stream.write(`GET ${RELAY_CONSENSUS_PATH} HTTP/1.0\r\nAccept-Encoding: gzip\r\n\r\n`);
      });
      const { status, headers, body } = splitAnswer(answer);
      if (status !== 200) throw new AlliumError('ERR_DOCUMENT', `the relay's directory answered ${status}`);
      const encoding = headers.get('content-encoding');
      let bytes: Uint8Array = body;
      if (encoding === 'gzip') {
        try {
          bytes = gunzipSync(body, { maxOutputLength: MAX_CONSENSUS_BYTES });
        } catch (cause) {
          throw new AlliumError((cause as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE' ? 'ERR_OVERSIZED' : 'ERR_MALFORMED', 'consensus from a relay could not be decompressed', { cause });
        }
      } else if (encoding !== undefined && encoding !== 'identity') {
        throw new AlliumError('ERR_MALFORMED', `unexpected Content-Encoding ${JSON.stringify(encoding.slice(0, 40))}`);
      }
      const text = decodeText(bytes);
      const now = (this.#opts.now ?? Date.now)();
      const verified = verifyConsensus(text, authorities.map((a) => a.identity), now, this.#opts.clockSkewMs === undefined ? {} : { clockSkewMs: this.#opts.clockSkewMs });
      return { ...verified, text };
    } finally {
      clearTimeout(timer);
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
