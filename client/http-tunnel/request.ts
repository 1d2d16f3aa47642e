/**
 * The HTTP tunnel port's request parser as a sans-IO state machine
 * (docs/protocol.md §12.2): feed it the client's bytes until it returns a
 * CONNECT request (with whatever followed the header block: tunnel data the
 * client sent early) or an error carrying the status to answer with.
 *
 * Accepted: one request line `CONNECT host:port HTTP/1.x` (authority form;
 * an IPv6 host in brackets), header lines `name: value`, and an empty line.
 * Lines end in CRLF or LF. One empty line before the request line is
 * skipped (RFC 9112 §2.2). `Proxy-Authorization`, when present, is kept as
 * given: it is the stream-isolation key. Every other header is checked for
 * shape and ignored; a CONNECT carries no body, so Content-Length and
 * Transfer-Encoding are refused.
 *
 * Bounded: the request line is at most MAX_REQUEST_LINE_BYTES, the whole
 * header block at most MAX_HEADER_BYTES, at most MAX_HEADER_FIELDS fields.
 */
import { parseDestination } from '../../src/net/hostname.js';

/** Longest request line, CRLF excluded (bytes). */
export const MAX_REQUEST_LINE_BYTES = 2048;
/** Longest header block: request line, fields and the empty line (bytes). */
export const MAX_HEADER_BYTES = 8192;
/** Most header fields. */
export const MAX_HEADER_FIELDS = 64;

/** A CONNECT request. */
export interface ConnectRequest {
  /** Canonical (src/net/hostname.ts): a lower-case hostname, or an IP address in canonical text (brackets removed). */
  host: string;
  /** 1..65535. */
  port: number;
  /** '1.0' or '1.1': the response uses the same version. */
  httpVersion: '1.0' | '1.1';
  /** The Proxy-Authorization value as sent (trimmed), or null. */
  proxyAuthorization: string | null;
}

/** Why a request was refused: the HTTP status to answer with and a sentence for the body. */
export interface TunnelRequestError {
  status: 400 | 405 | 414 | 431 | 505;
  message: string;
}

export type ParseStep =
  | { kind: 'more' }
  | { kind: 'request'; request: ConnectRequest; /** Bytes after the header block (a copy). */ earlyData: Uint8Array }
  | { kind: 'error'; error: TunnelRequestError };

/** RFC 9110 token characters (method and field names). */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Field values: visible ASCII, Latin-1 obs-text, space and tab; no controls. */
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

export class ConnectRequestParser {
  #buffer: Uint8Array = new Uint8Array(0);
  /** Bytes of the header block already split into lines. */
  #scanned = 0;
  #lines: string[] = [];
  #skippedLeadingEmpty = false;
  #finished = false;

  /**
   * Add bytes; returns 'more' until the header block is complete, then the
   * request or an error. After a request or an error, feeding again is a
   * programming error and throws.
   */
  feed(bytes: Uint8Array): ParseStep {
    if (this.#finished) throw new Error('ConnectRequestParser: feed after the end');
    const joined = new Uint8Array(this.#buffer.length + bytes.length);
    joined.set(this.#buffer);
    joined.set(bytes, this.#buffer.length);
    this.#buffer = joined;
    const step = this.#scan();
    if (step.kind !== 'more') this.#finished = true;
    return step;
  }

  #scan(): ParseStep {
    for (;;) {
      const nl = this.#buffer.indexOf(0x0a, this.#scanned);
      const lineLimit = this.#lines.length === 0 ? MAX_REQUEST_LINE_BYTES + 2 : MAX_HEADER_BYTES;
      if (nl < 0) {
        if (this.#lines.length === 0 && this.#buffer.length - this.#scanned > lineLimit) {
          return fail(414, 'the request line is too long');
        }
        if (this.#buffer.length > MAX_HEADER_BYTES) return fail(431, `the request header is larger than ${MAX_HEADER_BYTES} bytes`);
        return { kind: 'more' };
      }
      if (nl + 1 > MAX_HEADER_BYTES) return fail(431, `the request header is larger than ${MAX_HEADER_BYTES} bytes`);
      let end = nl;
      if (end > this.#scanned && this.#buffer[end - 1] === 0x0d) end--;
      const line = Buffer.from(this.#buffer.subarray(this.#scanned, end)).toString('latin1');
      this.#scanned = nl + 1;
      if (line.includes('\r') || line.includes('\0')) return fail(400, 'a bare CR or NUL in the request header');
      if (this.#lines.length === 0) {
        if (line.length > MAX_REQUEST_LINE_BYTES) return fail(414, 'the request line is too long');
        if (line === '' && !this.#skippedLeadingEmpty) {
          this.#skippedLeadingEmpty = true;
          continue;
        }
        if (line === '') return fail(400, 'no request line');
      } else if (line === '') {
        const parsed = parseHead(this.#lines);
        if ('status' in parsed) return { kind: 'error', error: parsed };
        return { kind: 'request', request: parsed, earlyData: this.#buffer.slice(this.#scanned) };
      }
      if (this.#lines.length > MAX_HEADER_FIELDS) return fail(431, `more than ${MAX_HEADER_FIELDS} header fields`);
      this.#lines.push(line);
    }
  }
}

function fail(status: TunnelRequestError['status'], message: string): ParseStep {
  return { kind: 'error', error: { status, message } };
}

/** The request line and fields → a request, or the error to answer with. */
function parseHead(lines: string[]): ConnectRequest | TunnelRequestError {
  const requestLine = lines[0]!;
  const parts = requestLine.split(' ');
  if (parts.length !== 3) return { status: 400, message: 'the request line is not "METHOD target HTTP/1.x"' };
  const [method, target, version] = parts as [string, string, string];
  if (!TOKEN.test(method)) return { status: 400, message: 'the method is not a token' };
  const versionMatch = /^HTTP\/(\d)\.(\d)$/.exec(version);
  if (versionMatch === null) return { status: 400, message: 'the request line does not end with an HTTP version' };
  if (versionMatch[1] !== '1') return { status: 505, message: 'only HTTP/1.0 and HTTP/1.1 are spoken here' };
  if (method !== 'CONNECT') return { status: 405, message: 'this port is a tunnel: only CONNECT is served' };
  const authority = parseAuthority(target);
  if (authority === null) {
    return { status: 400, message: 'the CONNECT target is not host:port with a valid hostname or IP address and a port from 1 to 65535' };
  }

  let proxyAuthorization: string | null = null;
  for (const field of lines.slice(1)) {
    if (field.startsWith(' ') || field.startsWith('\t')) return { status: 400, message: 'folded header lines are not accepted' };
    const colon = field.indexOf(':');
    if (colon <= 0) return { status: 400, message: 'a header line without a name and a colon' };
    const name = field.slice(0, colon);
    if (!TOKEN.test(name)) return { status: 400, message: 'a header name is not a token' };
    const value = field.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, '');
    if (!FIELD_VALUE.test(value)) return { status: 400, message: 'a control character in a header value' };
    const lower = name.toLowerCase();
    if (lower === 'proxy-authorization') {
      if (proxyAuthorization !== null) return { status: 400, message: 'more than one Proxy-Authorization header' };
      proxyAuthorization = value;
    } else if (lower === 'content-length' || lower === 'transfer-encoding') {
      if (!(lower === 'content-length' && value === '0')) return { status: 400, message: 'a CONNECT request has no body' };
    }
  }
  return { host: authority.host, port: authority.port, httpVersion: versionMatch[2] === '0' ? '1.0' : '1.1', proxyAuthorization };
}

/**
 * `host:port` or `[v6]:port` → host (canonical, src/net/hostname.ts) and
 * port; null for anything else: a host that is no valid hostname or IP
 * literal (as SOCKS refuses it, before any stream), IPv6 without brackets,
 * anything but IPv6 in brackets, a port outside 1..65535.
 */
export function parseAuthority(target: string): { host: string; port: number } | null {
  const colon = target.lastIndexOf(':');
  if (colon <= 0) return null;
  const portText = target.slice(colon + 1);
  if (!/^[0-9]{1,5}$/.test(portText)) return null;
  const port = Number(portText);
  if (port < 1 || port > 65535) return null;
  const hostText = target.slice(0, colon);
  const destination = parseDestination(hostText);
  if (destination.type === 'invalid') return null;
  // IPv6 needs brackets (its colons would read as the port's), and only IPv6 goes in them.
  if ((destination.type === 'ipv6') !== hostText.startsWith('[')) return null;
  return { host: destination.host, port };
}
