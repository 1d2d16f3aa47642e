/** The status page renderer (docs/protocol.md §9.10): escaping, and a page with no consensus yet. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { escapeHtml, renderStatusPage } from '../../directory/status-page.js';

test('escaping and an authority with nothing published', () => {
  assert.equal(escapeHtml(`<script>alert("x") & 'y'</script>`), '&lt;script&gt;alert(&quot;x&quot;) &amp; &#39;y&#39;&lt;/script&gt;');
  const page = renderStatusPage({
    nickname: 'auth1',
    identityHex: 'ab'.repeat(32),
    url: 'http://127.0.0.1:7000',
    now: Date.UTC(2030, 0, 1),
    consensus: undefined,
    authorities: null,
    relays: [{ identityHex: 'cd'.repeat(32), nickname: 'relay1', address: '127.1.0.1', orPort: 9001, advertised: 1000, running: false, measured: undefined, stats: undefined }],
    rounds: [{ validAfter: Date.UTC(2030, 0, 1), votes: 1, signatures: 0, authorities: 3, published: false, problem: 'only 1 of 3 votes; a consensus needs more than half' }],
    clockSkewMs: 60_000,
  });
  assert.match(page, /No consensus is being served yet\./);
  assert.match(page, /<td>relay1<\/td><td>cdcdcdcdcdcdcdcd<\/td><td>127\.1\.0\.1:9001<\/td><td>\(not in the consensus\)<\/td>/);
  assert.match(page, /<td>not Running<\/td>/);
  assert.match(page, /<td>only 1 of 3 votes; a consensus needs more than half<\/td>/);
  // A stored consensus that does not parse: the error is shown, escaped.
  const broken = renderStatusPage({ nickname: 'a', identityHex: '00', url: 'u', now: 0, consensus: '<bad>\n', authorities: null, relays: [], rounds: [], clockSkewMs: 0 });
  assert.match(broken, /The stored consensus does not parse: consensus: first line must be &quot;@type allium-consensus 1&quot;/);
  assert.ok(!broken.includes('<bad>'));
});
