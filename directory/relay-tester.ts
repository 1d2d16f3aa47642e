/**
 * How an authority tests relays (docs/protocol.md §9.4), over the same links
 * and circuits clients use: a LinkManager (as an anonymous client) and
 * OriginCircuit (client/origin-circuit.ts — the one place the authority
 * borrows client code, so that what it tests is what clients will do).
 *
 * - Reachability: a complete link handshake, then a one-hop circuit (CREATE2
 *   with ntor v3) to the relay; both must succeed within the time limit.
 * - Bandwidth: a one-hop circuit, a BEGIN_DIR stream to the relay, and a GET
 *   of its bandwidth-test document (a fixed 256 KiB, §6.5); the rate is the
 *   body's bytes over the time from the request to the end of the answer.
 *
 * Every test has its own link manager, so its own fresh link, closed when the
 * test ends: tests of the same relay that overlap (two authorities in one
 * process, a probe during a measurement) never share or close each other's link.
 */
import type { Duplex } from 'node:stream';
import { debuglog } from 'node:util';
import { DestroyReason } from '../src/cell/reasons.js';
import { AlliumError } from '../src/errors.js';
import { LinkManager } from '../src/link/link-manager.js';
import type { Channel } from '../src/link/channel.js';
import { TcpTransport, type Transport } from '../src/link/transport.js';
import type { RelayDescriptor } from '../src/netdoc/descriptor.js';
import { OriginCircuit, type HopInfo } from '../client/origin-circuit.js';
import type { NetworkParams } from '../src/netdoc/params.js';
import { BANDWIDTH_TEST_BYTES, BANDWIDTH_TEST_PATH } from '../src/dirclient/bandwidth-test.js';

const log = debuglog('allium:directory');

export { BANDWIDTH_TEST_BYTES, BANDWIDTH_TEST_PATH };

export interface RelayTesterOptions {
  /** How links are dialled; default plain TCP. */
  transport?: Transport;
  /** Time limit of one reachability test (link and circuit), ms; default 10 s. */
  probeTimeoutMs?: number;
  /** Time limit of one bandwidth measurement, ms; default 10 s. */
  measureTimeoutMs?: number;
  /**
   * The network parameters the test circuits follow, as a client's do: with
   * `cc_alg` 0 they ask no hop for congestion control (§7.2). Default: every
   * parameter at its default.
   */
  params?: NetworkParams;
}

function hopOf(d: RelayDescriptor): HopInfo {
  return { nickname: d.nickname, identity: d.identity, linkKey: d.linkKey, ntorOnionKey: d.ntorOnionKey, address: d.address, orPort: d.orPort };
}

function manager(transport: Transport, dialTimeoutMs: number): LinkManager<OriginCircuit> {
  return new LinkManager<OriginCircuit>({
    transport,
    handler: {
      onCircuitCell: (slot, cell) => slot.circuit.receive(cell),
      onLinkClosed: (slot) => slot.circuit.linkClosed(),
    },
    dialTimeoutMs,
  });
}

/** Reads a directory answer to its end, bounded by `limit` bytes; resolves with the body length. */
function readAnswer(stream: Duplex, limit: number): Promise<number> {
  return new Promise((resolve, reject) => {
    let head = Buffer.alloc(0);
    let bodyBytes = -1;
    stream.on('data', (chunk: Buffer) => {
      if (bodyBytes >= 0) {
        bodyBytes += chunk.length;
      } else {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end >= 0) {
          if (!/^HTTP\/1\.[01] 200 /.test(head.subarray(0, 16).toString('latin1'))) {
            reject(new AlliumError('ERR_PROTOCOL', `bandwidth test answered ${head.subarray(0, 12).toString('latin1')}`));
            stream.destroy();
            return;
          }
          bodyBytes = head.length - end - 4;
        } else if (head.length > 8192) {
          reject(new AlliumError('ERR_PROTOCOL', 'bandwidth test answer without a header end'));
          stream.destroy();
          return;
        }
      }
      if (bodyBytes > limit) {
        reject(new AlliumError('ERR_OVERSIZED', 'bandwidth test answer too long'));
        stream.destroy();
      }
    });
    stream.once('end', () => (bodyBytes >= 0 ? resolve(bodyBytes) : reject(new AlliumError('ERR_PROTOCOL', 'bandwidth test answer ended early'))));
    stream.once('error', reject);
  });
}

export class RelayTester {
  readonly #transport: Transport;
  readonly #probeTimeoutMs: number;
  readonly #measureTimeoutMs: number;
  readonly #circuitOptions: { params?: NetworkParams };
  /** The managers of the tests under way (closed by close()). */
  readonly #active = new Set<LinkManager<OriginCircuit>>();

  constructor(opts: RelayTesterOptions = {}) {
    this.#transport = opts.transport ?? new TcpTransport();
    this.#probeTimeoutMs = opts.probeTimeoutMs ?? 10_000;
    this.#measureTimeoutMs = opts.measureTimeoutMs ?? 10_000;
    this.#circuitOptions = opts.params !== undefined ? { params: opts.params } : {};
  }

  /** A link manager for one test, forgotten (and its links closed) when the test ends. */
  #manager(timeoutMs: number): LinkManager<OriginCircuit> {
    const links = manager(this.#transport, timeoutMs);
    this.#active.add(links);
    return links;
  }

  #done(links: LinkManager<OriginCircuit>): void {
    links.close();
    this.#active.delete(links);
  }

  /**
   * A reachability test: true if a link handshake and a one-hop circuit both
   * succeed in time at the IPv4 OR port and, when the descriptor has an
   * `or-address`, also at the IPv6 one (each with the full time limit; §9.4).
   * Never rejects.
   */
  probe = async (d: RelayDescriptor): Promise<boolean> => {
    if (!(await this.#probeAt(d, d.address, d.orPort))) return false;
    return d.orAddress6 === undefined || this.#probeAt(d, d.orAddress6.address, d.orAddress6.port);
  };

  async #probeAt(d: RelayDescriptor, address: string, port: number): Promise<boolean> {
    let channel: Channel | undefined;
    const started = Date.now();
    const links = this.#manager(this.#probeTimeoutMs);
    try {
      channel = await links.get({ address, port, identity: d.identity, linkKey: d.linkKey });
      const left = Math.max(1, this.#probeTimeoutMs - (Date.now() - started));
      const circuit = await OriginCircuit.build(channel, links.circuitsOf(channel), [hopOf(d)], left, this.#circuitOptions);
      circuit.destroy(DestroyReason.FINISHED, 'reachability test done');
      return true;
    } catch (error) {
      log('reachability test of %s:%d failed: %s', address, port, (error as Error).message);
      return false;
    } finally {
      channel?.close();
      this.#done(links);
    }
  }

  /**
   * A bandwidth measurement: bytes per second pulled through a one-hop
   * circuit from the relay's bandwidth-test document, or undefined if the
   * test failed or ran out of time. Never rejects.
   */
  measure = async (d: RelayDescriptor): Promise<number | undefined> => {
    let channel: Channel | undefined;
    let circuit: OriginCircuit | undefined;
    let timer: NodeJS.Timeout | undefined;
    const deadline = Date.now() + this.#measureTimeoutMs;
    const left = () => Math.max(1, deadline - Date.now());
    const links = this.#manager(this.#measureTimeoutMs);
    try {
      // Every step is bounded by what is left of the time limit.
      channel = await links.get({ address: d.address, port: d.orPort, identity: d.identity, linkKey: d.linkKey });
      circuit = await OriginCircuit.build(channel, links.circuitsOf(channel), [hopOf(d)], left(), this.#circuitOptions);
      const stream = await circuit.openDirStream(0, left());
      timer = setTimeout(() => stream.destroy(new AlliumError('ERR_TIMEOUT', 'bandwidth test ran out of time')), left());
      const body = readAnswer(stream, BANDWIDTH_TEST_BYTES);
      const started = process.hrtime.bigint();
      stream.write(`GET ${BANDWIDTH_TEST_PATH} HTTP/1.0\r\n\r\n`);
      const bytes = await body;
      const ns = Number(process.hrtime.bigint() - started);
      if (bytes < BANDWIDTH_TEST_BYTES) throw new AlliumError('ERR_PROTOCOL', `bandwidth test body of ${bytes} bytes`);
      return Math.round((bytes * 1e9) / Math.max(ns, 1));
    } catch (error) {
      log('bandwidth test of %s:%d failed: %s', d.address, d.orPort, (error as Error).message);
      return undefined;
    } finally {
      clearTimeout(timer);
      circuit?.destroy(DestroyReason.FINISHED, 'bandwidth test done');
      channel?.close();
      this.#done(links);
    }
  };

  /** Closes the links of tests under way (they then fail). */
  close(): void {
    for (const links of this.#active) links.close();
    this.#active.clear();
  }
}
