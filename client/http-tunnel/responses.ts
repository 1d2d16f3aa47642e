/**
 * The HTTP tunnel port's answers (docs/protocol.md §12.2): `200` once the
 * stream is CONNECTED, and for a failure a 4xx or 5xx status chosen from
 * the END reason (or the local error), with an `Allium-End-Reason` header
 * naming the reason and a one-line body saying what went wrong. Every
 * failure answer closes the connection.
 */
import { EndReason, endReasonName } from '../../src/cell/reasons.js';
import { AlliumError, StreamEndedError } from '../../src/errors.js';

export const HTTP_REASON_PHRASES: Readonly<Record<number, string>> = {
  200: 'Connection established',
  400: 'Bad Request',
  403: 'Forbidden',
  405: 'Method Not Allowed',
  408: 'Request Timeout',
  414: 'URI Too Long',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
  505: 'HTTP Version Not Supported',
};

/** What to answer a failed CONNECT with. */
export interface TunnelFailure {
  status: number;
  /** The END reason's name (src/cell/reasons.ts), for the Allium-End-Reason header; null for local errors. */
  endReason: string | null;
  message: string;
}

/**
 * The answer for a stream that could not be opened. END reasons: EXITPOLICY
 * 403; TIMEOUT 504; HIBERNATING and RESOURCELIMIT 503; RESOLVEFAILED,
 * CONNECTREFUSED, NOROUTE, DONE, CONNRESET and every other reason 502. Local
 * errors: ERR_TIMEOUT 504; ERR_NO_PATH and ERR_RESOURCE_LIMIT 503 (no
 * circuit could carry it); anything else 502 (the circuit failed).
 */
export function tunnelFailureFor(error: unknown): TunnelFailure {
  if (error instanceof StreamEndedError) {
    const endReason = endReasonName(error.reason);
    switch (error.reason) {
      case EndReason.EXITPOLICY:
        return { status: 403, endReason, message: "the exit relay's policy does not allow this destination" };
      case EndReason.TIMEOUT:
        return { status: 504, endReason, message: 'the exit relay timed out connecting to the destination' };
      case EndReason.RESOLVEFAILED:
        return { status: 502, endReason, message: 'the exit relay could not resolve the host name' };
      case EndReason.CONNECTREFUSED:
      case EndReason.DONE:
      case EndReason.CONNRESET:
        return { status: 502, endReason, message: 'the destination refused the connection' };
      case EndReason.NOROUTE:
        return { status: 502, endReason, message: 'the exit relay has no route to the destination' };
      case EndReason.HIBERNATING:
      case EndReason.RESOURCELIMIT:
        return { status: 503, endReason, message: 'the exit relay is out of resources; try again later' };
      default:
        return { status: 502, endReason, message: 'the exit relay ended the stream' };
    }
  }
  if (error instanceof AlliumError) {
    switch (error.code) {
      case 'ERR_TIMEOUT':
        return { status: 504, endReason: null, message: 'the stream was not connected in time' };
      case 'ERR_NO_PATH':
      case 'ERR_RESOURCE_LIMIT':
        return { status: 503, endReason: null, message: `no circuit can carry this stream: ${error.message}` };
      case 'ERR_CIRCUIT_DESTROYED':
        return { status: 502, endReason: null, message: 'the circuit failed before the stream was connected' };
      default:
        return { status: 502, endReason: null, message: 'the stream could not be opened' };
    }
  }
  return { status: 502, endReason: null, message: 'the stream could not be opened' };
}

/** `HTTP/1.x 200 Connection established` and an empty line: the tunnel is open. */
export function tunnelEstablished(httpVersion: '1.0' | '1.1'): Uint8Array {
  return Buffer.from(`HTTP/${httpVersion} 200 ${HTTP_REASON_PHRASES[200]}\r\n\r\n`, 'latin1');
}

/**
 * A complete failure response: status line, `Content-Type`, `Content-Length`,
 * `Connection: close`, `Allium-End-Reason` when there is one, any `extra`
 * header lines (`Name: value`), and `message` plus a newline as the body.
 */
export function tunnelFailureResponse(
  httpVersion: '1.0' | '1.1',
  status: number,
  message: string,
  endReason: string | null = null,
  extra: readonly string[] = [],
): Uint8Array {
  const body = `${message}\n`;
  const lines = [
    `HTTP/${httpVersion} ${status} ${HTTP_REASON_PHRASES[status] ?? 'Error'}`,
    'Content-Type: text/plain; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(body, 'utf8')}`,
    'Connection: close',
    ...(endReason !== null ? [`Allium-End-Reason: ${endReason}`] : []),
    ...extra,
  ];
  return Buffer.from(`${lines.join('\r\n')}\r\n\r\n${body}`, 'utf8');
}
