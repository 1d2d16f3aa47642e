/**
 * Stream isolation (docs/protocol.md §11.5): which streams may share a
 * circuit. Every stream has an isolation key; a circuit carries streams of
 * one key only, fixed by its first stream. The key is made of
 * - the caller's isolation string: the SOCKS username and password (as Tor's
 *   IsolateSOCKSAuth), or what a program passes to openStream();
 * - the destination address and/or port, when the client is configured to
 *   isolate by them (Tor's IsolateDestAddr, IsolateDestPort);
 * - the NEWNYM epoch: after newnym() no new stream shares a circuit with
 *   any stream from before.
 * Pure; keys are opaque strings that never leave the process.
 */

export interface IsolationOptions {
  /** Streams to different hosts (as the application wrote them) never share a circuit. Default false. */
  isolateDestAddr?: boolean;
  /** Streams to different ports never share a circuit. Default false. */
  isolateDestPort?: boolean;
}

/** Length-prefixed, so that no two different parts give the same text. */
function part(text: string): string {
  return `${text.length}:${text}`;
}

/** The isolation string for SOCKS credentials: empty without a username; username and password are kept apart. */
export function socksIsolation(username: string | undefined, password: string | undefined): string {
  if (username === undefined) return '';
  return `socks${part(username)}${part(password ?? '')}`;
}

/** The isolation key of a stream to `host`:`port` whose caller gave `isolation`, in NEWNYM epoch `epoch`. */
export function isolationKey(isolation: string, host: string, port: number, options: IsolationOptions, epoch: number): string {
  const addr = options.isolateDestAddr === true ? part(host.toLowerCase()) : '';
  const dport = options.isolateDestPort === true ? String(port) : '';
  return `${epoch}|${part(isolation)}|${addr}|${dport}`;
}

/**
 * The isolation string of an HTTP tunnel request: its Proxy-Authorization
 * value (as Tor's IsolateSOCKSAuth does for HTTP CONNECT), in a namespace of
 * its own so that tunnel streams never share a circuit with SOCKS streams.
 */
export function tunnelIsolation(proxyAuthorization: string | null): string {
  return `http${part(proxyAuthorization ?? '')}`;
}
