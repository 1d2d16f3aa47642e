/**
 * A role's log, wired from its effective configuration: the logger
 * (./logger.ts) with the node's own addresses marked public for safe
 * logging, one line per important event from the event channels, and the
 * SIGHUP appliers for the log options.
 */
import { join } from 'node:path';
import { subscribe } from '../../src/events.js';
import type { EffectiveConfig } from '../config/effective.js';
import { ConfigError } from '../config/load.js';
import type { Appliers } from '../config/reload.js';
import { createLogger, setProcessLogger, type Logger, type LogLevel, type LogOutput } from './logger.js';

export interface NodeLog {
  readonly logger: Logger;
  readonly appliers: Appliers;
  close(): void;
}

/** Addresses in the configuration that are this node's or its authorities' (not secrets). */
function ownAddresses(config: EffectiveConfig): string[] {
  const out: string[] = [];
  for (const key of ['relay.address', 'authority.address', 'socks.address', 'metrics.address']) {
    if (config.values.has(key)) out.push(config.values.get(key) as string);
  }
  for (const ref of (config.values.get('network.authorities') as string[] | undefined) ?? []) out.push(new URL(ref.slice(0, ref.lastIndexOf('#'))).hostname);
  return out;
}

/** Start the role's log and make it the process's; throws ConfigError for a file destination without a file. */
export function startNodeLog(config: EffectiveConfig): NodeLog {
  const destination = config.must<'stderr' | 'file'>('log.destination');
  const dataDir = config.values.get('storage.data_dir') as string | undefined;
  const file = config.get<string>('log.file') ?? (dataDir !== undefined ? join(dataDir, `${config.role}.log`) : undefined);
  if (destination === 'file' && file === undefined) {
    throw new ConfigError([{ file: config.file ?? `allium ${config.role}`, key: 'log.file', message: 'required when log.destination is "file" (a client has no data directory to default to)' }]);
  }
  const output: LogOutput = { destination, ...(file !== undefined ? { file } : {}), format: config.must<'text' | 'json'>('log.format') };
  const defaultFile = dataDir !== undefined ? join(dataDir, `${config.role}.log`) : undefined;
  /** SIGHUP: one field of the output changed; reopen with all three as they are now. */
  const reopen = (change: Partial<LogOutput>) => {
    const next: LogOutput = { ...output, ...change };
    if (next.file === undefined && defaultFile !== undefined) next.file = defaultFile;
    if (next.destination === 'file' && next.file === undefined) throw new Error('log.file is required when log.destination is "file" (a client has no data directory to default to)');
    logger.setOutput(next);
    Object.assign(output, next);
  };
  const logger = createLogger({
    level: config.must<LogLevel>('log.level'),
    ...output,
    safe: config.must<boolean>('log.safe_logging'),
    role: config.role,
  });
  for (const address of ownAddresses(config)) logger.addPublic(address);
  setProcessLogger(logger);

  let uploads = 0;
  const accepted = new Set<number>();
  const off = [
    subscribe('allium:consensus', (e) => logger[config.role === 'client' ? 'notice' : 'info'](`New consensus: valid after ${new Date(e.validAfter).toISOString()}, ${e.relays} relays, ${e.signatures} signature(s)`)),
    subscribe('allium:descriptor:upload', (e) => {
      uploads++;
      if (!e.accepted) logger.warn(`Descriptor upload to authority ${e.authority + 1} failed${e.status !== null ? ` (HTTP ${e.status})` : ' (no answer)'}; retrying with backoff`);
      else if (!accepted.has(e.authority)) logger.notice(`Descriptor accepted by authority ${e.authority + 1}`);
      else logger.info(`Descriptor upload ${uploads} accepted by authority ${e.authority + 1}`);
      if (e.accepted) accepted.add(e.authority);
      else accepted.delete(e.authority);
    }),
    subscribe('allium:accounting', (e) => {
      const until = new Date(e.periodEnd).toISOString().replace('T', ' ').slice(0, 16);
      if (e.hibernating) logger.notice(`Hibernating: ${e.usedBytes} of ${e.maxBytes} accounting bytes used this period; accepting no new circuits until ${until} UTC`);
      else logger.notice(`Waking up: a new accounting period began; accepting circuits again (period ends ${until} UTC)`);
    }),
    subscribe('allium:key:rotated', (e) => {
      logger.notice(`Onion key rotated; the descriptor now names the new key, and the previous one is accepted until ${new Date(e.previousAcceptedUntil).toISOString().replace('T', ' ').slice(0, 19)} UTC`);
    }),
    subscribe('allium:key:signing', (e) => {
      const at = `${new Date(e.expires).toISOString().replace('T', ' ').slice(0, 19)} UTC`;
      if (e.state === 'renewed') logger.notice(`Signing key renewed with the identity key; the new certificate expires ${at}`);
      else if (e.state === 'reloaded') logger.notice(`Loaded the new signing key certificate from the data directory; it expires ${at}`);
      else if (e.state === 'expiring') logger.warn(`The signing key certificate expires ${at} and the identity key is offline: certify a new one with \`allium keys sign\` before then (docs/operators.md)`);
      else logger.err(`The signing key certificate expired ${at}: authorities and peers refuse this relay until \`allium keys sign\` certifies a new one`);
    }),
    subscribe('allium:link:close', (e) => {
      if (e.code !== null) logger.debug(`Link ${e.linkId} closed: ${e.code} (${e.cellsIn} cells in, ${e.cellsOut} out)`);
    }),
  ];
  return {
    logger,
    appliers: {
      'log.level': (level) => logger.setLevel(level as LogLevel),
      'log.safe_logging': (safe) => logger.setSafe(safe as boolean),
      'log.destination': (value) => reopen({ destination: value as 'stderr' | 'file' }),
      'log.format': (value) => reopen({ format: value as 'text' | 'json' }),
      'log.file': (value) => reopen(value === undefined ? (defaultFile !== undefined ? { file: defaultFile } : {}) : { file: value as string }),
    },
    close() {
      for (const unsubscribe of off) unsubscribe();
      setProcessLogger(undefined);
      logger.close();
    },
  };
}
