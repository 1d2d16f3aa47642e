import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  encodeConsensus,
  encodeConsensusBody,
  parseConsensus,
  signConsensusBody,
  verifyConsensus,
  MAX_CONSENSUS_BYTES,
  DEFAULT_CLOCK_SKEW_MS,
  type ConsensusBody,
  type ConsensusRelay,
} from '../../src/netdoc/consensus.js';
import { formatSummary, parseSummary } from '../../src/netdoc/exit-policy.js';
import { crypto } from '../../src/crypto/crypto.js';
import { utf8 } from '../../src/bytes.js';
import { b64 } from '../../src/netdoc/text.js';
import { DocumentError } from '../../src/errors.js';
import { DEFAULT_NETWORK_PARAMS } from '../../src/netdoc/params.js';
import { authoritySigner, relayKeys, T0 } from './helpers.js';
import type { AuthoritySigner } from '../../src/netdoc/authority-cert.js';

const code = (c: string) => (e: unknown) => e instanceof DocumentError && e.code === c;
const authSigners = [authoritySigner(201), authoritySigner(202), authoritySigner(203)];
const authIds = authSigners.map((s) => s.cert.identity);

function relay(n: number, over: Partial<ConsensusRelay> = {}): ConsensusRelay {
  const k = relayKeys(n);
  return {
    nickname: `r${n}`,
    identity: k.identity,
    address: `127.0.0.${n}`,
    orPort: 9000 + n,
    linkKey: k.linkKey,
    ntorOnionKey: k.ntorOnionKey,
    descriptorDigest: crypto.sha256(utf8(`d${n}`)),
    flags: ['Exit', 'Fast', 'Guard', 'Running', 'Valid'],
    bandwidth: 1000 * n,
    exitSummary: parseSummary('accept 80,443'),
    ...over,
  };
}

const body: ConsensusBody = {
  validAfter: T0,
  freshUntil: T0 + 60_000,
  validUntil: T0 + 180_000,
  authorities: authIds.map((identity, i) => ({ nickname: `auth${i + 1}`, identity, address: `127.100.0.${i + 1}`, dirPort: 7000 + i })),
  relays: [relay(1), relay(2, { flags: [], exitSummary: parseSummary('reject 1-65535') }), relay(3)],
};

const one = encodeConsensus(body, [authSigners[0]!]);

test('round trip, relays sorted by identity', () => {
  const c = parseConsensus(one);
  assert.equal(c.validAfter, body.validAfter);
  assert.equal(c.freshUntil, body.freshUntil);
  assert.equal(c.validUntil, body.validUntil);
  assert.equal(c.authorities.length, 3);
  assert.equal(c.relays.length, 3);
  const sorted = [...body.relays].sort((a, b) => Buffer.compare(Buffer.from(a.identity), Buffer.from(b.identity)));
  c.relays.forEach((r, i) => {
    const want = sorted[i]!;
    assert.equal(r.nickname, want.nickname);
    assert.deepEqual(r.identity, want.identity);
    assert.equal(r.address, want.address);
    assert.equal(r.orPort, want.orPort);
    assert.deepEqual(r.linkKey, want.linkKey);
    assert.deepEqual(r.ntorOnionKey, want.ntorOnionKey);
    assert.deepEqual(r.descriptorDigest, want.descriptorDigest);
    assert.deepEqual(r.flags, want.flags);
    assert.equal(r.bandwidth, want.bandwidth);
    assert.equal(formatSummary(r.exitSummary), formatSummary(want.exitSummary));
  });
  assert.equal(c.bodyText, encodeConsensusBody(body));
  assert.equal(encodeConsensusBody(c), c.bodyText);
  assert.equal(c.signatures.length, 1);
  assert.match(one, /\ns\n/); // a relay without flags
  assert.match(one, /\nw bandwidth=1000\np accept 80,443\n/);
  assert.ok(one.endsWith(signConsensusBody(c.bodyText, authSigners[0]!)));
  assert.deepEqual(verifyConsensus(one, [authIds[0]!], T0).relays.length, 3);
});

test('many authorities sign the same body', () => {
  const bodyText = encodeConsensusBody(body);
  const text = bodyText + authSigners.map((s) => signConsensusBody(bodyText, s)).join('');
  assert.equal(text, encodeConsensus(body, authSigners));
  assert.equal(parseConsensus(text).signatures.length, 3);
});

test('majority rule', () => {
  const text = (seeds: AuthoritySigner[]) => encodeConsensus(body, seeds);
  assert.ok(verifyConsensus(text([authSigners[0]!]), [authIds[0]!], T0));
  assert.ok(verifyConsensus(text([authSigners[0]!, authSigners[2]!]), authIds, T0));
  assert.ok(verifyConsensus(text(authSigners), authIds, T0));
  assert.throws(() => verifyConsensus(text([authSigners[1]!]), authIds, T0), code('ERR_BAD_SIGNATURE'));
  // An untrusted signer does not count, even alongside a trusted one.
  assert.throws(() => verifyConsensus(text([authSigners[0]!, authoritySigner(99)]), authIds, T0), code('ERR_BAD_SIGNATURE'));
  // Duplicated trusted list entries do not lower the bar: 1 of {a,b,b} distinct is 1 of 2.
  assert.throws(() => verifyConsensus(text([authSigners[0]!]), [authIds[0]!, authIds[1]!, authIds[1]!], T0), code('ERR_BAD_SIGNATURE'));
  // A repeated signature line counts once.
  const bodyText = encodeConsensusBody(body);
  const sig = signConsensusBody(bodyText, authSigners[0]!);
  assert.throws(() => verifyConsensus(bodyText + sig + sig, authIds, T0), code('ERR_BAD_SIGNATURE'));
  // A bad signature from a trusted authority does not count.
  const bad = Buffer.from(sig.split(' ')[2]!.trim(), 'base64');
  bad[3]! ^= 1;
  const badLine = `directory-signature ${b64(authSigners[1]!.cert.bytes)} ${b64(bad)}\n`;
  assert.throws(() => verifyConsensus(bodyText + sig + badLine, authIds, T0), code('ERR_BAD_SIGNATURE'));
  assert.ok(verifyConsensus(bodyText + sig + badLine + signConsensusBody(bodyText, authSigners[2]!), authIds, T0));
  // A changed body breaks every signature.
  assert.throws(() => verifyConsensus(text([authSigners[0]!]).replace('bandwidth=1000', 'bandwidth=1001'), [authIds[0]!], T0), code('ERR_BAD_SIGNATURE'));
  assert.throws(() => verifyConsensus(one, [], T0), code('ERR_BAD_SIGNATURE'));
});

test('validity window', () => {
  const exact = { clockSkewMs: 0 };
  assert.ok(verifyConsensus(one, [authIds[0]!], body.validUntil, exact));
  assert.ok(verifyConsensus(one, [authIds[0]!], body.validAfter, exact));
  assert.throws(() => verifyConsensus(one, [authIds[0]!], body.validUntil + 1, exact), /outside its validity window: expired at/);
  assert.throws(() => verifyConsensus(one, [authIds[0]!], body.validAfter - 1, exact), /outside its validity window: not valid until/);
  assert.throws(() => verifyConsensus(one, [authIds[0]!], body.validUntil + 1, exact), code('ERR_DOCUMENT'));
  // The default clock-skew tolerance: 60 s either side.
  assert.ok(verifyConsensus(one, [authIds[0]!], body.validUntil + DEFAULT_CLOCK_SKEW_MS));
  assert.ok(verifyConsensus(one, [authIds[0]!], body.validAfter - DEFAULT_CLOCK_SKEW_MS));
  assert.throws(() => verifyConsensus(one, [authIds[0]!], body.validUntil + DEFAULT_CLOCK_SKEW_MS + 1000), code('ERR_DOCUMENT'));
  assert.throws(() => verifyConsensus(one, [authIds[0]!], body.validAfter - DEFAULT_CLOCK_SKEW_MS - 1000), code('ERR_DOCUMENT'));
  assert.throws(() => encodeConsensus({ ...body, freshUntil: body.validUntil + 1000 }, [authSigners[0]!]), code('ERR_MALFORMED'));
  assert.throws(() => encodeConsensus({ ...body, validAfter: body.validAfter + 1 }, [authSigners[0]!]), code('ERR_MALFORMED'));
});

test('grammar violations are malformed', () => {
  const resign = (t: string) => {
    const end = t.indexOf('directory-footer\n') + 'directory-footer\n'.length;
    return t.slice(0, end) + signConsensusBody(t.slice(0, end), authSigners[0]!);
  };
  const edit = (from: string, to: string) => {
    assert.ok(one.includes(from), from);
    return resign(one.replace(from, to));
  };
  const r1 = one.split('\n').find((l) => l.startsWith('r '))!;
  const cases: [string, string][] = [
    ['@type allium-consensus 1\n', '@type allium-consensus 2\n'],
    ['valid-after ', 'valid-after  '],
    ['fresh-until', 'fresh-untill'],
    ['\nw bandwidth=1000\n', '\nw bw=1000\n'],
    ['\nw bandwidth=1000\n', '\nw bandwidth=-1\n'],
    ['\nw bandwidth=1000\n', '\nw bandwidth=1000\nw bandwidth=1000\n'],
    ['\nw bandwidth=1000\n', '\n'],
    ['p accept 80,443\n', 'p accept 443,80\n'],
    ['p accept 80,443\n', 'p allow 80\n'],
    ['s Exit Fast Guard Running Valid', 's Fast Exit Guard Running Valid'],
    ['s Exit Fast Guard Running Valid', 's Exit Exit Fast Guard Running Valid'],
    ['s Exit Fast Guard Running Valid', 's Exit Fast Guard Running Valid_x'],
    ['s Exit Fast Guard Running Valid', 's Exit Fast Guard Running Valid Stable'],
    ['\nw bandwidth=1000\n', '\nw Measured=5 bandwidth=1000\n'],
    ['\nw bandwidth=1000\n', '\nw bandwidth=1000 Measured=x\n'],
    ['\nw bandwidth=1000\n', '\nw bandwidth=1000 =5\n'],
    ['\nw bandwidth=1000\n', '\nw bandwidth=1000 Measured=5 Measured=6\n'],
    ['\nw bandwidth=1000\n', '\nw bandwidth=1000 Unmeasured=1 Measured=5\n'],
    ['s Exit Fast Guard Running Valid', 's  Exit'],
    [`${r1}\n`, ''],
    [`${r1}\n`, `${r1}\n${r1}\n`],
    [`${r1}\n`, `${r1} extra\n`],
    [`${r1}\n`, `${r1.replace(/ \d+$/, ' 0')}\n`],
    [`${r1}\n`, `${r1.replace(/127\.0\.0\.\d+/, '127.0.0.300')}\n`],
    ['\nd ', '\nd A'],
    ['\nk ', '\nk AAAA'],
  ];
  for (const [from, to] of cases) assert.throws(() => parseConsensus(edit(from, to)), code('ERR_MALFORMED'), `${from} → ${to}`);
  // relays out of order
  const lines = one.split('\n');
  const firstR = lines.findIndex((l) => l.startsWith('r '));
  const block1 = lines.slice(firstR, firstR + 6);
  const block2 = lines.slice(firstR + 6, firstR + 12);
  const swapped = [...lines.slice(0, firstR), ...block2, ...block1, ...lines.slice(firstR + 12)].join('\n');
  assert.throws(() => parseConsensus(resign(swapped)), code('ERR_MALFORMED'));
  // no authorities
  assert.throws(() => parseConsensus(resign(lines.filter((l) => !l.startsWith('authority ')).join('\n'))), code('ERR_MALFORMED'));
  assert.throws(() => parseConsensus(one + 'unknown line\n'), code('ERR_MALFORMED'));
  // no signature, truncated, CRLF, oversized
  assert.throws(() => parseConsensus(encodeConsensusBody(body)), code('ERR_MALFORMED'));
  for (let cut = 1; cut < one.length; cut += 13) assert.throws(() => parseConsensus(one.slice(0, cut)), code('ERR_MALFORMED'), `cut ${cut}`);
  assert.throws(() => parseConsensus(one.replaceAll('\n', '\r\n')), code('ERR_MALFORMED'));
  assert.throws(() => parseConsensus(one + 'x'.repeat(MAX_CONSENSUS_BYTES)), code('ERR_OVERSIZED'));
  assert.throws(() => verifyConsensus('garbage', authIds, T0), code('ERR_MALFORMED'));
  // a signature line with a short signature
  assert.throws(() => parseConsensus(one.replace(/ [A-Za-z0-9+/]{86}\n$/, ' AAAA\n')), code('ERR_MALFORMED'));
});

test('encode refuses duplicates and bad fields', () => {
  assert.throws(() => encodeConsensusBody({ ...body, relays: [relay(1), relay(1)] }), code('ERR_MALFORMED'));
  assert.throws(() => encodeConsensusBody({ ...body, relays: [relay(1, { flags: ['Valid', 'Exit'] })] }), code('ERR_MALFORMED'));
  assert.throws(() => encodeConsensusBody({ ...body, relays: [relay(1, { flags: ['Bo gus'] })] }), code('ERR_MALFORMED'));
  assert.throws(() => encodeConsensusBody({ ...body, authorities: [] }), code('ERR_MALFORMED'));
  assert.throws(() => encodeConsensusBody({ ...body, relays: [relay(1, { orPort: 0 })] }), code('ERR_MALFORMED'));
  assert.throws(() => encodeConsensusBody({ ...body, relays: [relay(1, { descriptorDigest: new Uint8Array(31) })] }), code('ERR_MALFORMED'));
});

/** Re-signs edited consensus text with authority 0, so only the grammar is under test. */
function resignBody(t: string): string {
  const end = t.indexOf('directory-footer\n') + 'directory-footer\n'.length;
  return t.slice(0, end) + signConsensusBody(t.slice(0, end), authSigners[0]!);
}

function editOne(from: string, to: string): string {
  assert.ok(one.includes(from), from);
  return resignBody(one.replace(from, to));
}

test('method and params lines: written by the encoder, read back', () => {
  assert.match(one, /^@type allium-consensus 1\nconsensus-method 4\nvalid-after .*\nfresh-until .*\nvalid-until .*\nparams\nauthority /);
  const c = parseConsensus(one);
  assert.equal(c.consensusMethod, 4);
  assert.equal(c.rawParams.size, 0);
  assert.deepEqual(c.params, DEFAULT_NETWORK_PARAMS);
  // Clients accept any method ≥ 1: a later method only adds lines and params (§8.4).
  const later = verifyConsensus(editOne('consensus-method 4\n', 'consensus-method 7\n'), [authIds[0]!], T0);
  assert.equal(later.consensusMethod, 7);
  assert.equal(parseConsensus(encodeConsensus({ ...body, consensusMethod: 2147483647 }, [authSigners[0]!])).consensusMethod, 2147483647);
  for (const bad of ['consensus-method 0', 'consensus-method 01', 'consensus-method -1', 'consensus-method 2147483648', 'consensus-method', 'consensus-method 2 2', 'consensus-method x']) {
    assert.throws(() => parseConsensus(editOne('consensus-method 4', bad)), code('ERR_MALFORMED'), bad);
  }
  assert.throws(() => parseConsensus(editOne('consensus-method 4\n', '')), code('ERR_MALFORMED'));
  assert.throws(() => parseConsensus(editOne('consensus-method 4\n', 'consensus-method 4\nconsensus-method 4\n')), code('ERR_MALFORMED'));
  assert.throws(() => parseConsensus(editOne('consensus-method 4\nvalid-after', 'valid-after')), code('ERR_MALFORMED'));
  assert.throws(() => parseConsensus(editOne('params\n', '')), code('ERR_MALFORMED'));
  assert.throws(() => parseConsensus(editOne('params\n', 'params\nparams\n')), code('ERR_MALFORMED'));
  for (const consensusMethod of [0, -1, 1.5, 2 ** 31]) {
    assert.throws(() => encodeConsensusBody({ ...body, consensusMethod }), code('ERR_MALFORMED'), String(consensusMethod));
  }
});

test('unknown lines (§8.1): skipped in the header and inside router entries; signatures still cover them', () => {
  const r1 = one.split('\n').find((l) => l.startsWith('r '))!;
  const base = parseConsensus(one);
  // [text to replace, replacement, an unknown line in it]
  const accepted: [string, string, string][] = [
    ['consensus-method 4\n', 'vote-status consensus\nconsensus-method 4\n', 'vote-status consensus'], // right after the first line
    ['params\n', 'params\nknown-flags Exit Fast Guard HSDir Running Stable Valid\n', 'known-flags Exit Fast'],
    ['params\n', 'shared-rand-current-value 9 AAAA\nparams\n', 'shared-rand-current-value 9'],
    ['valid-until', 'voting-delay 300 300\nvalid-until', 'voting-delay 300 300'],
    [`${r1}\n`, `future-header x\n${r1}\n`, 'future-header x'], // between the last authority and the first relay
    [`${r1}\n`, `${r1}\nm 9001 sha256=AAAA\n`, 'm 9001 sha256=AAAA'], // inside a router entry, between r and k
    ['\nw bandwidth=1000\n', '\nv Allium 0.2\nw bandwidth=1000\n', 'v Allium 0.2'], // between s and w
    ['\ndirectory-footer\n', '\nm 1 sha256=AAAA\npr Link=1-5\ndirectory-footer\n', 'pr Link=1-5'], // end of the last entry
    ['\ndirectory-footer\n', `\n${'k'.repeat(64)} ${'x'.repeat(3000)}\ndirectory-footer\n`, 'x'.repeat(3000)],
  ];
  for (const [from, to, unknown] of accepted) {
    const text = editOne(from, to);
    const c = verifyConsensus(text, [authIds[0]!], T0);
    assert.equal(c.relays.length, 3, to);
    assert.deepEqual(c.relays, base.relays, to);
    assert.deepEqual(c.authorities, base.authorities, to);
    assert.equal(c.validUntil, base.validUntil);
    // The unknown line is inside the signed body.
    assert.ok(parseConsensus(text).bodyText.includes(unknown));
    assert.throws(() => verifyConsensus(text.replace(unknown, `${unknown}z`), [authIds[0]!], T0), code('ERR_BAD_SIGNATURE'), `${unknown} altered`);
  }
  // Adding an unknown line to a signed consensus breaks its signatures.
  assert.throws(() => verifyConsensus(one.replace('params\n', 'params\nfoo\n'), [authIds[0]!], T0), code('ERR_BAD_SIGNATURE'));
});

test('unknown flags and w items (§8.4): kept or ignored, so authorities can add them without breaking clients', () => {
  const text = editOne('s Exit Fast Guard Running Valid\nw bandwidth=1000\n', 's BadExit Exit Fast Guard HSDir Running Valid\nw bandwidth=1000 Measured=700 Unmeasured=1\n');
  const c = verifyConsensus(text, [authIds[0]!], T0);
  const edited = c.relays.find((r) => r.nickname === 'r1')!;
  assert.deepEqual(edited.flags, ['BadExit', 'Exit', 'Fast', 'Guard', 'HSDir', 'Running', 'Valid']);
  assert.equal(edited.bandwidth, 1000);
  const others = (relays: readonly ConsensusRelay[]) => relays.filter((r) => r.nickname !== 'r1');
  assert.deepEqual(others(c.relays), others(parseConsensus(one).relays));
  // What the parser kept, the encoder writes back the same way.
  assert.ok(encodeConsensusBody({ ...body, relays: c.relays }).includes('\ns BadExit Exit Fast Guard HSDir Running Valid\n'));
});

test('unknown lines (§8.1): refused before the first line, after the footer, among signatures, or when not a well-formed line', () => {
  const r1 = one.split('\n').find((l) => l.startsWith('r '))!;
  const refused: [string, string][] = [
    ['@type allium-consensus 1\n', 'foo x\n@type allium-consensus 1\n'],
    ['params\n', 'params\n@type allium-consensus 1\n'],
    ['params\n', 'params\n-----BEGIN SIGNATURE-----\n'],
    ['params\n', 'params\n_x 1\n'],
    ['params\n', 'params\nfoo_bar 1\n'],
    ['params\n', `params\n${'k'.repeat(65)}\n`],
    ['params\n', 'params\nfoo  x\n'],
    ['params\n', 'params\nfoo x \n'],
    // Known keywords out of their section are malformed, not skipped.
    ['params\n', 'params\nk AAAA AAAA\n'],
    [`${r1}\n`, `${r1}\nauthority x AAAA 127.0.0.1 80\n`],
    [`${r1}\n`, `${r1}\nparams\n`],
    [`${r1}\n`, `${r1}\nvalid-after 2030-01-02 03:04:05\n`],
    ['\nw bandwidth=1000\n', '\nw bandwidth=1000\ns\n'],
  ];
  for (const [from, to] of refused) assert.throws(() => parseConsensus(editOne(from, to)), code('ERR_MALFORMED'), `${from} → ${to}`);
  // After the footer only signature lines: an unknown line there would not be signed.
  const bodyText = encodeConsensusBody(body);
  const sig0 = signConsensusBody(bodyText, authSigners[0]!);
  const sig1 = signConsensusBody(bodyText, authSigners[1]!);
  assert.ok(verifyConsensus(bodyText + sig0 + sig1, authIds, T0));
  for (const text of [bodyText + 'foo\n' + sig0 + sig1, bodyText + sig0 + 'foo\n' + sig1, bodyText + sig0 + sig1 + 'foo\n', bodyText + 'directory-footer\n' + sig0]) {
    assert.throws(() => parseConsensus(text), code('ERR_MALFORMED'));
  }
  // Unknown lines count toward the document and line limits.
  assert.throws(() => parseConsensus(editOne('params\n', `params\nfoo ${'x'.repeat(4100)}\n`)), code('ERR_OVERSIZED'));
  assert.throws(() => parseConsensus(editOne('params\n', `params\n${'foo x\n'.repeat(Math.ceil(MAX_CONSENSUS_BYTES / 6) + 1)}`)), code('ERR_OVERSIZED'));
});
