/**
 * What the authority answers on its HTTP directory port (docs/protocol.md §9):
 * descriptor uploads into the registry, the consensus in the encoding the
 * client asked for, single descriptors, the authority's own entry, and the
 * votes and signatures the authorities exchange (voting.ts).
 */
import { debuglog } from 'node:util';
import type { DirectoryHandlers, Reply } from './http-server.js';
import type { Published } from './published.js';
import type { Registry } from './registry.js';
import type { Voting } from './voting.js';

const log = debuglog('allium:directory');

/** The authority's own entry as `GET /allium/v1/authority` serves it. */
export interface AuthoritySelf {
  nickname: string;
  identity: string;
  identityHex: string;
  address: string;
  dirPort: number;
  url: string;
}

const textReply = (status: number, body: string): Reply => ({ status, body: `${body}\n` });

export function directoryRoutes(opts: { registry: Registry; voting: Voting; self: () => AuthoritySelf; statusPage: () => string }): DirectoryHandlers {
  const { registry, voting } = opts;
  return {
    uploadDescriptor(text) {
      const outcome = registry.submit(text);
      if (outcome.ok) return textReply(200, outcome.duplicate ? 'duplicate' : 'accepted');
      log('refused descriptor (%d): %s', outcome.status, outcome.reason);
      return textReply(outcome.status, outcome.reason);
    },
    getConsensus(encoding) {
      const published: Published | undefined = voting.published;
      if (published === undefined) return textReply(404, 'no consensus yet');
      if (encoding === 'gzip') return { status: 200, body: published.gzip, headers: { 'content-encoding': 'gzip', vary: 'accept-encoding' } };
      if (encoding === 'deflate') return { status: 200, body: published.deflate, headers: { 'content-encoding': 'deflate', vary: 'accept-encoding' } };
      return { status: 200, body: published.text, headers: { vary: 'accept-encoding' } };
    },
    getDescriptor(id) {
      const entry = registry.get(id);
      return entry === undefined ? textReply(404, 'unknown relay') : { status: 200, body: entry.text };
    },
    getAuthority() {
      return { status: 200, body: `${JSON.stringify(opts.self())}\n`, contentType: 'application/json' };
    },
    uploadVote(text) {
      const answer = voting.receiveVote(text);
      if (answer.status !== 200) log('refused vote (%d): %s', answer.status, answer.body.trim());
      return answer;
    },
    getVote: (validAfterSeconds, identityHex) => voting.getVote(validAfterSeconds, identityHex),
    uploadSignature(text) {
      const answer = voting.receiveSignature(text);
      if (answer.status !== 200) log('refused signature (%d): %s', answer.status, answer.body.trim());
      return answer;
    },
    getSignature: (validAfterSeconds) => voting.getSignature(validAfterSeconds),
    getStatusPage: () => ({ status: 200, body: opts.statusPage(), contentType: 'text/html; charset=utf-8' }),
  };
}
