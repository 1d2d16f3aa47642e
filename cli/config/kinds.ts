/**
 * The value kinds of configuration options as zod schemas: each takes the
 * value as TOML gives it (or as a command-line flag gives it, after
 * `fromFlag`) and yields the normalized value the roles use, or an issue whose
 * message says what is wrong. The leaf checks reuse the CLI's parsers
 * (cli/options.ts, which use src/net/address.ts) so a flag and a file line are
 * judged alike.
 */
import { z } from 'zod';
import { parseExitRule } from '../../src/netdoc/exit-policy.js';
import { parseAuthorityRef, parseIPv4, parseNickname, parseParamPair } from '../options.js';
import { parseDelayMs, parseMbit } from '../link-options.js';
import { hex } from '../../src/bytes.js';
import { parseIp, formatIp, formatIPv6, parseIPv6 } from '../../src/net/address.js';
import { isUsableIPv6 } from '../../src/netdoc/text.js';
import { formatPrefix, parsePrefix } from '../../src/net/prefix.js';
import { formatBytes, formatDuration, parseBytes, parseDuration } from './units.js';

/** A zod schema from a function that returns the normalized value or throws an Error whose message is the reason. */
export function checked<T>(parse: (value: unknown) => T): z.ZodType<T> {
  return z.unknown().transform((value, ctx) => {
    try {
      return parse(value);
    } catch (error) {
      ctx.addIssue({ code: 'custom', message: (error as Error).message.replace(/\.$/, '') });
      return z.NEVER;
    }
  }) as unknown as z.ZodType<T>;
}

function needString(value: unknown, what: string): string {
  if (typeof value !== 'string') throw new Error(`expected a string (${what})`);
  return value;
}

/** How a command-line string becomes the value the schema reads. */
export type FlagValue = 'string' | 'integer' | 'boolean' | 'list';

/** One kind: its schema, how a flag string is read, and how --print-config writes it back. */
export interface Kind<T> {
  schema: z.ZodType<T>;
  flag: FlagValue;
  /** The TOML value --print-config writes; default the value itself. */
  toToml?: (value: T) => unknown;
  /** What docs/config.md calls the kind. */
  doc: string;
}

export const bool: Kind<boolean> = { schema: z.boolean(), flag: 'boolean', doc: 'boolean' };

export const text = (maxLength: number): Kind<string> => ({
  schema: z.string().max(maxLength).regex(/^[^\n\r]*$/, 'must be one line'),
  flag: 'string',
  doc: 'string',
});

export const path: Kind<string> = { schema: z.string().min(1, 'must not be empty'), flag: 'string', doc: 'path' };

export const nickname: Kind<string> = {
  schema: checked((v) => parseNickname(needString(v, 'a nickname'))),
  flag: 'string',
  doc: 'nickname (1-19 letters or digits)',
};

export const port: Kind<number> = { schema: z.int().min(0).max(65535), flag: 'integer', doc: 'port 0-65535' };

export const ipv4: Kind<string> = { schema: checked((v) => parseIPv4(needString(v, 'an IPv4 address'))), flag: 'string', doc: 'IPv4 address' };

export const count = (min: number, max: number): Kind<number> => ({ schema: z.int().min(min).max(max), flag: 'integer', doc: `integer ${min}-${max}` });

/** A duration in ms between min and max (inclusive); written back as "10 minutes". */
export const duration = (minMs: number, maxMs = 7 * 86_400_000): Kind<number> => ({
  schema: checked((v) => {
    const ms = parseDuration(v);
    if (ms < minMs || ms > maxMs) throw new Error(`must be between ${formatDuration(minMs)} and ${formatDuration(maxMs)}`);
    return ms;
  }),
  flag: 'integer',
  toToml: formatDuration,
  doc: 'duration ("30 s", "10 minutes"; an integer is milliseconds)',
});

/** A duration in ms that is a whole number of seconds, at least minMs; written back as "1 minute". */
export const wholeSeconds = (minMs: number, maxMs = 86_400_000): Kind<number> => {
  const inner = duration(minMs, maxMs);
  return {
    ...inner,
    schema: inner.schema.refine((ms) => ms % 1000 === 0, 'must be a whole number of seconds (a multiple of 1000 ms)'),
    doc: 'duration, whole seconds ("30 s", "1 minute"; an integer is milliseconds)',
  };
};

/** A byte count between min and max; written back as "1 MB". */
export const bytes = (min: number, max = 2 ** 50): Kind<number> => ({
  schema: checked((v) => {
    const n = parseBytes(v);
    if (n < min || n > max) throw new Error(`must be between ${formatBytes(min)} and ${formatBytes(max)}`);
    return n;
  }),
  flag: 'string',
  toToml: formatBytes,
  doc: 'size ("1 MB", "512 KiB", "8 Mbit"; an integer is bytes)',
});

/** Authorities as `http://HOST:PORT#IDENTITYHEX` strings, normalized (origin, lowercase hex). */
export const authorities: Kind<string[]> = {
  schema: z
    .array(
      checked((v) => {
        const ref = parseAuthorityRef(needString(v, 'http://HOST:PORT#IDENTITYHEX'));
        return `${ref.url}#${hex(ref.identity)}`;
      }),
    )
    .max(32),
  flag: 'list',
  doc: 'list of "http://HOST:PORT#IDENTITYHEX"',
};

/** Exit policy rule lines, each checked with the descriptor's parser ("accept *:80", "reject private:*"). */
export const exitPolicy: Kind<string[]> = {
  schema: z
    .array(
      checked((v) => {
        const line = needString(v, 'an exit policy rule').trim().replace(/\s+/g, ' ');
        parseExitRule(line);
        return line;
      }),
    )
    .max(256),
  flag: 'list',
  doc: 'list of exit policy rules ("accept *:80", "reject *:*"), first match wins',
};

export const oneOf = <T extends string>(values: readonly [T, ...T[]]): Kind<T> => ({
  schema: z.enum(values),
  flag: 'string',
  doc: values.map((v) => `"${v}"`).join(' | '),
});

/** An IPv6 address a relay can advertise (not ::, not IPv4-mapped), normalized to RFC 5952. */
export const ipv6: Kind<string> = {
  schema: checked((v) => {
    const bytes = parseIPv6(needString(v, 'an IPv6 address'));
    const text = bytes === null ? '' : formatIPv6(bytes);
    if (!isUsableIPv6(text)) throw new Error('not an IPv6 address a relay can advertise (e.g. ::1, 2001:db8::7; not :: or ::ffff:a.b.c.d)');
    return text;
  }),
  flag: 'string',
  doc: 'IPv6 address',
};

/** An IPv4 or IPv6 address (listeners that may bind either), normalized. */
export const ip: Kind<string> = {
  schema: checked((v) => {
    const address = parseIp(needString(v, 'an IP address'));
    if (address === null) throw new Error('not an IP address (e.g. 127.0.0.1 or ::1)');
    return formatIp(address);
  }),
  flag: 'string',
  doc: 'IPv4 or IPv6 address',
};

/** Address prefixes ("127.0.0.0/8", "::1", "2001:db8::/32"), normalized to `ADDRESS/BITS`. */
export const prefixes: Kind<string[]> = {
  schema: z
    .array(
      checked((v) => {
        const prefix = parsePrefix(needString(v, 'an address prefix'));
        if (prefix === null) throw new Error('not an address prefix (e.g. 192.0.2.0/24, 2001:db8::/32; no host bits set)');
        return formatPrefix(prefix);
      }),
    )
    .max(256),
  flag: 'list',
  doc: 'list of address prefixes ("192.0.2.0/24", "::1")',
};

/** Relay identities as 64 hex digits (a family), normalized to lowercase, distinct. */
export const identities: Kind<string[]> = {
  schema: z
    .array(
      checked((v) => {
        const text = needString(v, '64 hex digits').toLowerCase().replace(/^\$/, '');
        if (!/^[0-9a-f]{64}$/.test(text)) throw new Error('a relay identity is 64 hex digits (its Ed25519 key, as in its up line or dashboard)');
        return text;
      }),
    )
    .max(32)
    .refine((ids) => new Set(ids).size === ids.length, 'lists an identity twice'),
  flag: 'list',
  doc: 'list of relay identities (64 hex digits each)',
};

/** A descriptor's contact line: printable ASCII, runs of spaces folded, 1-200 characters. */
export const contact: Kind<string> = {
  schema: checked((v) => {
    const text = needString(v, 'contact information').trim().replace(/\s+/g, ' ');
    if (!/^[\x20-\x7e]{1,200}$/.test(text)) throw new Error('contact is 1-200 printable ASCII characters');
    return text;
  }),
  flag: 'string',
  doc: 'string (1-200 printable ASCII characters)',
};

/** Control-port hashed passwords as `tor --hash-password` prints them: `16:` and 60 hex digits each. */
export const hashedPasswords: Kind<string[]> = {
  schema: z
    .array(
      checked((v) => {
        const text = needString(v, '16: and 60 hex digits').trim();
        if (!/^16:[0-9A-Fa-f]{60}$/.test(text)) throw new Error('a hashed control password is "16:" and 60 hex digits, as `tor --hash-password` prints it');
        return text.toUpperCase().replace(/^16:/, '16:');
      }),
    )
    .max(32),
  flag: 'list',
  doc: 'list of "16:HEX" hashed passwords',
};

/** A number as TOML (a number) or a flag (a string) gives it, as text for the CLI's parsers. */
function numberText(value: unknown, what: string): string {
  return typeof value === 'number' ? String(value) : needString(value, what);
}

/** A link delay or jitter in ms, 0-60000, fractions allowed (cli/link-options.ts). */
export const delayMs: Kind<number> = {
  schema: checked((v) => parseDelayMs(numberText(v, 'milliseconds'))),
  flag: 'string',
  doc: 'milliseconds 0-60000 (fractions allowed)',
};

/** A line rate in Mbit/s, more than 0 and at most 100000 (cli/link-options.ts). */
export const mbit: Kind<number> = {
  schema: checked((v) => parseMbit(numberText(v, 'Mbit/s'))),
  flag: 'string',
  doc: 'Mbit/s (more than 0, at most 100000)',
};

/** Network parameters for the consensus `params` line as "KEY=INTEGER" texts (docs/protocol.md §8.5). */
export const networkParams: Kind<string[]> = {
  schema: z.array(checked((v) => parseParamPair(needString(v, 'KEY=INTEGER')))).max(64),
  flag: 'list',
  doc: 'list of "KEY=INTEGER" ("cc_alg=0")',
};
