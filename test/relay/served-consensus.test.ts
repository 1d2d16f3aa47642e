/**
 * ServedConsensus (relay/dir-cache.ts): what a relay's directory cache, or
 * each of its worker processes, serves on BEGIN_DIR — the current consensus
 * while it is valid, and diffs to it from the last four before it (§8.9).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gunzipSync } from 'node:zlib';
import { hex } from '../../src/bytes.js';
import { applyConsensusDiff, consensusDigest } from '../../src/netdoc/consensus-diff.js';
import { crypto } from '../../src/crypto/crypto.js';
import { encodeConsensus, type ConsensusRelay } from '../../src/netdoc/consensus.js';
import { parseSummary } from '../../src/netdoc/exit-policy.js';
import { ServedConsensus } from '../../relay/dir-cache.js';
import { authoritySigner, T0 } from '../netdoc/helpers.js';

const signers = [authoritySigner(41)];

function relay(n: number): ConsensusRelay {
  const key = (what: string) => crypto.sha256(new TextEncoder().encode(`${what} ${n}`));
  return {
    nickname: `r${n}`,
    identity: key('identity'),
    address: `10.${n}.0.1`,
    orPort: 9000 + n,
    linkKey: key('link'),
    ntorOnionKey: key('ntor'),
    descriptorDigest: key('descriptor'),
    flags: ['Fast', 'Running', 'Valid'],
    bandwidth: 1000 * n,
    exitSummary: parseSummary('reject 1-65535'),
  };
}

/** Consensus number n (n ≥ 1): relays 1..3 always, relay n+3 joining, a minute per round. */
const docs = new Map<number, string>();
function doc(n: number): string {
  let text = docs.get(n);
  if (text === undefined) {
    const va = T0 + n * 60_000;
    text = encodeConsensus(
      {
        validAfter: va,
        freshUntil: va + 60_000,
        validUntil: va + 180_000,
        rawParams: new Map(),
        authorities: signers.map((s) => ({ nickname: 'a0', identity: s.cert.identity, address: '127.0.0.1', dirPort: 7000 })),
        relays: [1, 2, 3, n + 3].map(relay),
      },
      signers,
    );
    docs.set(n, text);
  }
  return text;
}
const text = (body: { text: string | Uint8Array }) => (typeof body.text === 'string' ? body.text : Buffer.from(body.text).toString('utf8'));

test('serves the current text, plain and gzip, until valid-until plus the skew, then nothing', () => {
  let now = 1_000_000;
  const served = new ServedConsensus({ now: () => now, clockSkewMs: 60_000 });
  assert.equal(served.document(), null, 'nothing before the first');
  served.set(doc(1), now + 10_000);
  const body = served.document()!;
  assert.equal(text(body), doc(1));
  assert.equal(gunzipSync(body.gzip!).toString('utf8'), doc(1));
  now += 10_000 + 60_000;
  assert.notEqual(served.document(), null, 'still valid at valid-until + skew');
  now += 1;
  assert.equal(served.document(), null, 'expired');
});

test('diffs from each of the last four texts rebuild the current one; older or unknown bases get none', () => {
  const now = 1_000_000;
  const served = new ServedConsensus({ now: () => now });
  for (let n = 1; n <= 6; n++) served.set(doc(n), now + 60_000);
  for (let n = 2; n <= 5; n++) {
    const diff = served.diffFrom(hex(consensusDigest(doc(n))));
    assert.ok(diff !== null, `a diff from consensus ${n}`);
    assert.equal(applyConsensusDiff(doc(n), text(diff)), doc(6));
    assert.equal(applyConsensusDiff(doc(n), gunzipSync(diff.gzip!).toString('utf8')), doc(6));
    assert.equal(served.diffFrom(hex(consensusDigest(doc(n)))), diff, 'made once, then kept');
  }
  assert.equal(served.diffFrom(hex(consensusDigest(doc(1)))), null, 'only the last four are kept');
  assert.equal(served.diffFrom(hex(consensusDigest(doc(6)))), null, 'no diff from the current one to itself');
  assert.equal(served.diffFrom('00'.repeat(32)), null);
});
