/**
 * Network parameters (docs/protocol.md §8.5): the table, defaults, clamping,
 * unknown keys, and the `params` line grammar inside a signed consensus
 * (malformed, truncated and oversized lines).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DEFAULT_NETWORK_PARAMS,
  INT32_MAX,
  INT32_MIN,
  PARAM_TABLE,
  formatParams,
  networkParams,
  parseParams,
  type KnownParam,
} from '../../src/netdoc/params.js';
import { encodeConsensus, encodeConsensusBody, MAX_CONSENSUS_LINE, parseConsensus, signConsensusBody, verifyConsensus, type ConsensusBody } from '../../src/netdoc/consensus.js';
import { DocumentError } from '../../src/errors.js';
import { authoritySigner, T0 } from './helpers.js';

const code = (c: string) => (e: unknown) => e instanceof DocumentError && e.code === c;
const seed = authoritySigner(230);
const identity = seed.cert.identity;
const body: ConsensusBody = {
  validAfter: T0,
  freshUntil: T0 + 60_000,
  validUntil: T0 + 120_000,
  authorities: [{ nickname: 'auth', identity, address: '127.0.0.1', dirPort: 80 }],
  relays: [],
};

/** A consensus whose params line is `line` (signed, so only the grammar is under test). */
function withParamsLine(line: string): string {
  const text = encodeConsensusBody(body).replace('\nparams\n', `\n${line}\n`);
  return text + signConsensusBody(text, seed);
}

test('the table: every default lies within its bounds; Tor values where Tor has the parameter', () => {
  for (const [key, spec] of Object.entries(PARAM_TABLE)) {
    assert.ok(spec.min <= spec.default && spec.default <= spec.max, key);
    assert.ok(spec.min >= INT32_MIN && spec.max <= INT32_MAX, key);
    assert.equal(DEFAULT_NETWORK_PARAMS[key as KnownParam], spec.default);
  }
  assert.deepEqual(
    [PARAM_TABLE.circwindow.default, PARAM_TABLE.circwindow.min, PARAM_TABLE.circwindow.max],
    [1000, 100, 1000],
  );
  // Tor 0.4.8's congestion-control defaults (congestion_control_common.c, _vegas.c, _flow.c).
  const tor: Partial<Record<KnownParam, number>> = {
    cc_alg: 2, cc_cwnd_init: 124, cc_cwnd_min: 124, cc_cwnd_max: INT32_MAX, cc_cwnd_inc: 1, cc_cwnd_inc_pct_ss: 100,
    cc_cwnd_inc_rate: 31, cc_sendme_inc: 31, cc_ewma_cwnd_pct: 50, cc_ewma_max: 10, cc_ewma_ss: 2, cc_rtt_reset_pct: 100,
    cc_vegas_alpha_exit: 186, cc_vegas_beta_exit: 248, cc_vegas_gamma_exit: 186, cc_vegas_delta_exit: 310,
    cc_sscap_exit: 600, cc_ss_max: 5000, cc_cwnd_full_gap: 4, cc_cwnd_full_minpct: 25, cc_cwnd_full_per_cwnd: 1,
    cc_xoff_client: 500, cc_xoff_exit: 500, cc_xon_rate: 500, cc_xon_ewma_cnt: 2,
  };
  for (const [key, value] of Object.entries(tor)) assert.equal(PARAM_TABLE[key as KnownParam].default, value, key);
  assert.ok(Object.isFrozen(DEFAULT_NETWORK_PARAMS));
});

test('defaults: no params line content means every known parameter at its default', () => {
  const c = verifyConsensus(encodeConsensus(body, [seed]), [identity], T0);
  assert.deepEqual(c.params, DEFAULT_NETWORK_PARAMS);
  assert.equal(c.rawParams.size, 0);
  assert.deepEqual(networkParams(new Map()), DEFAULT_NETWORK_PARAMS);
  // A parameter given keeps the others at their defaults.
  const one = networkParams(new Map([['circwindow', 500]]));
  assert.equal(one.circwindow, 500);
  assert.equal(one.sendme_emit_min_version, DEFAULT_NETWORK_PARAMS.sendme_emit_min_version);
});

test('clamping: below the minimum gives the minimum, above the maximum gives the maximum', () => {
  const c = parseConsensus(withParamsLine('params cc_sendme_inc=255 circwindow=5 sendme_accept_min_version=-2147483648 sendme_emit_min_version=2147483647'));
  assert.equal(c.params.circwindow, 100);
  assert.equal(c.params.cc_sendme_inc, 254);
  assert.equal(c.params.sendme_accept_min_version, 0);
  assert.equal(c.params.sendme_emit_min_version, 255);
  // The raw map keeps what was written.
  assert.equal(c.rawParams.get('circwindow'), 5);
  assert.equal(c.rawParams.get('sendme_accept_min_version'), INT32_MIN);
  assert.equal(networkParams(new Map([['circwindow', 1001]])).circwindow, 1000);
  assert.equal(networkParams(new Map([['circwindow', 99]])).circwindow, 100);
  assert.equal(networkParams(new Map([['circwindow', 100]])).circwindow, 100);
  assert.equal(networkParams(new Map([['cc_alg', 7]])).cc_alg, 2);
});

test('unknown keys are parsed and kept but have no effect', () => {
  const c = parseConsensus(withParamsLine('params AllowNonearlyExtend=1 UseOptimisticData=0 circwindow=700 constructor=5 future-knob=-3 toString=1'));
  assert.equal(c.params.circwindow, 700);
  assert.deepEqual([...c.rawParams.keys()], ['AllowNonearlyExtend', 'UseOptimisticData', 'circwindow', 'constructor', 'future-knob', 'toString']);
  assert.equal(c.rawParams.get('future-knob'), -3);
  assert.deepEqual({ ...c.params, circwindow: DEFAULT_NETWORK_PARAMS.circwindow }, DEFAULT_NETWORK_PARAMS);
  assert.equal(Object.keys(c.params).length, Object.keys(PARAM_TABLE).length);
  assert.ok(!('future-knob' in c.params) && !Object.hasOwn(c.params, 'constructor'));
});

test('round trip: the encoder writes pairs sorted by key; signatures cover them', () => {
  const rawParams = new Map([['sendme_emit_min_version', 1], ['circwindow', 1000], ['Zeta', -7], ['cc_alg', 0]]);
  const text = encodeConsensus({ ...body, rawParams }, [seed]);
  assert.match(text, /\nparams Zeta=-7 cc_alg=0 circwindow=1000 sendme_emit_min_version=1\n/);
  const c = verifyConsensus(text, [identity], T0);
  assert.deepEqual(c.rawParams, new Map([...rawParams].sort(([a], [b]) => (a < b ? -1 : 1))));
  assert.equal(encodeConsensusBody(c), parseConsensus(text).bodyText);
  // A changed value breaks the signature.
  assert.throws(() => verifyConsensus(text.replace('Zeta=-7', 'Zeta=-8'), [identity], T0), code('ERR_BAD_SIGNATURE'));
});

test('malformed params lines are refused: bad pairs, bad ints, duplicates, order, whitespace', () => {
  const bad = [
    'params circwindow',
    'params circwindow=',
    'params =5',
    'params circwindow==5',
    'params circwindow=5=6',
    'params circwindow=1.5',
    'params circwindow=+5',
    'params circwindow=05',
    'params circwindow=-0',
    'params circwindow=0x10',
    'params circwindow=1e3',
    'params circwindow=2147483648',
    'params circwindow=-2147483649',
    'params circwindow=99999999999',
    'params circwindow=5 circwindow=5', // duplicate, same value
    'params circwindow=5 circwindow=6', // duplicate
    'params sendme_emit_min_version=1 circwindow=5', // unsorted
    'params b=1 B=1', // ASCII order: uppercase first
    'params bad!key=1',
    'params _lead=1',
    'params -lead=1',
    `params ${'k'.repeat(65)}=1`,
    'params  circwindow=5',
    'params circwindow=5 ',
    'params circwindow=5  cc_alg=1',
    'params\tcircwindow=5',
  ];
  for (const line of bad) assert.throws(() => parseConsensus(withParamsLine(line)), code('ERR_MALFORMED'), line);
  // Limits: 64-character keys and the int32 ends are fine.
  assert.ok(parseConsensus(withParamsLine(`params ${'k'.repeat(64)}=-2147483648 z=2147483647`)));
  // The same grammar checks on the arguments alone.
  assert.throws(() => parseParams(['a=1', 'a=2'], 'test'), code('ERR_MALFORMED'));
  assert.deepEqual(parseParams([], 'test'), new Map());
});

test('truncated and oversized params lines', () => {
  const text = withParamsLine('params cc_alg=0 circwindow=1000');
  const at = text.indexOf('circwindow=1000');
  // Cut anywhere inside the params line: never a valid document.
  for (let cut = at - 10; cut < at + 15; cut++) assert.throws(() => parseConsensus(text.slice(0, cut)), code('ERR_MALFORMED'), `cut ${cut}`);
  // A params line that loses its tail is still grammatical but no longer signed.
  const cut = encodeConsensusBody(body).replace('\nparams\n', '\nparams cc_alg=0\n');
  assert.throws(() => verifyConsensus(cut + signConsensusBody(encodeConsensusBody(body).replace('\nparams\n', '\nparams cc_alg=0 circwindow=1000\n'), seed), [identity], T0), code('ERR_BAD_SIGNATURE'));
  // Over the line limit.
  const many = Array.from({ length: 600 }, (_, i) => `p${String(i).padStart(4, '0')}=${i}`);
  const long = `params ${many.join(' ')}`;
  assert.ok(long.length > MAX_CONSENSUS_LINE);
  assert.throws(() => parseConsensus(withParamsLine(long)), code('ERR_OVERSIZED'));
  assert.throws(() => encodeConsensus({ ...body, rawParams: new Map(many.map((p, i) => [p.split('=')[0]!, i])) }, [seed]), DocumentError);
  // Just under the limit parses.
  const fits = many.slice(0, 400);
  assert.equal(parseConsensus(withParamsLine(`params ${fits.join(' ')}`)).rawParams.size, 400);
});

test('the encoder refuses pairs the grammar cannot carry', () => {
  for (const [key, value] of [['bad key', 1], ['', 1], ['_x', 1], ['circwindow', 1.5], ['circwindow', NaN], ['circwindow', 2 ** 31], ['circwindow', -(2 ** 31) - 1]] as const) {
    assert.throws(() => formatParams(new Map([[key, value]]), 'test'), code('ERR_MALFORMED'), `${key}=${value}`);
    assert.throws(() => encodeConsensusBody({ ...body, rawParams: new Map([[key, value]]) }), code('ERR_MALFORMED'), `${key}=${value}`);
  }
});
