/**
 * The detached signature (docs/protocol.md §8.8): what an authority sends
 * the others once it has computed and signed a consensus — the round, the
 * SHA-256 of the consensus body it computed, and its `directory-signature`
 * line over that body, ready to be appended to the consensus (§8.4).
 *
 *   @type allium-consensus-signature 1
 *   valid-after <time>
 *   consensus-digest <base64 SHA-256 of the consensus body>
 *   directory-signature <base64 certificate> <base64 signature>
 */
import { DocumentError } from '../errors.js';
import type { AuthoritySigner } from './authority-cert.js';
import { checkSignature, parseSignatureArgs, signatureLine, SIGNATURE_KEYWORD, type DirSignature } from './dir-signature.js';
import { b64, formatTime, malformedDoc, openDocument, parseTime, unb64, type DocumentType } from './text.js';

export interface DetachedSignature {
  /** The round (the consensus's valid-after), ms. */
  validAfter: number;
  /** SHA-256 of the consensus body signed. */
  digest: Uint8Array;
  signature: DirSignature;
  /** The `directory-signature` line with its LF, to append to the consensus. */
  line: string;
}

export const DETACHED_SIGNATURE_TYPE_LINE = '@type allium-consensus-signature 1';
export const MAX_DETACHED_SIGNATURE_BYTES = 2048;

const WHAT = 'detached signature';
const TYPE: DocumentType = {
  what: WHAT,
  typeLine: DETACHED_SIGNATURE_TYPE_LINE,
  maxBytes: MAX_DETACHED_SIGNATURE_BYTES,
  maxLine: 1024,
  keywords: new Set(['valid-after', 'consensus-digest', SIGNATURE_KEYWORD]),
};

/** The document for `signer`'s signature over the consensus body whose SHA-256 is `digest`. */
export function encodeDetachedSignature(validAfter: number, digest: Uint8Array, signer: AuthoritySigner): string {
  if (digest.length !== 32) throw malformedDoc(WHAT, 'digest must be 32 bytes');
  return `${DETACHED_SIGNATURE_TYPE_LINE}\nvalid-after ${formatTime(validAfter)}\nconsensus-digest ${b64(digest)}\n${signatureLine(digest, signer)}`;
}

/**
 * Parses a detached signature (grammar only; no unknown lines: nothing in it
 * is covered by the signature except the digest). Throws DocumentError
 * ERR_MALFORMED / ERR_OVERSIZED.
 */
export function parseDetachedSignature(text: string): DetachedSignature {
  const c = openDocument(text, TYPE);
  c.forbidUnknown();
  const validAfter = parseTime(c.take('valid-after', 2).join(' '), WHAT);
  const digest = unb64(c.take('consensus-digest', 1)[0]!, `${WHAT} digest`, 32);
  const at = c.offset;
  const signature = parseSignatureArgs(c.take(SIGNATURE_KEYWORD), WHAT);
  if (!c.done) throw malformedDoc(WHAT, 'nothing may follow the directory-signature line');
  return { validAfter, digest, signature, line: text.slice(at) };
}

/**
 * Parses a detached signature and checks its signature over its digest at
 * `now` (± `skewMs`). Throws DocumentError (grammar) or ERR_BAD_SIGNATURE
 * naming why the signature does not count.
 */
export function verifyDetachedSignature(text: string, now: number, skewMs: number): DetachedSignature {
  const parsed = parseDetachedSignature(text);
  const check = checkSignature(parsed.signature, parsed.digest, now, skewMs);
  if (!check.ok) throw new DocumentError('ERR_BAD_SIGNATURE', `${WHAT}: ${check.reason}`);
  return parsed;
}
