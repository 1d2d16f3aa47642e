/**
 * The options that give a node's links a wide-area shape (docs/testnet.md
 * "Latency and bandwidth"): `--link-delay`, `--link-jitter`, `--link-rate`,
 * shared by `allium relay`, `allium client`, `allium testnet` and
 * `allium forward`.
 */
import { InvalidArgumentError, Option } from 'commander';
import type { LinkShape } from '../src/link/delay-line.js';

/** The three options as commander parses them. */
export interface LinkShapeOptions {
  linkDelay?: number | undefined;
  linkJitter?: number | undefined;
  linkRate?: number | undefined;
}

/** A number of milliseconds, 0..60000, fractions allowed. */
export function parseDelayMs(value: string): number {
  const n = Number(value.trim());
  if (value.trim() === '' || !Number.isFinite(n) || n < 0 || n > 60_000) throw new InvalidArgumentError('Must be a number of milliseconds between 0 and 60000.');
  return n;
}

/** A rate in Mbit/s, more than 0 and at most 100000. */
export function parseMbit(value: string): number {
  const n = Number(value.trim());
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0 || n > 100_000) throw new InvalidArgumentError('Must be a rate in Mbit/s, more than 0 and at most 100000.');
  return n;
}

/** The three options, described as applying to `what`, for `command.addOption()`. */
export function linkShapeOptions(what: string): [Option, Option, Option] {
  return [
    new Option('--link-delay <ms>', `one-way delay added to ${what}, each direction (emulated in user space)`).argParser(parseDelayMs),
    new Option('--link-jitter <ms>', 'uniform jitter on that delay, ± ms (bytes are never reordered)').argParser(parseDelayMs),
    new Option('--link-rate <mbit>', `line rate of ${what}, Mbit/s each direction`).argParser(parseMbit),
  ];
}

/** The LinkShape the options ask for, or undefined when none is given. */
export function linkShapeOf(opts: LinkShapeOptions): LinkShape | undefined {
  if (opts.linkDelay === undefined && opts.linkJitter === undefined && opts.linkRate === undefined) return undefined;
  return {
    delayMs: opts.linkDelay ?? 0,
    ...(opts.linkJitter !== undefined ? { jitterMs: opts.linkJitter } : {}),
    ...(opts.linkRate !== undefined ? { rateBps: opts.linkRate * 1_000_000 } : {}),
  };
}

/** The command-line arguments that give a child node the same shape. */
export function linkShapeArgs(shape: LinkShape | undefined): string[] {
  if (shape === undefined) return [];
  const args = ['--link-delay', String(shape.delayMs)];
  if (shape.jitterMs !== undefined) args.push('--link-jitter', String(shape.jitterMs));
  if (shape.rateBps !== undefined && shape.rateBps !== null) args.push('--link-rate', String(shape.rateBps / 1_000_000));
  return args;
}
