/**
 * The exit side of a stream (docs/protocol.md §6.4, §6.7): BEGIN → check the
 * name (src/net/hostname.ts) → resolve it here, at the exit → check the exit
 * policy → TCP connect from the relay's own address → CONNECTED (with the
 * half-close flag when the client asked for it), then bytes both ways
 * through src/stream/splice.ts: the destination's EOF is a FIN (or END DONE
 * for a client without half-close), an END DONE from the client half-closes
 * the destination after every byte reached it, and a failure on either side
 * resets the other. Every refusal ends just that stream.
 */
import { connect, type Socket } from 'node:net';
import { lookup, lookupService } from 'node:dns/promises';
import { debuglog } from 'node:util';
import { EndReason } from '../src/cell/reasons.js';
import { BeginFlag, type BeginBody, type ResolvedAnswer } from '../src/cell/stream-messages.js';
import { exitPolicyAllows, exitPolicyAllowsAddress, type ExitPolicy } from '../src/netdoc/exit-policy.js';
import { StreamEndedError } from '../src/errors.js';
import { formatIp, parseIp, parseReversePointerName, unmapIPv4 } from '../src/net/address.js';
import { isPrivateIp } from '../src/net/prefix.js';
import { parseDestination } from '../src/net/hostname.js';
import { PooledReader } from '../src/stream/pooled-read.js';
import { splice } from '../src/stream/splice.js';
import type { RelayCircuit } from './relay-circuit.js';
import type { RelayStream } from '../src/stream/relay-stream.js';

const log = debuglog('allium:exit');

/** True for 0.0.0.0 and ::, which connect() would quietly turn into this host. */
function isUnspecified(address: string): boolean {
  const ip = parseIp(address);
  return ip !== null && ip.bytes.every((b) => b === 0);
}

export const EXIT_CONNECT_TIMEOUT_MS = 10_000;
const RESOLVE_TIMEOUT_MS = 5_000;
/** The TTL (seconds) the exit puts in CONNECTED and RESOLVED answers. */
const CONNECTED_TTL_S = 300;

/** A name lookup: every address of `host`, or a rejection with a system error code (ENOTFOUND, EAI_AGAIN…). */
export type ExitLookup = (host: string) => Promise<Array<{ address: string; family: number }>>;

/** The system resolver (getaddrinfo), addresses in the order it gives them. */
const systemLookup: ExitLookup = (host) => lookup(host, { all: true, verbatim: true });

export interface ExitConfig {
  /** Null for a relay that is not an exit: every BEGIN is refused. */
  policy: ExitPolicy | null;
  /** The relay's own address: outgoing connections are made from it. */
  localAddress: string;
  /** How names are looked up; default the system resolver. (Tests give one that needs no DNS.) */
  lookup?: ExitLookup;
  /** How long a destination socket may outlive its stream's close on the wire (ms); default EXIT_LINGER_MS. */
  lingerMs?: number;
}

/**
 * A destination socket whose stream has closed on the wire (END either way,
 * FIN both ways) is destroyed this long after, whether or not the
 * destination has taken every byte (src/stream/splice.ts): 10 s.
 */
export const EXIT_LINGER_MS = 10_000;

/** The END reason for a failed lookup or connection, from Node's system error code. */
function reasonForError(error: NodeJS.ErrnoException): number {
  switch (error.code) {
    case 'ECONNREFUSED':
      return EndReason.CONNECTREFUSED;
    case 'ETIMEDOUT':
      return EndReason.TIMEOUT;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_NONAME':
      return EndReason.RESOLVEFAILED;
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return EndReason.NOROUTE;
    case 'ECONNRESET':
    case 'EPIPE':
      return EndReason.CONNRESET;
    default:
      return EndReason.MISC;
  }
}

/**
 * Resolve `host` at the exit (5 s limit); an IP address is returned as is.
 * Rejects with StreamEndedError carrying the END reason: TIMEOUT,
 * RESOLVEFAILED, or whatever the system error maps to.
 */
async function resolve(config: ExitConfig, host: string): Promise<string> {
  const results = await resolveAll(config, host);
  // Like Tor's exits, prefer an IPv4 address when the name has both.
  const chosen = results.find((r) => r.family === 4) ?? results[0];
  if (chosen === undefined) throw new StreamEndedError(EndReason.RESOLVEFAILED, 'no address');
  return chosen.address;
}

/** Every address of `host` (an IP address resolves to itself), with resolve()'s limit and errors. */
async function resolveAll(config: ExitConfig, host: string): Promise<Array<{ address: string; family: number }>> {
  const ip = parseIp(host);
  if (ip !== null) return [{ address: host, family: ip.family }];
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new StreamEndedError(EndReason.TIMEOUT, 'resolve timed out')), RESOLVE_TIMEOUT_MS);
  });
  try {
    return await Promise.race([(config.lookup ?? systemLookup)(host), timeout]);
  } catch (error) {
    if (error instanceof StreamEndedError) throw error;
    throw new StreamEndedError(reasonForError(error as NodeJS.ErrnoException), 'resolve failed');
  } finally {
    clearTimeout(timer);
  }
}

/** Tor's rule for names RESOLVE carries for reverse lookups. */
const REVERSE_NAME = /\.(in-addr|ip6)\.arpa\.?$/i;

/** Hostnames a RESOLVED answer can carry (src/cell/stream-messages.ts). */
const ANSWER_HOSTNAME = /^[A-Za-z0-9._-]{1,255}$/;

/**
 * Reverse-resolve `address` at the exit (the system's resolver: the hosts
 * file, then DNS), with resolve()'s limit. Rejects with StreamEndedError
 * RESOLVEFAILED when there is no name, TIMEOUT past the limit.
 */
async function reverseLookup(address: string): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new StreamEndedError(EndReason.TIMEOUT, 'reverse lookup timed out')), RESOLVE_TIMEOUT_MS);
  });
  try {
    const { hostname } = await Promise.race([lookupService(address, 0), timeout]);
    // getnameinfo gives the address back when it has no name.
    if (parseIp(hostname) !== null || !ANSWER_HOSTNAME.test(hostname)) throw new StreamEndedError(EndReason.RESOLVEFAILED, 'no name');
    return hostname;
  } catch (error) {
    if (error instanceof StreamEndedError) throw error;
    throw new StreamEndedError(reasonForError(error as NodeJS.ErrnoException), 'reverse lookup failed');
  } finally {
    clearTimeout(timer);
  }
}

/**
 * RESOLVE at the exit (docs/protocol.md §6.4): look `hostname` up here and
 * answer RESOLVED on `streamId` with its addresses, or with one error answer
 * (transient for a timeout or a temporary failure). An in-addr.arpa or
 * ip6.arpa name asks for a reverse lookup: the answer is one hostname. A
 * relay that is not an exit answers with a non-transient error, and so does
 * an exit asked for the name of a private address its policy would not let
 * a stream reach, or for a partial PTR name.
 */
export function resolveForClient(config: ExitConfig, circuit: RelayCircuit, streamId: number, hostname: string): void {
  const answer = (answers: ResolvedAnswer[]) => {
    if (!circuit.closed) circuit.sendBackward(streamId, { kind: 'resolved', answers });
  };
  const failed = (transient: boolean) => answer([{ type: 'error', transient, ttl: 0 }]);
  const failedWith = (error: StreamEndedError) => failed(error.reason === EndReason.TIMEOUT || error.reason === EndReason.MISC);
  const policy = config.policy;
  if (policy === null) {
    failed(false);
    return;
  }
  if (REVERSE_NAME.test(hostname)) {
    const ip = parseReversePointerName(hostname);
    if (ip === null || (isPrivateIp(unmapIPv4(ip)) && !exitPolicyAllowsAddress(policy, formatIp(ip)))) {
      failed(false);
      return;
    }
    reverseLookup(formatIp(ip)).then((name) => answer([{ type: 'hostname', hostname: name, ttl: CONNECTED_TTL_S }]), failedWith);
    return;
  }
  resolveAll(config, hostname).then(
    (results) => {
      // One RESOLVED body holds at most 498 bytes: 10 bytes per IPv4 answer, 22 per IPv6.
      const answers: ResolvedAnswer[] = results
        .slice(0, 16)
        .map((r) => ({ type: r.family === 4 ? 'ipv4' : 'ipv6', address: r.address, ttl: CONNECTED_TTL_S }) as const);
      if (answers.length === 0) failed(false);
      else answer(answers);
    },
    failedWith,
  );
}

/**
 * BEGIN at this exit for `streamId` (a fresh id; the circuit has checked).
 * Refusals end the stream alone (§6.7): not an exit → EXITPOLICY; a name no
 * resolver should be asked (src/net/hostname.ts) → RESOLVEFAILED, as Tor's
 * exits answer; the hop full → RESOURCELIMIT; then resolve, policy and
 * connect failures with their reasons.
 */
export function beginExitStream(config: ExitConfig, circuit: RelayCircuit, streamId: number, body: BeginBody): void {
  const edge = circuit.edge;
  if (config.policy === null) {
    edge.refuse(streamId, EndReason.EXITPOLICY);
    return;
  }
  const destination = parseDestination(body.host);
  if (destination.type === 'invalid') {
    log('BEGIN refused: not a valid destination (%s)', destination.why);
    edge.refuse(streamId, EndReason.RESOLVEFAILED);
    return;
  }
  if (edge.full) {
    edge.refuse(streamId, EndReason.RESOURCELIMIT);
    return;
  }
  const policy = config.policy;
  const halfClose = (body.flags & BeginFlag.HALF_CLOSE) !== 0;
  // The stream exists from now on, so an END or DATA from the client while we connect is in order.
  const stream = edge.addStream(streamId, 'exit');
  stream.on('error', (error: Error) => log('exit stream closed: %s', error.message));
  resolve(config, destination.host).then(
    (address) => {
      if (stream.destroyed || circuit.closed) return;
      // The unspecified address (0.0.0.0, ::) is no destination, whatever the policy says;
      // CONNECTED could not even name it (§6.6).
      if (isUnspecified(address) || !exitPolicyAllows(policy, address, body.port)) {
        stream.abort(new StreamEndedError(EndReason.EXITPOLICY, 'exit policy'));
        edge.refuse(streamId, EndReason.EXITPOLICY);
        return;
      }
      open(config, stream, streamId, address, body.port, circuit, halfClose);
    },
    (error: StreamEndedError) => {
      if (stream.destroyed || circuit.closed) return;
      stream.abort(error);
      edge.refuse(streamId, error.reason);
    },
  );
}

function open(
  config: ExitConfig,
  stream: RelayStream,
  streamId: number,
  address: string,
  port: number,
  circuit: RelayCircuit,
  halfClose: boolean,
): void {
  const family = parseIp(address)?.family;
  // Reads go into one shared buffer and straight into DATA cells (src/stream/pooled-read.ts).
  const reader = new PooledReader();
  const socket: Socket = connect({
    onread: reader.onread,
    host: address,
    port,
    ...(family === 4 ? { localAddress: config.localAddress } : {}),
    timeout: EXIT_CONNECT_TIMEOUT_MS,
    // The destination's EOF must not end our side before the client has said so.
    allowHalfOpen: true,
  });
  let connected = false;
  const refuse = (reason: number) => {
    socket.destroy();
    if (stream.destroyed || circuit.closed) return;
    stream.abort(new StreamEndedError(reason, 'connect failed'));
    circuit.edge.refuse(streamId, reason);
  };
  socket.on('timeout', () => {
    if (!connected) refuse(EndReason.TIMEOUT);
  });
  socket.on('error', (error: NodeJS.ErrnoException) => {
    log('exit connection error %s', error.code ?? 'unknown');
    if (!connected) refuse(reasonForError(error)); // after CONNECTED, splice() turns it into END
  });
  // The client gave up (END) or the circuit went while we were connecting.
  stream.once('close', () => {
    if (!connected) socket.destroy();
  });
  socket.once('connect', () => {
    connected = true;
    socket.setTimeout(0);
    socket.setNoDelay(true);
    if (stream.destroyed || circuit.closed) {
      socket.destroy();
      return;
    }
    circuit.sendBackward(streamId, {
      kind: 'connected',
      address,
      ttl: CONNECTED_TTL_S,
      ...(halfClose ? { flags: BeginFlag.HALF_CLOSE } : {}),
    });
    if (halfClose) stream.enableHalfClose();
    circuit.edge.opened(stream);
    splice(socket, stream, {
      socketError: (error) => new StreamEndedError(reasonForError(error as NodeJS.ErrnoException), 'destination connection failed'),
      endLingerMs: config.lingerMs ?? EXIT_LINGER_MS,
      reader,
    });
  });
}
