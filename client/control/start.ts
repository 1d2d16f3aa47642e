/**
 * Starting the control port for a client (docs/control-port.md): the
 * authentication material (a fresh cookie written 0600, and/or hashed
 * passwords), the event source, and the listener. client.ts calls this with
 * the client's parts; nothing here reaches into them beyond that.
 */
import { CELL_LENGTH } from '../../src/constants.js';
import { crypto } from '../../src/crypto/crypto.js';
import { AlliumError } from '../../src/errors.js';
import { parseHashedPassword, writeCookieFile } from './auth.js';
import { startControlEvents } from './events.js';
import type { BootstrapTracker } from '../bootstrap.js';
import type { CircuitInfo } from '../circuit-manager.js';
import type { StreamTable } from '../stream-table.js';
import type { Consensus } from '../../src/netdoc/consensus.js';
import type { LinkStats } from '../../src/events.js';
import { startControlServer } from './server.js';
import type { ControlAuth, ControlBackend } from './session.js';

/** The Tor version the control port claims, so controllers that gate features on it (stem, nyx) work. */
export const TOR_COMPATIBLE_VERSION = '0.4.9.0-allium';

export interface ControlPortConfig {
  /** 0 picks a free port. */
  port: number;
  /** Write a fresh 32-byte cookie here (mode 0600) and offer COOKIE and SAFECOOKIE. */
  cookieAuthFile?: string;
  /** Offer HASHEDPASSWORD with these (`16:...`, as `tor --hash-password` prints). */
  hashedPasswords?: readonly string[];
}

/** What the control port needs from the client. */
export interface ControlClientParts {
  bootstrap: BootstrapTracker;
  streams: StreamTable;
  circuits(): CircuitInfo[];
  consensus(): Consensus | null;
  linkStats(): LinkStats;
  listeners(): { socks: string[]; control: string[]; httptunnel: string[] };
  conf(): ReadonlyMap<string, string | null>;
  newnym(): void;
  buildCircuit(): Promise<CircuitInfo>;
}

export interface ControlPort {
  readonly address: { host: string; port: number };
  close(): Promise<void>;
}

/** Start the control port on 127.0.0.1. Throws AlliumError ERR_CONFIG without any authentication configured or for a bad hashed password. */
export async function startControlPort(config: ControlPortConfig, parts: ControlClientParts, alliumVersion: string): Promise<ControlPort> {
  const passwords = (config.hashedPasswords ?? []).map(parseHashedPassword);
  if (config.cookieAuthFile === undefined && passwords.length === 0) {
    throw new AlliumError('ERR_CONFIG', 'the control port needs --cookie-auth-file or --hashed-control-password');
  }
  const auth: ControlAuth = {
    cookie: config.cookieAuthFile !== undefined ? { bytes: writeCookieFile(config.cookieAuthFile), path: config.cookieAuthFile } : null,
    passwords,
  };
  const startedAt = Date.now();
  const backend: ControlBackend = {
    version: `${TOR_COMPATIBLE_VERSION} (allium-${alliumVersion})`,
    pid: process.pid,
    startedAt,
    bootstrap: () => parts.bootstrap.status,
    circuits: () => parts.circuits(),
    streams: () => parts.streams.list(),
    consensus: () => parts.consensus(),
    traffic: () => {
      const links = parts.linkStats();
      return { read: links.cellsIn * CELL_LENGTH, written: links.cellsOut * CELL_LENGTH };
    },
    listeners: () => parts.listeners(),
    conf: () => parts.conf(),
    newnym: () => parts.newnym(),
    buildCircuit: () => parts.buildCircuit(),
  };
  const events = startControlEvents(parts);
  let server;
  try {
    server = await startControlServer({
      port: config.port,
      backend: {
        ...backend,
        newnym: () => {
          backend.newnym();
          events.emit({ name: 'SIGNAL', text: 'SIGNAL NEWNYM' });
        },
      },
      auth,
      events,
      random: (n) => crypto.randomBytes(n),
    });
  } catch (error) {
    events.close();
    throw error;
  }
  return {
    address: server.address,
    async close() {
      events.close();
      await server.close();
    },
  };
}
