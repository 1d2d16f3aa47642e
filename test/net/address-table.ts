/**
 * One table of address texts and their verdicts, checked against the address
 * module (test/net/address.test.ts) and through every user of it
 * (test/net/address-users.test.ts), so an address means the same thing in
 * exit policies, SOCKS, EXTEND2, BEGIN, documents and the CLI.
 */

export interface AddressCase {
  readonly text: string;
  /** 4 or 6 for an address, null for text that is not one. */
  readonly family: 4 | 6 | null;
  /** The canonical text (RFC 5952 for IPv6); for addresses only, defaults to `text`. */
  readonly canonical?: string;
  readonly why: string;
}

export const ADDRESS_TABLE: readonly AddressCase[] = [
  // IPv4
  { text: '1.2.3.4', family: 4, why: 'dotted quad' },
  { text: '0.0.0.0', family: 4, why: 'all zeros' },
  { text: '255.255.255.255', family: 4, why: 'all ones' },
  { text: '127.0.0.1', family: 4, why: 'loopback' },
  { text: '010.0.0.1', family: null, why: 'leading zero (octal to some resolvers)' },
  { text: '1.2.3.04', family: null, why: 'leading zero in the last octet' },
  { text: '00.1.2.3', family: null, why: 'double zero' },
  { text: '256.0.0.1', family: null, why: 'octet out of range' },
  { text: '1.2.3.999', family: null, why: 'octet out of range' },
  { text: '1.2.3.1000', family: null, why: 'four-digit octet' },
  { text: '1.2.3', family: null, why: 'three octets' },
  { text: '1.2.3.4.5', family: null, why: 'five octets' },
  { text: '1.2..4', family: null, why: 'empty octet' },
  { text: '1.2.3.4 ', family: null, why: 'trailing space' },
  { text: ' 1.2.3.4', family: null, why: 'leading space' },
  { text: '+1.2.3.4', family: null, why: 'sign' },
  { text: '0x1.2.3.4', family: null, why: 'hex octet' },
  { text: '2130706433', family: null, why: 'a bare number' },
  // IPv6
  { text: '::', family: 6, why: 'unspecified' },
  { text: '::1', family: 6, why: 'loopback' },
  { text: '1::', family: 6, why: 'trailing ::' },
  { text: '2001:0DB8:0000:0000:0000:0000:0000:0001', family: 6, canonical: '2001:db8::1', why: 'uppercase, leading zeros, long form' },
  { text: '2001:db8:0:0:1:0:0:1', family: 6, canonical: '2001:db8::1:0:0:1', why: 'first of two equal zero runs' },
  { text: '2001:db8:0:1:1:1:1:1', family: 6, why: 'a single zero group is not compressed' },
  { text: '1:0:0:2:0:0:0:3', family: 6, canonical: '1:0:0:2::3', why: 'the longest zero run' },
  { text: '1:2:3:4:5:6:7::', family: 6, canonical: '1:2:3:4:5:6:7:0', why: ':: for one group' },
  { text: 'fe80::1', family: 6, why: 'link-local' },
  { text: '::ffff:1.2.3.4', family: 6, why: 'IPv4-mapped, dotted' },
  { text: '::FFFF:7f00:1', family: 6, canonical: '::ffff:127.0.0.1', why: 'IPv4-mapped, hex: formatted dotted' },
  { text: '::ffff:0:0', family: 6, canonical: '::ffff:0.0.0.0', why: 'IPv4-mapped zero' },
  { text: '0:0:0:0:0:ffff:102:304', family: 6, canonical: '::ffff:1.2.3.4', why: 'IPv4-mapped, long form' },
  { text: '64:ff9b::1.2.3.4', family: 6, canonical: '64:ff9b::102:304', why: 'embedded IPv4 that is not mapped' },
  { text: '1:2:3:4:5:6:1.2.3.4', family: 6, canonical: '1:2:3:4:5:6:102:304', why: 'six groups and a quad' },
  { text: '::1.2.3.4', family: 6, canonical: '::102:304', why: 'IPv4-compatible (deprecated)' },
  { text: 'fe80::1%eth0', family: null, why: 'zone id' },
  { text: 'fe80::1%1', family: null, why: 'numeric zone id' },
  { text: '[::1]', family: null, why: 'brackets are not part of an address' },
  { text: '1:2:3:4:5:6:7:8:9', family: null, why: 'nine groups' },
  { text: '1::2:3:4:5:6:7:8', family: null, why: 'eight groups and ::' },
  { text: '1:2:3:4:5:6:7', family: null, why: 'seven groups' },
  { text: '1::2::3', family: null, why: 'two ::' },
  { text: ':::', family: null, why: 'three colons' },
  { text: ':1::', family: null, why: 'leading single colon' },
  { text: '1::2:', family: null, why: 'trailing single colon' },
  { text: ':', family: null, why: 'one colon' },
  { text: '', family: null, why: 'empty' },
  { text: '12345::', family: null, why: 'five-digit group' },
  { text: 'g::1', family: null, why: 'not hex' },
  { text: '::1.2.3', family: null, why: 'short embedded quad' },
  { text: '::ffff:1.2.3.04', family: null, why: 'leading zero in the embedded quad' },
  { text: '::ffff:1.2.3.256', family: null, why: 'embedded octet out of range' },
  { text: '1.2.3.4::', family: null, why: 'embedded quad not at the end' },
  { text: '::1.2.3.4:1', family: null, why: 'group after the embedded quad' },
  { text: '1:2:3:4:5:6:7:1.2.3.4', family: null, why: 'seven groups and a quad' },
  { text: ' ::1', family: null, why: 'leading space' },
];

/** Prefix texts (CIDR) and their verdicts: `null` = refused. */
export interface PrefixCase {
  readonly text: string;
  readonly ok: boolean;
  readonly inside?: readonly string[];
  readonly outside?: readonly string[];
}

export const PREFIX_TABLE: readonly PrefixCase[] = [
  { text: '0.0.0.0/0', ok: true, inside: ['0.0.0.0', '8.8.8.8', '255.255.255.255'], outside: ['::', '::1', '::ffff:8.8.8.8'] },
  { text: '1.2.3.4/32', ok: true, inside: ['1.2.3.4'], outside: ['1.2.3.5', '1.2.3.3'] },
  { text: '1.2.3.4', ok: true, inside: ['1.2.3.4'], outside: ['1.2.3.5'] },
  { text: '10.0.0.0/8', ok: true, inside: ['10.0.0.0', '10.255.255.255'], outside: ['11.0.0.0', '9.255.255.255'] },
  { text: '172.16.0.0/12', ok: true, inside: ['172.16.0.1', '172.31.255.255'], outside: ['172.15.255.255', '172.32.0.0'] },
  { text: '[::]/0', ok: true, inside: ['::', '2001:db8::1', '::ffff:1.2.3.4'], outside: ['1.2.3.4'] },
  { text: '::/0', ok: true, inside: ['ffff::1'] },
  { text: '[::1]/128', ok: true, inside: ['::1'], outside: ['::2', '::'] },
  { text: '[::1]', ok: true, inside: ['::1'], outside: ['::'] },
  { text: '[2001:db8::]/32', ok: true, inside: ['2001:db8:ffff::1'], outside: ['2001:db9::'] },
  { text: 'fe80::/10', ok: true, inside: ['febf::1'], outside: ['fec0::1'] },
  { text: '1.2.3.4/33', ok: false },
  { text: '1.2.3.4/24', ok: false },
  { text: '1.2.3.0/024', ok: false },
  { text: '1.2.3.0/', ok: false },
  { text: '/8', ok: false },
  { text: '1.2.3.0/-1', ok: false },
  { text: '010.0.0.0/8', ok: false },
  { text: '[::1]/129', ok: false },
  { text: '[2001:db8::1]/32', ok: false },
  { text: '[1.2.3.4]/8', ok: false },
  { text: '[::1', ok: false },
  { text: '[fe80::%eth0]/10', ok: false },
  { text: '*', ok: false },
];

/** Pairs and whether path selection counts them as the same network (IPv4 /16, IPv6 /32). */
export const SAME_NETWORK_TABLE: readonly (readonly [string, string, boolean])[] = [
  ['10.1.2.3', '10.1.200.4', true],
  ['10.1.2.3', '10.2.2.3', false],
  ['127.1.0.1', '127.2.0.1', false],
  ['::ffff:10.1.0.1', '10.1.9.9', true],
  ['2001:db8:1::1', '2001:db8:ffff::2', true],
  ['2001:db8::1', '2001:db9::1', false],
  ['10.1.0.0', '::a01:0', false],
  ['0.0.0.1', '::1', false],
];

/** One address from each `private` range of exit policies, and IPv4-mapped forms. */
export const PRIVATE_SAMPLES: readonly string[] = ['0.0.0.1', '10.1.2.3', '100.64.0.1', '127.0.0.1', '127.9.9.9', '169.254.169.254', '172.16.5.4', '192.168.0.1', '::', '::1', 'fc00::1', 'fd12::1', 'fe80::1', 'fec0::1', 'ff02::1', '::ffff:127.0.0.1', '::ffff:192.168.0.1'];
