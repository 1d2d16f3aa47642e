/**
 * A consensus as the authority serves it (docs/protocol.md §9.2): the text
 * and its gzip and deflate forms, compressed once per publication.
 */
import { deflateSync, gzipSync } from 'node:zlib';

/** A published consensus, ready to serve. */
export interface Published {
  text: string;
  gzip: Buffer;
  deflate: Buffer;
}

export function compress(text: string): Published {
  const raw = Buffer.from(text, 'utf8');
  return { text, gzip: gzipSync(raw), deflate: deflateSync(raw) };
}
