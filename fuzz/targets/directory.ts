/**
 * Fuzz targets for the HTTP faces of the directory: the authority's
 * descriptor upload route (the body of POST /allium/v1/descriptor, through
 * the registry) and the request-line and Accept-Encoding parsers of the
 * authority and of a relay's BEGIN_DIR server.
 */
import fc from 'fast-check';
import { AlliumError } from '../../src/errors.js';
import { directoryRoutes } from '../../directory/directory-routes.js';
import { negotiateEncoding } from '../../directory/http-server.js';
import { Registry } from '../../directory/registry.js';
import type { Voting } from '../../directory/voting.js';
import { parseDirRequest } from '../../relay/dir/dir-server.js';
import { loadCorpus } from '../corpus.js';
import { check, type FuzzTarget } from '../engine.js';
import { DOC_NOW, descriptorTarget } from './netdoc.js';
import { printable } from './arbitraries.js';

const UPLOAD_STATUSES = new Set([200, 400, 403, 409, 503]);

function authorityRoutes() {
  const registry = new Registry({
    now: () => DOC_NOW,
    probe: async () => false,
    probeTimeoutMs: 1000,
    probeConcurrency: 1,
    runningWindowMs: 60_000,
    maxRelays: 2,
  });
  const routes = directoryRoutes({
    registry,
    // The upload route touches only the registry; votes and signatures have their own document targets.
    voting: { published: undefined } as unknown as Voting,
    statusPage: () => '',
    self: () => ({ nickname: 'fuzz', identity: '', identityHex: '', address: '127.0.0.1', dirPort: 1, url: 'http://127.0.0.1:1' }),
  });
  return { registry, routes };
}

let upload: ReturnType<typeof authorityRoutes> | null = null;
let uploads = 0;

export const authorityUploadTarget: FuzzTarget<string> = {
  name: 'authority-upload',
  generatedPerBatch: 100,
  description: "the authority's descriptor upload (POST body → registry): every body gets 200/400/403/409/503 and the registry stays within its bound",
  kind: 'text',
  modules: ['directory/directory-routes.ts', 'directory/registry.ts'],
  maxRandomLength: 3000,
  arbitrary: () => descriptorTarget.arbitrary(),
  corpus: () => loadCorpus('descriptor', 'text'),
  run(input) {
    // A fresh registry now and then, so that uploads are not all "not newer than the one held".
    if (upload === null || ++uploads % 200 === 0) upload = authorityRoutes();
    const reply = upload.routes.uploadDescriptor(input);
    check(UPLOAD_STATUSES.has(reply.status), () => `upload answered ${reply.status}`);
    check(upload.registry.size <= 2, () => `registry holds ${upload!.registry.size} relays, above its bound of 2`);
    if (reply.status !== 200) throw new AlliumError('ERR_MALFORMED', `refused with ${reply.status}`);
  },
};

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'get', 'G E T', ''];
const PATHS = ['/allium/v1/descriptor/self', '/allium/v1/consensus', '/', '/a?b=c', '/%00', '//x'];
const requestHead = fc
  .tuple(fc.oneof(fc.constantFrom(...METHODS), printable(10)), fc.oneof(fc.constantFrom(...PATHS), printable(80)), fc.constantFrom('HTTP/1.0', 'HTTP/1.1', 'HTTP/2', ''), fc.array(printable(40), { maxLength: 4 }))
  .map(([m, p, v, headers]) => [`${m} ${p} ${v}`, ...headers].join('\r\n'));
const acceptEncoding = fc
  .array(fc.tuple(fc.constantFrom('gzip', 'deflate', 'identity', '*', 'br', 'GZIP', ''), fc.option(fc.constantFrom('0', '1', '0.5', '1.0', 'x', '-1', '1e9'))), { maxLength: 5 })
  .map((parts) => parts.map(([n, q]) => (q === null ? n : `${n};q=${q}`)).join(', '));

export const dirHttpTarget: FuzzTarget<string> = {
  name: 'dir-http',
  description: "a BEGIN_DIR request head (parseDirRequest) and an Accept-Encoding header (negotiateEncoding): total functions with bounded answers; an accepted request line re-parses to itself",
  kind: 'text',
  modules: ['relay/dir/dir-server.ts', 'directory/http-server.ts'],
  maxRandomLength: 400,
  arbitrary: () => fc.oneof(requestHead, acceptEncoding),
  corpus: () => loadCorpus('dir-http', 'text'),
  run(input) {
    const encoding = negotiateEncoding(input);
    check(encoding === 'gzip' || encoding === 'deflate' || encoding === 'identity', () => `negotiated ${String(encoding)}`);
    const request = parseDirRequest(input);
    if ('status' in request) {
      check(request.status === 400, () => `status ${request.status}`);
      throw new AlliumError('ERR_MALFORMED', 'not a request line');
    }
    const again = parseDirRequest(`${request.method} ${request.path} HTTP/1.0`);
    check(!('status' in again) && again.method === request.method && again.path === request.path, () => 'request line does not re-parse to itself');
  },
};

export function makeDirectoryCorpus(): Record<string, string[]> {
  return {
    'dir-http': ['GET /allium/v1/descriptor/self HTTP/1.0\r\nHost: x', 'HEAD / HTTP/1.1', 'gzip, deflate;q=0.5', 'identity;q=0, *;q=0', 'br'],
  };
}
