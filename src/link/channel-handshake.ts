/**
 * Opening a link: the key and option shapes of `Channel.connect` /
 * `Channel.accept`, the handshake machine each side runs (link-handshake.ts)
 * with its cached link certificate, and the driver that feeds that machine
 * from a socket until it finishes, fails or times out. Once it finishes, the
 * socket belongs to a Channel (channel.ts).
 */
import type { Duplex } from 'node:stream';
import { crypto } from '../crypto/crypto.js';
import { AlliumError, HandshakeError } from '../errors.js';
import {
  LinkInitiator,
  LinkResponder,
  signLinkCertificate,
  type LinkHandshakeMachine,
  type LinkHandshakeResult,
} from './link-handshake.js';
import { generateKeyPair } from './noise.js';
import type { SigningKeySigner } from '../netdoc/signing-key-cert.js';

/** An X25519 key pair (a relay's link key). */
export interface StaticKey {
  secret: Uint8Array;
  public: Uint8Array;
}

/**
 * A relay's Ed25519 identity (public key) and the medium-term signing key
 * that speaks for it (seed and certificate, docs/protocol.md §8.6). `signer`
 * may be replaced on a running relay (a renewed signing key): links opened
 * afterwards present the new certificate.
 */
export interface LinkIdentity {
  identity: Uint8Array;
  signer: SigningKeySigner;
}

export interface ConnectOptions {
  peerLinkKey: Uint8Array;
  peerIdentity: Uint8Array;
  linkKey?: StaticKey;
  identity?: LinkIdentity;
  timeoutMs: number;
  /** The clock (ms) against which the peer's signing-key certificate is checked (§3.3); default Date.now. */
  now?: () => number;
}

export interface AcceptOptions {
  linkKey: StaticKey;
  identity: LinkIdentity;
  timeoutMs: number;
  /** The clock (ms) against which the peer's signing-key certificate is checked (§3.3); default Date.now. */
  now?: () => number;
}

/** `err` as an Error (a non-Error thrown becomes ERR_PROTOCOL). */
export function asError(err: unknown): Error {
  return err instanceof Error ? err : new AlliumError('ERR_PROTOCOL', String(err));
}

export function noop(): void {}

/** Certificates are signed once per (signing key, link key) pair. */
const certCache = new WeakMap<StaticKey, { signer: SigningKeySigner; cert: Uint8Array }>();

function certificateFor(linkKey: StaticKey, identity: LinkIdentity): Uint8Array {
  const cached = certCache.get(linkKey);
  if (cached !== undefined && cached.signer === identity.signer) return cached.cert;
  const cert = signLinkCertificate(identity.signer, linkKey.public, crypto);
  certCache.set(linkKey, { signer: identity.signer, cert });
  return cert;
}

/**
 * The initiator's handshake machine for `opts`: a relay's (linkKey and
 * identity, presenting its certificate) or an anonymous client's (neither; a
 * fresh link key). Throws ERR_CONFIG when only one of the two is given.
 */
export function initiatorMachine(opts: ConnectOptions): LinkHandshakeMachine {
  if ((opts.linkKey === undefined) !== (opts.identity === undefined)) {
    throw new AlliumError('ERR_CONFIG', 'Channel.connect: give both linkKey and identity (relay) or neither (client)');
  }
  const staticKey = opts.linkKey ?? generateKeyPair(crypto);
  const initiatorOpts: ConstructorParameters<typeof LinkInitiator>[0] = {
    peerLinkKey: opts.peerLinkKey,
    peerIdentity: opts.peerIdentity,
    staticKey,
    backend: crypto,
    now: (opts.now ?? Date.now)(),
  };
  if (opts.linkKey !== undefined && opts.identity !== undefined) {
    initiatorOpts.certificate = certificateFor(opts.linkKey, opts.identity);
  }
  return new LinkInitiator(initiatorOpts);
}

/** The responder's (a relay's) handshake machine for `opts`. */
export function responderMachine(opts: AcceptOptions): LinkHandshakeMachine {
  return new LinkResponder({
    staticKey: opts.linkKey,
    certificate: certificateFor(opts.linkKey, opts.identity),
    backend: crypto,
    now: (opts.now ?? Date.now)(),
  });
}

/**
 * Make a handshake machine with `makeMachine` and drive it over `socket`
 * (runHandshake); if making it throws, the socket is destroyed and the
 * promise rejects with that error.
 */
export function startHandshake<T>(
  socket: Duplex,
  makeMachine: () => LinkHandshakeMachine,
  timeoutMs: number,
  build: (result: LinkHandshakeResult, handshakeMs: number) => T,
): Promise<T> {
  let machine: LinkHandshakeMachine;
  try {
    machine = makeMachine();
  } catch (err) {
    socket.on('error', noop);
    socket.destroy();
    return Promise.reject(asError(err));
  }
  return runHandshake(socket, machine, timeoutMs, build);
}

/**
 * Drive a handshake machine over `socket` until it finishes, fails, or the
 * time runs out. On failure the socket is destroyed and the promise rejects
 * (HandshakeError, also when the peer hangs up mid-handshake; AlliumError
 * ERR_TIMEOUT; ERR_LINK_CLOSED for other socket failures).
 */
function runHandshake<T>(
  socket: Duplex,
  machine: LinkHandshakeMachine,
  timeoutMs: number,
  build: (result: LinkHandshakeResult, handshakeMs: number) => T,
): Promise<T> {
  const startedAt = performance.now();
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const cleanup = (): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('end', onEnd);
      socket.off('close', onClose);
    };
    const fail = (err: unknown): void => {
      if (settled) return;
      settled = true;
      cleanup();
      socket.on('error', noop);
      socket.destroy();
      reject(asError(err));
    };
    const writeOut = (): void => {
      for (const bytes of machine.takeOutput()) socket.write(bytes);
    };
    const onData = (chunk: Uint8Array): void => {
      if (settled) return;
      try {
        machine.push(chunk);
        writeOut();
        if (!machine.done) return;
        settled = true;
        cleanup();
        socket.pause();
        resolve(build(machine.result, performance.now() - startedAt));
      } catch (err) {
        settled = false;
        fail(err);
      }
    };
    // A peer that hangs up or resets mid-handshake refused us (e.g. we used the wrong link key):
    // that is a HandshakeError. Other socket errors (refused, unreachable) are ERR_LINK_CLOSED.
    const onError = (err: Error & { code?: string }): void =>
      fail(
        err.code === 'ECONNRESET' || err.code === 'EPIPE'
          ? new HandshakeError(`peer aborted the link handshake: ${err.message}`, { cause: err })
          : new AlliumError('ERR_LINK_CLOSED', `link failed during the handshake: ${err.message}`, { cause: err }),
      );
    const onEnd = (): void => fail(new HandshakeError('peer closed the link during the handshake'));
    const onClose = (): void => fail(new AlliumError('ERR_LINK_CLOSED', 'link closed during the handshake'));
    const timer = setTimeout(
      () => fail(new AlliumError('ERR_TIMEOUT', `link handshake did not finish within ${timeoutMs} ms`)),
      timeoutMs,
    );

    socket.on('data', onData);
    socket.on('error', onError);
    socket.on('end', onEnd);
    socket.on('close', onClose);
    if (socket.destroyed) {
      fail(new AlliumError('ERR_LINK_CLOSED', 'socket already closed'));
      return;
    }
    try {
      writeOut();
    } catch (err) {
      fail(err);
      return;
    }
    socket.resume();
  });
}
