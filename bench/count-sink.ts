/**
 * The far end of bench/relay-load: a relay-shaped TCP listener that the
 * relay under test extends circuits to, and that then costs as little as
 * possible per cell, so that the load generator's process does not compete
 * with the relay for the machine's cores.
 *
 * Each link runs the real responder handshake (LinkResponder, Noise XK) and
 * then has two phases:
 * - 'verify' (from the handshake until countOnly()): every frame is
 *   decrypted and authenticated (FrameOpener); each CREATE2 is answered with
 *   a real ntor-v3 CREATED2; every RELAY cell must be on a circuit this sink
 *   created (else the bench fails); cells are counted.
 * - 'count' (after countOnly()): frames are not decrypted; the 2-byte frame
 *   length (docs/protocol.md §3.4: L = 514k + 16) gives the number of cells
 *   k. A length that is not whole cells fails the bench.
 * The bench checks the counts end to end: after its senders stop and the
 * relay's queues drain, every cell sent must have arrived (`cells()`).
 */
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { ChannelCommand, cellCircuitId, cellCommand, cellPayload, encodeChannelCell } from '../src/cell/channel-cell.js';
import { decodeCreate2, encodeCreated2 } from '../src/cell/create2.js';
import { CIRCUIT_VERIFICATION, EMPTY_NTOR_MESSAGE } from '../src/circuit/handshake-params.js';
import { CELL_LENGTH, TOR1_KEY_MATERIAL_LENGTH } from '../src/constants.js';
import { crypto } from '../src/crypto/crypto.js';
import { ntorV3ServerHandshake } from '../src/crypto/ntor-v3.js';
import { FrameOpener, FrameSealer, FRAME_HEADER_LENGTH, validFrameLength } from '../src/link/frame.js';
import { LinkResponder, signLinkCertificate } from '../src/link/link-handshake.js';
import { TAGLEN } from '../src/link/noise.js';
import type { HopInfo } from '../client/origin-circuit.js';
import type { RelayKeys } from '../relay/keys.js';

export interface CountSink {
  info: HopInfo;
  /** Cells received on every link: RELAY cells while verifying, every cell once counting. */
  cells(): number;
  /** Circuits created (CREATED2 sent). */
  circuits(): number;
  /** Links handshaken. */
  links(): number;
  /** Wall time spent in the sink's socket handlers, ms (its JavaScript cost, kernel reads excluded). */
  busyMs(): number;
  /** Stop decrypting: count cells by frame length from now on. */
  countOnly(): void;
  /** The first failure (a bad frame, a cell on an unknown circuit), or null. */
  failure(): Error | null;
  close(): Promise<void>;
}

export async function startCountSink(keys: RelayKeys, address = '127.0.0.1'): Promise<CountSink> {
  const certificate = signLinkCertificate(keys.identity.signer, keys.linkKey.public, crypto);
  let cells = 0;
  let circuits = 0;
  let links = 0;
  let counting = false;
  let failure: Error | null = null;
  let busy = 0;
  const sockets = new Set<Socket>();
  const fail = (error: Error, socket: Socket) => {
    failure ??= error;
    socket.destroy();
  };

  const onConnection = (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    socket.setNoDelay(true);
    const machine = new LinkResponder({ staticKey: keys.linkKey, certificate, backend: crypto });
    let sealer: FrameSealer | null = null;
    let opener: FrameOpener | null = null;
    const created = new Set<number>();

    /** A decrypted frame (verify phase): answer CREATE2, check and count RELAY cells. */
    const verifyFrame = (ciphertext: Uint8Array) => {
      const plaintext = opener!.open(ciphertext);
      for (let at = 0; at < plaintext.length; at += CELL_LENGTH) {
        const cell = plaintext.subarray(at, at + CELL_LENGTH);
        const command = cellCommand(cell);
        const id = cellCircuitId(cell);
        if (command === ChannelCommand.RELAY) {
          if (!created.has(id)) throw new Error(`sink: RELAY cell on unknown circuit ${id}`);
          cells++;
        } else if (command === ChannelCommand.CREATE2) {
          const { handshakeData } = decodeCreate2(cellPayload(cell));
          const { reply } = ntorV3ServerHandshake(keys.ntor, handshakeData, CIRCUIT_VERIFICATION, () => EMPTY_NTOR_MESSAGE, TOR1_KEY_MATERIAL_LENGTH);
          created.add(id);
          circuits++;
          for (const part of sealer!.sealParts(encodeChannelCell(id, ChannelCommand.CREATED2, encodeCreated2(reply)))) socket.write(part);
        }
      }
    };

    // The frame stream (§3.4): a 2-byte length L, then L bytes. A frame whose header
    // arrives while verifying is kept and decrypted; one whose header arrives once
    // counting is skipped, its k = (L - 16) / 514 cells counted.
    let header = 0;
    let headerHave = 0;
    let need = 0;
    let k = 0;
    let body: Uint8Array | null = null;
    let bodyHave = 0;
    const consume = (chunk: Uint8Array) => {
      const n = chunk.length;
      let at = 0;
      while (at < n) {
        if (need === 0) {
          header = (header << 8) | chunk[at++]!;
          if (++headerHave < FRAME_HEADER_LENGTH) continue;
          const length = header & 0xffff;
          header = 0;
          headerHave = 0;
          if (!validFrameLength(length) || (length - TAGLEN) % CELL_LENGTH !== 0) throw new Error(`sink: frame of ${length} bytes is not whole cells`);
          need = length;
          k = (length - TAGLEN) / CELL_LENGTH;
          body = counting ? null : new Uint8Array(length);
          bodyHave = 0;
          continue;
        }
        const step = Math.min(need, n - at);
        if (body !== null) body.set(chunk.subarray(at, at + step), bodyHave);
        bodyHave += step;
        need -= step;
        at += step;
        if (need > 0) continue;
        if (body !== null) verifyFrame(body);
        else cells += k;
        body = null;
      }
    };

    socket.on('data', (chunk: Uint8Array) => {
      const started = performance.now();
      try {
        if (!machine.done) {
          machine.push(chunk);
          for (const bytes of machine.takeOutput()) socket.write(bytes);
          if (!machine.done) return;
          links++;
          sealer = new FrameSealer(machine.result.keys.send);
          opener = new FrameOpener(machine.result.keys.recv);
          chunk = machine.result.leftover;
          if (chunk.length === 0) return;
        }
        consume(chunk);
      } catch (error) {
        fail(error as Error, socket);
      } finally {
        busy += performance.now() - started;
      }
    });
  };

  const server: Server = createServer(onConnection);
  server.listen(0, address);
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  const port = (server.address() as AddressInfo).port;
  return {
    info: { nickname: 'sink', identity: keys.identity.identity, linkKey: keys.linkKey.public, ntorOnionKey: keys.ntor.onionKey, address, orPort: port },
    cells: () => cells,
    circuits: () => circuits,
    links: () => links,
    busyMs: () => busy,
    countOnly: () => {
      counting = true;
    },
    failure: () => failure,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
