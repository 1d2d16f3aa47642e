/**
 * Option parsers shared by the `allium` subcommands. Each throws commander's
 * InvalidArgumentError, so a bad value becomes "error: option '--port <port>'
 * argument '70000' is invalid. <reason>" on stderr and a non-zero exit.
 */
import { InvalidArgumentError, type Command } from 'commander';
import { fromHex } from '../src/bytes.js';
import { formatIPv4, parseIPv4 as parseIPv4Bytes } from '../src/net/address.js';
import type { AuthorityRef } from '../relay/relay.js';

/** Length of an Ed25519 identity key, in bytes. */
const IDENTITY_BYTES = 32;

function integer(value: string, what: string): number {
  if (!/^\d+$/.test(value.trim())) throw new InvalidArgumentError(`${what} must be a non-negative integer.`);
  const n = Number(value.trim());
  if (!Number.isSafeInteger(n)) throw new InvalidArgumentError(`${what} is too large.`);
  return n;
}

/** A TCP port, 0..65535 (0 = pick a free port). */
export function parsePort(value: string): number {
  const n = integer(value, 'Port');
  if (n > 65535) throw new InvalidArgumentError('Port must be between 0 and 65535.');
  return n;
}

/** A dotted-quad IPv4 address, with the verdict of src/net/address.ts (no leading zeros, octets 0-255). */
export function parseIPv4(value: string): string {
  const bytes = parseIPv4Bytes(value);
  if (bytes === null) throw new InvalidArgumentError('Not an IPv4 address (expected e.g. 127.0.0.1: four numbers 0-255, no leading zeros).');
  return formatIPv4(bytes);
}

/** A duration in milliseconds, at least `min`. */
export function parseMs(min: number, max = 24 * 3600_000): (value: string) => number {
  return (value: string) => {
    const n = integer(value, 'Duration');
    if (n < min || n > max) throw new InvalidArgumentError(`Duration must be between ${min} and ${max} ms.`);
    return n;
  };
}

/** A duration in milliseconds that is a whole number of seconds, in [min, max]. */
export function parseSecondsMs(min: number, max = 24 * 3600_000): (value: string) => number {
  const inRange = parseMs(min, max);
  return (value: string) => {
    const n = inRange(value);
    if (n % 1000 !== 0) throw new InvalidArgumentError('Must be a whole number of seconds (a multiple of 1000 ms).');
    return n;
  };
}

/** An integer count in [min, max]. */
export function parseCount(min: number, max: number): (value: string) => number {
  return (value: string) => {
    const n = integer(value, 'Count');
    if (n < min || n > max) throw new InvalidArgumentError(`Must be between ${min} and ${max}.`);
    return n;
  };
}

/** A relay nickname: 1-19 letters and digits, as in Tor. */
export function parseNickname(value: string): string {
  if (!/^[A-Za-z0-9]{1,19}$/.test(value)) throw new InvalidArgumentError('Nickname must be 1-19 letters or digits.');
  return value;
}

/** A non-empty path. */
export function parsePath(value: string): string {
  if (value.trim() === '') throw new InvalidArgumentError('Path must not be empty.');
  return value;
}

/** A relay or authority identity: 64 hex digits → 32 bytes. */
export function parseIdentityHex(value: string): Uint8Array {
  if (!/^[0-9a-fA-F]{64}$/.test(value)) throw new InvalidArgumentError(`Identity must be ${IDENTITY_BYTES * 2} hex digits.`);
  return fromHex(value);
}

/** `http://HOST:PORT#IDENTITYHEX` → an AuthorityRef. */
export function parseAuthorityRef(value: string): AuthorityRef {
  const hash = value.lastIndexOf('#');
  if (hash < 0) throw new InvalidArgumentError('Expected URL#IDENTITYHEX, e.g. http://127.100.0.1:7000#<64 hex digits>.');
  const urlText = value.slice(0, hash);
  const idText = value.slice(hash + 1);
  let url: URL;
  try {
    url = new URL(urlText);
  } catch {
    throw new InvalidArgumentError(`Not a URL: ${JSON.stringify(urlText)}.`);
  }
  if (url.protocol !== 'http:') throw new InvalidArgumentError('Authority URL must start with http://.');
  if (!/^[0-9a-fA-F]+$/.test(idText) || idText.length !== IDENTITY_BYTES * 2) {
    throw new InvalidArgumentError(`Identity must be ${IDENTITY_BYTES * 2} hex digits.`);
  }
  return { url: url.origin, identity: fromHex(idText) };
}

/**
 * The options every long-running node (authority, relay) has: `--nickname`,
 * `--data-dir` (where its keys live), `--address` and `--port`. Returns `command`.
 * With `required: false` the first two are declared optional and the caller
 * checks them with `requireOptions` (a command with subcommands cannot have
 * mandatory options: commander would demand them of the subcommands too).
 */
export function nodeOptions(command: Command, what: { role: string; address: string; port: string; required?: boolean }): Command {
  const declare = what.required === false ? command.option.bind(command) : command.requiredOption.bind(command);
  declare('--nickname <name>', `${what.role} nickname (1-19 letters or digits)`, parseNickname);
  declare('--data-dir <dir>', 'directory for keys and state (created 0700; keys 0600)', parsePath);
  return command
    .option('--address <ipv4>', what.address, parseIPv4, '127.0.0.1')
    .option('--port <port>', what.port, parsePort, 0);
}

/** Commander reducer for repeatable options. */
export function collect<T>(parse: (value: string) => T): (value: string, previous: T[] | undefined) => T[] {
  return (value, previous) => [...(previous ?? []), parse(value)];
}

/** Commander reducer for repeatable options. */
export function collectString(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** Fails `command` the way commander does for a missing mandatory option, for each flag whose value is undefined. */
export function requireOptions(command: Command, values: Record<string, unknown>, flags: Record<string, string>): void {
  for (const [key, flag] of Object.entries(flags)) {
    if (values[key] === undefined) command.error(`error: required option '${flag}' not specified`);
  }
}

/**
 * One `--param key=value` (docs/protocol.md §8.5): the key and value as the
 * `params` line carries them; the authority checks the whole set at start.
 * Returns the text unchanged.
 */
export function parseParamPair(value: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}=-?\d{1,10}$/.test(value)) throw new InvalidArgumentError('Expected KEY=INTEGER, e.g. cc_alg=0.');
  return value;
}

/** `key=value` texts → the map the authority publishes (a repeated key: the last wins). */
export function paramsMap(pairs: readonly string[]): Map<string, number> {
  return new Map(pairs.map((p) => [p.slice(0, p.indexOf('=')), Number(p.slice(p.indexOf('=') + 1))] as const));
}
