/**
 * The relay descriptor (docs/protocol.md §8.2): a relay's keys,
 * address, bandwidth and exit policy, signed by the relay's medium-term
 * signing key, which the identity key certifies in the signing-key
 * certificate carried inside `link-cert` (§3.2, §8.6).
 * Strict grammar: every known keyword once, in a fixed order; unknown lines
 * are skipped where §8.1 allows them (before the signature, outside the
 * exit-policy rules) and are covered by the self-signature.
 */
import { equalBytes, fromHex, hex, utf8 } from '../bytes.js';
import { crypto } from '../crypto/crypto.js';
import { DocumentError } from '../errors.js';
import { LINK_CERT_LENGTH, RELAY_CERT_SKEW_MS, verifyLinkCertificate } from '../link/link-handshake.js';
import { certTimeProblem, type SigningKeyCert, type SigningKeySigner } from './signing-key-cert.js';
import { formatExitPolicy, parseExitRule, MAX_EXIT_POLICY_RULES, type ExitPolicy } from './exit-policy.js';
import {
  b64,
  formatTime,
  malformedDoc,
  openDocument,
  parseAddress,
  parseNickname,
  parsePortNumber,
  parseTime,
  parseUint,
  unb64,
  type DocumentType,
} from './text.js';
import { formatOrAddress6, parseOrAddress6, type OrAddress6 } from './text.js';

export interface RelayDescriptor {
  nickname: string;
  /** Ed25519 identity public key (32 bytes). */
  identity: Uint8Array;
  /** X25519 Noise static key of the link layer (32 bytes). */
  linkKey: Uint8Array;
  /** The link certificate (§3.2, 265 bytes): the relay's signing-key certificate (201) | the signing key's signature (64) over "allium-link-cert-v2" || linkKey. */
  linkCert: Uint8Array;
  /** X25519 ntor onion key (32 bytes). */
  ntorOnionKey: Uint8Array;
  /** Dotted-quad IPv4. */
  address: string;
  orPort: number;
  /** Bytes per second. */
  bandwidth: number;
  platform: string;
  /** ms since the epoch, a whole second. */
  published: number;
  exitPolicy: ExitPolicy;
  /** The operator's contact line (torrc ContactInfo): 1..MAX_CONTACT_LENGTH printable ASCII characters. */
  contact?: string;
  /** Identities (32 bytes each) of the relays this relay declares as its family (torrc MyFamily); a family counts only between relays that list each other. */
  family?: readonly Uint8Array[];
  /** True while the relay hibernates (accounting budget spent): it accepts no new circuits, and authorities do not list it as Running. */
  hibernating?: boolean;
  /** A second OR port on IPv6 (torrc `ORPort [addr]:port`; the `or-address` line, §8.2). */
  orAddress6?: OrAddress6;
}

/** Longest contact line, characters. */
export const MAX_CONTACT_LENGTH = 200;
/** Most family members a descriptor may list. */
export const MAX_FAMILY = 32;

export const DESCRIPTOR_TYPE_LINE = '@type allium-relay-descriptor 1';
export const MAX_DESCRIPTOR_BYTES = 20 * 1024;
export const MAX_DESCRIPTOR_LINE = 512;
export const MAX_PLATFORM_LENGTH = 100;
export const MAX_BANDWIDTH = 2 ** 40;
/** A descriptor published longer ago than this is stale. */
export const DESCRIPTOR_MAX_AGE_MS = 36 * 3600_000;
/** A descriptor published further in the future than this is refused. */
export const DESCRIPTOR_MAX_FUTURE_MS = 3600_000;

const WHAT = 'relay descriptor';
const SIGNATURE = 'signature';
/** Framing and known keywords of the descriptor (§8.2); any other keyword is an unknown line. */
const DESCRIPTOR: DocumentType = {
  what: WHAT,
  typeLine: DESCRIPTOR_TYPE_LINE,
  maxBytes: MAX_DESCRIPTOR_BYTES,
  maxLine: MAX_DESCRIPTOR_LINE,
  keywords: new Set([
    'nickname',
    'identity',
    'link-key',
    'link-cert',
    'ntor-onion-key',
    'address',
    'bandwidth',
    'platform',
    'published',
    'exit-policy',
    'accept',
    'reject',
    SIGNATURE,
  ]),
};

/**
 * The signing-key certificate inside `linkCert` when the link certificate is
 * genuine, signs `linkKey` and names `identity` (§8.2). Throws DocumentError
 * ERR_MALFORMED or ERR_BAD_SIGNATURE naming what is wrong.
 */
export function descriptorSigningCert(linkCert: Uint8Array, identity: Uint8Array, linkKey: Uint8Array): SigningKeyCert {
  let cert: SigningKeyCert;
  try {
    cert = verifyLinkCertificate(linkCert, linkKey);
  } catch (error) {
    const code = (error as DocumentError).code === 'ERR_MALFORMED' ? 'ERR_MALFORMED' : 'ERR_BAD_SIGNATURE';
    throw new DocumentError(code, `${WHAT}: link-cert: ${(error as Error).message}`);
  }
  if (!equalBytes(cert.identity, identity)) {
    throw new DocumentError('ERR_BAD_SIGNATURE', `${WHAT}: the signing-key certificate in link-cert is for another identity`);
  }
  return cert;
}

function checkContact(text: string): string {
  if (text.length < 1 || text.length > MAX_CONTACT_LENGTH || !/^[\x20-\x7e]+$/.test(text) || text.trim() !== text || text.includes('  ')) {
    throw malformedDoc(WHAT, `contact must be 1..${MAX_CONTACT_LENGTH} printable ASCII characters, single spaces, none leading or trailing`);
  }
  return text;
}

/** Family members: 1..MAX_FAMILY distinct 32-byte identities, not the relay's own. */
function checkFamily(family: readonly Uint8Array[], self: Uint8Array): readonly Uint8Array[] {
  if (family.length < 1 || family.length > MAX_FAMILY) throw malformedDoc(WHAT, `family lists 1..${MAX_FAMILY} identities`);
  const seen = new Set<string>();
  for (const id of family) {
    if (!(id instanceof Uint8Array) || id.length !== 32) throw malformedDoc(WHAT, 'a family member is a 32-byte identity');
    const text = hex(id);
    if (seen.has(text)) throw malformedDoc(WHAT, 'family lists an identity twice');
    if (equalBytes(id, self)) throw malformedDoc(WHAT, 'family lists the relay itself');
    seen.add(text);
  }
  return family;
}

/** What operatorLines reads. */
interface OperatorLines {
  contact?: string;
  family?: Uint8Array[];
  hibernating: boolean;
  orAddress6?: OrAddress6;
}

/**
 * `contact`, `family`, `hibernating` and `or-address` among the (already
 * well-formed) lines between the exit policy and the signature: in this
 * order, each at most once.
 */
function operatorLines(tail: string, self: Uint8Array): OperatorLines {
  const order = ['contact', 'family', 'hibernating', 'or-address'];
  let last = -1;
  const out: OperatorLines = { hibernating: false };
  for (const line of tail.split('\n')) {
    const keyword = line.split(' ', 1)[0]!;
    const at = order.indexOf(keyword);
    if (at < 0) continue;
    if (at <= last) throw malformedDoc(WHAT, `"${keyword}" out of order or repeated (contact, family, hibernating, or-address, each at most once)`);
    last = at;
    const rest = line.slice(keyword.length + 1);
    if (keyword === 'contact') out.contact = checkContact(rest);
    else if (keyword === 'family') {
      out.family = rest.split(' ').map((t) => {
        if (!/^[0-9a-f]{64}$/.test(t)) throw malformedDoc(WHAT, 'a family member is 64 lowercase hex digits');
        return fromHex(t);
      });
      checkFamily(out.family, self);
    } else if (keyword === 'or-address') {
      out.orAddress6 = parseOrAddress6(rest, WHAT);
    } else {
      if (rest !== '0' && rest !== '1') throw malformedDoc(WHAT, 'hibernating is 0 or 1');
      out.hibernating = rest === '1';
    }
  }
  return out;
}

function checkPlatform(text: string): string {
  if (text.length < 1 || text.length > MAX_PLATFORM_LENGTH || !/^[\x20-\x7e]+$/.test(text) || text.trim() !== text) {
    throw malformedDoc(WHAT, 'platform must be 1..100 printable ASCII characters without surrounding spaces');
  }
  return text;
}

/** The body lines up to (not including) the signature line. Validates every field. */
function bodyText(d: RelayDescriptor): string {
  parseNickname(d.nickname, WHAT);
  for (const [name, value, len] of [
    ['identity', d.identity, 32],
    ['link-key', d.linkKey, 32],
    ['link-cert', d.linkCert, LINK_CERT_LENGTH],
    ['ntor-onion-key', d.ntorOnionKey, 32],
  ] as const) {
    if (!(value instanceof Uint8Array) || value.length !== len) throw malformedDoc(WHAT, `${name} must be ${len} bytes`);
  }
  parseAddress(d.address, WHAT);
  parsePortNumber(String(d.orPort), WHAT);
  parseUint(String(d.bandwidth), MAX_BANDWIDTH, WHAT);
  checkPlatform(d.platform);
  if (d.exitPolicy.length < 1 || d.exitPolicy.length > MAX_EXIT_POLICY_RULES) throw malformedDoc(WHAT, 'exit policy needs 1..256 rules');
  let published: string;
  try {
    published = formatTime(d.published);
  } catch {
    throw malformedDoc(WHAT, 'published must be a whole second');
  }
  const lines = [
    DESCRIPTOR_TYPE_LINE,
    `nickname ${d.nickname}`,
    `identity ${b64(d.identity)}`,
    `link-key ${b64(d.linkKey)}`,
    `link-cert ${b64(d.linkCert)}`,
    `ntor-onion-key ${b64(d.ntorOnionKey)}`,
    `address ${d.address} ${d.orPort}`,
    `bandwidth ${d.bandwidth}`,
    `platform ${d.platform}`,
    `published ${published}`,
    `exit-policy ${d.exitPolicy.length}`,
    ...formatExitPolicy(d.exitPolicy),
    ...(d.contact !== undefined ? [`contact ${checkContact(d.contact)}`] : []),
    ...(d.family !== undefined && d.family.length > 0 ? [`family ${checkFamily(d.family, d.identity).map(hex).join(' ')}`] : []),
    ...(d.hibernating === true ? ['hibernating 1'] : []),
    ...(d.orAddress6 !== undefined ? [`or-address ${formatOrAddress6(d.orAddress6, WHAT)}`] : []),
  ];
  return lines.map((l) => `${l}\n`).join('');
}

/**
 * Encodes and signs a descriptor with the relay's signing key. `signer`'s
 * certificate must certify its seed's key for `d.identity`, and be the one in
 * `d.linkCert`. Throws DocumentError on a field the grammar cannot carry,
 * ERR_BAD_SIGNATURE when the signer does not match.
 */
export function encodeDescriptor(d: RelayDescriptor, signer: SigningKeySigner): string {
  const body = bodyText(d);
  if (!equalBytes(signer.cert.identity, d.identity) || !equalBytes(crypto.ed25519PublicKey(signer.signingSeed), signer.cert.signingKey)) {
    throw new DocumentError('ERR_BAD_SIGNATURE', `${WHAT}: the signing key is not certified for this identity`);
  }
  if (!equalBytes(d.linkCert.subarray(0, signer.cert.bytes.length), signer.cert.bytes)) {
    throw new DocumentError('ERR_BAD_SIGNATURE', `${WHAT}: link-cert carries another signing-key certificate`);
  }
  const sig = crypto.ed25519Sign(signer.signingSeed, utf8(body));
  const text = `${body}${SIGNATURE} ${b64(sig)}\n`;
  if (text.length > MAX_DESCRIPTOR_BYTES) throw new DocumentError('ERR_OVERSIZED', `${WHAT}: larger than ${MAX_DESCRIPTOR_BYTES} bytes`);
  return text;
}

export interface ParseDescriptorOptions {
  /**
   * If given, also refuse a descriptor published before now − 36 h or after
   * now + 1 h, or whose signing-key certificate is not current at now
   * (± RELAY_CERT_SKEW_MS) (ERR_DOCUMENT).
   */
  now?: number;
}

/**
 * Parses and verifies a descriptor: grammar, the chain identity →
 * signing key (the certificate in `link-cert`) → link key and document
 * signature, that `published` lies within the certificate's lifetime, and
 * (with `now`) freshness of both. `digest` is SHA-256 of the whole
 * text. Unknown lines are skipped where §8.1 allows them.
 * Throws DocumentError: ERR_MALFORMED, ERR_OVERSIZED, ERR_BAD_SIGNATURE, ERR_DOCUMENT.
 */
export function parseDescriptor(text: string, opts: ParseDescriptorOptions = {}): { descriptor: RelayDescriptor; digest: Uint8Array } {
  const c = openDocument(text, DESCRIPTOR);
  const nickname = parseNickname(c.take('nickname', 1)[0]!, WHAT);
  const identity = unb64(c.take('identity', 1)[0]!, `${WHAT} identity`, 32);
  const linkKey = unb64(c.take('link-key', 1)[0]!, `${WHAT} link-key`, 32);
  const linkCert = unb64(c.take('link-cert', 1)[0]!, `${WHAT} link-cert`, LINK_CERT_LENGTH);
  const ntorOnionKey = unb64(c.take('ntor-onion-key', 1)[0]!, `${WHAT} ntor-onion-key`, 32);
  const [addr, port] = c.take('address', 2) as [string, string];
  const address = parseAddress(addr, WHAT);
  const orPort = parsePortNumber(port, WHAT);
  const bandwidth = parseUint(c.take('bandwidth', 1)[0]!, MAX_BANDWIDTH, WHAT);
  const platform = checkPlatform(c.takeRest('platform'));
  const published = parseTime(c.take('published', 2).join(' '), WHAT);
  const count = parseUint(c.take('exit-policy', 1)[0]!, MAX_EXIT_POLICY_RULES, WHAT);
  if (count < 1) throw malformedDoc(WHAT, 'exit policy needs at least one rule');
  const rules = [];
  // The counted rules follow `exit-policy` directly: no unknown line among them.
  for (let i = 0; i < count; i++) {
    const kw = c.peekRawKeyword();
    if (kw !== 'accept' && kw !== 'reject') throw malformedDoc(WHAT, `exit policy: expected ${count} rules, found ${i}`);
    rules.push(parseExitRule(c.takeLine()));
  }
  // The optional lines after the policy (§8.2) are unknown lines to the cursor (so a verifier
  // without them, and this one elsewhere in the document, skips them); read them from the tail.
  const tailStart = c.offset;
  c.skipUnknown();
  const signedLength = c.offset;
  const { contact, family, hibernating, orAddress6 } = operatorLines(text.slice(tailStart, signedLength), identity);
  const signature = unb64(c.take(SIGNATURE, 1)[0]!, `${WHAT} signature`, 64);
  if (!c.done) throw malformedDoc(WHAT, `unexpected line after signature`);

  const cert = descriptorSigningCert(linkCert, identity, linkKey);
  if (!crypto.ed25519Verify(cert.signingKey, utf8(text.slice(0, signedLength)), signature)) {
    throw new DocumentError('ERR_BAD_SIGNATURE', `${WHAT}: signature by the certified signing key does not verify`);
  }
  if (opts.now !== undefined) {
    const late = certTimeProblem(cert, opts.now, RELAY_CERT_SKEW_MS);
    if (late !== null) throw new DocumentError('ERR_DOCUMENT', `${WHAT}: signing-key ${late}`);
    if (published < opts.now - DESCRIPTOR_MAX_AGE_MS) throw new DocumentError('ERR_DOCUMENT', `${WHAT}: published more than 36 h ago`);
    if (published > opts.now + DESCRIPTOR_MAX_FUTURE_MS) throw new DocumentError('ERR_DOCUMENT', `${WHAT}: published more than 1 h in the future`);
  }
  if (published < cert.published - RELAY_CERT_SKEW_MS || published > cert.expires) {
    throw new DocumentError('ERR_DOCUMENT', `${WHAT}: published ${formatTime(published)} outside its signing-key certificate's lifetime (${formatTime(cert.published)} to ${formatTime(cert.expires)})`);
  }
  const descriptor: RelayDescriptor = {
    nickname,
    identity,
    linkKey,
    linkCert,
    ntorOnionKey,
    address,
    orPort,
    bandwidth,
    platform,
    published,
    exitPolicy: Object.freeze(rules),
    ...(contact !== undefined ? { contact } : {}),
    ...(family !== undefined ? { family } : {}),
    ...(hibernating ? { hibernating } : {}),
    ...(orAddress6 !== undefined ? { orAddress6 } : {}),
  };
  return { descriptor, digest: crypto.sha256(utf8(text)) };
}
