/**
 * Stream message bodies (docs/protocol.md §6.4), Tor's formats:
 *   BEGIN:     "host:port" NUL | flags (4, optional)   (IPv6 hosts in brackets)
 *   CONNECTED: empty, or IPv4 (4) | TTL (4), or 0x00000000 | 6 | IPv6 (16) | TTL (4)
 *   END:       reason (1) [ | IPv4 (4) | TTL (4) for EXITPOLICY ]
 */
import { Reader } from '../bytes.js';
import { malformed } from '../errors.js';
import { formatIPv4, parseIPv4, parseIPv6 } from '../net/address.js';

export interface BeginBody {
  host: string;
  port: number;
  flags: number;
}

const HOST_RE = /^[A-Za-z0-9._-]{1,255}$/;

export function encodeBegin(body: BeginBody): Uint8Array {
  const host = parseIPv6(body.host) !== null ? `[${body.host}]` : body.host;
  const text = new TextEncoder().encode(`${host}:${body.port}`);
  const out = new Uint8Array(text.length + 1 + 4);
  out.set(text);
  new DataView(out.buffer).setUint32(text.length + 1, body.flags >>> 0);
  return out;
}

export function decodeBegin(data: Uint8Array): BeginBody {
  const nul = data.indexOf(0);
  if (nul < 0) throw malformed('BEGIN: address is not NUL-terminated');
  const text = new TextDecoder('utf-8', { fatal: false }).decode(data.subarray(0, nul));
  const rest = data.subarray(nul + 1);
  let flags = 0;
  if (rest.length >= 4) flags = new DataView(rest.buffer, rest.byteOffset).getUint32(0);
  else if (rest.length !== 0) throw malformed('BEGIN: truncated flags');
  const colon = text.lastIndexOf(':');
  if (colon <= 0) throw malformed('BEGIN: expected host:port');
  let host = text.slice(0, colon);
  const portText = text.slice(colon + 1);
  if (!/^\d{1,5}$/.test(portText)) throw malformed('BEGIN: bad port');
  const port = Number(portText);
  if (port < 1 || port > 65535) throw malformed('BEGIN: port out of range');
  if (host.startsWith('[') && host.endsWith(']')) {
    host = host.slice(1, -1);
    if (parseIPv6(host) === null) throw malformed('BEGIN: bad IPv6 address');
  } else if (!HOST_RE.test(host)) {
    throw malformed('BEGIN: bad hostname');
  }
  return { host, port, flags };
}

export function encodeConnected(address: string | null, ttl = 300): Uint8Array {
  if (address === null) return new Uint8Array(0);
  const v4 = parseIPv4(address);
  // 0.0.0.0 cannot be written: a zero IPv4 field announces the IPv6 form.
  if (v4 !== null && v4.some((b) => b !== 0)) {
    const out = new Uint8Array(8);
    out.set(v4);
    new DataView(out.buffer).setUint32(4, ttl);
    return out;
  }
  return new Uint8Array(0);
}

export function decodeConnected(data: Uint8Array): { address: string | null } {
  if (data.length === 0) return { address: null };
  const r = new Reader(data, 'CONNECTED');
  const a = r.bytes(4);
  if (a.some((b) => b !== 0)) {
    r.u32();
    return { address: formatIPv4(a) };
  }
  const type = r.u8();
  if (type !== 6) throw malformed('CONNECTED: unknown address type');
  r.bytes(16);
  r.u32();
  return { address: null };
}

export function encodeEnd(reason: number): Uint8Array {
  return new Uint8Array([reason]);
}

export function decodeEnd(data: Uint8Array): number {
  // An empty END body means MISC in Tor.
  return data.length === 0 ? 1 : data[0]!;
}
