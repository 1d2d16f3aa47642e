/**
 * Directory signatures (docs/protocol.md §8.6): the `directory-signature`
 * line that ends votes, consensuses and detached signatures.
 *
 *   directory-signature <base64 authority certificate> <base64 signature>
 *
 * The signature is Ed25519 by the certificate's signing key over
 * DIR_SIGNATURE_CONTEXT || SHA-256(body), where the body is the document's
 * signed part as received. Signing the digest lets one hash of a large
 * document serve every signature on it.
 */
import { concat, utf8 } from '../bytes.js';
import { crypto } from '../crypto/crypto.js';
import { DocumentError } from '../errors.js';
import { AUTHORITY_CERT_LENGTH, certTimeProblem, decodeAuthorityCert, type AuthorityCert, type AuthoritySigner } from './authority-cert.js';
import { b64, unb64 } from './text.js';

export const SIGNATURE_KEYWORD = 'directory-signature';
export const DIR_SIGNATURE_CONTEXT = 'allium-dir-signature-v1';

/** One `directory-signature` line as parsed: grammar only, nothing verified. */
export interface DirSignature {
  /** The certificate's 201 bytes (AUTHORITY_CERT_LENGTH). */
  readonly cert: Uint8Array;
  /** The identity key the certificate names (bytes 1..33 of it), for reporting. */
  readonly identity: Uint8Array;
  readonly signature: Uint8Array;
}

/** SHA-256 of a document's signed part (the text as received). */
export function bodyDigest(bodyText: string): Uint8Array {
  return crypto.sha256(utf8(bodyText));
}

function message(digest: Uint8Array): Uint8Array {
  return concat(utf8(DIR_SIGNATURE_CONTEXT), digest);
}

/** The `directory-signature` line (with its LF) of `signer` over a body whose SHA-256 is `digest`. */
export function signatureLine(digest: Uint8Array, signer: AuthoritySigner): string {
  const signature = crypto.ed25519Sign(signer.signingSeed, message(digest));
  return `${SIGNATURE_KEYWORD} ${b64(signer.cert.bytes)} ${b64(signature)}\n`;
}

/** The arguments of a `directory-signature` line; throws DocumentError ERR_MALFORMED. */
export function parseSignatureArgs(args: readonly string[], what: string): DirSignature {
  if (args.length !== 2) throw new DocumentError('ERR_MALFORMED', `${what}: ${SIGNATURE_KEYWORD} takes 2 arguments`);
  const cert = unb64(args[0]!, `${what} certificate`, AUTHORITY_CERT_LENGTH);
  const signature = unb64(args[1]!, `${what} signature`, 64);
  return { cert, identity: cert.slice(1, 33), signature };
}

/** The outcome of checking one signature: the certificate if it counts, else why not. */
export type SignatureCheck = { ok: true; cert: AuthorityCert } | { ok: false; reason: string };

/**
 * Checks one signature over `digest` at `now` (ms), allowing `skewMs`: the
 * certificate decodes and both its signatures verify (else "forged
 * certificate" or "malformed certificate"), it is within its time window
 * ("certificate expired at …"), and the signature verifies with its signing
 * key ("signature does not verify"). Never throws for bad input.
 */
export function checkSignature(sig: DirSignature, digest: Uint8Array, now: number, skewMs: number): SignatureCheck {
  let cert: AuthorityCert;
  try {
    cert = decodeAuthorityCert(sig.cert);
  } catch (error) {
    const code = (error as DocumentError).code;
    return { ok: false, reason: code === 'ERR_BAD_SIGNATURE' ? `forged certificate (${(error as Error).message})` : `malformed certificate (${(error as Error).message})` };
  }
  const late = certTimeProblem(cert, now, skewMs);
  if (late !== null) return { ok: false, reason: late };
  if (!crypto.ed25519Verify(cert.signingKey, message(digest), sig.signature)) return { ok: false, reason: 'signature does not verify' };
  return { ok: true, cert };
}
