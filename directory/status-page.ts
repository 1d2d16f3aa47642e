/**
 * The authority's status page (docs/protocol.md §9.10): `GET /` answers an
 * HTML page with the consensus being served (its times, which authorities
 * signed it and whether each signature counts), every relay the authority
 * knows with its consensus flags and weight, this authority's own view
 * (Running, measured bandwidth, uptime), and the last rounds. Pure: the
 * caller passes everything; every value written is HTML-escaped.
 */
import { hex } from '../src/bytes.js';
import { parseConsensus, type Consensus } from '../src/netdoc/consensus.js';
import { bodyDigest, checkSignature } from '../src/netdoc/dir-signature.js';
import { formatSummary } from '../src/netdoc/exit-policy.js';
import { formatTime } from '../src/netdoc/text.js';
import type { UptimeStats } from './relay-history.js';
import type { RoundReport } from './voting.js';

/** What this authority knows about one relay it holds a descriptor for. */
export interface StatusRelay {
  identityHex: string;
  nickname: string;
  address: string;
  orPort: number;
  advertised: number;
  running: boolean;
  measured: number | undefined;
  stats: UptimeStats | undefined;
}

export interface StatusInput {
  nickname: string;
  identityHex: string;
  url: string;
  now: number;
  /** The consensus text being served, if any. */
  consensus: string | undefined;
  /** The configured voting authorities (hex identities), for "does this signature count". */
  authorities: ReadonlySet<string> | null;
  relays: readonly StatusRelay[];
  rounds: readonly RoundReport[];
  clockSkewMs: number;
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
/** HTML-escapes text (element content and attribute values alike). */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

function bytesPerSecond(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB/s`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} kB/s`;
  return `${n} B/s`;
}

function duration(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.floor(s / 60)} min`;
  if (s < 172_800) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86_400).toFixed(1)} d`;
}

const td = (text: string) => `<td>${escapeHtml(text)}</td>`;

function consensusSection(input: StatusInput, c: (Consensus & { bodyText: string }) | undefined): string {
  if (c === undefined) return '<p>No consensus is being served yet.</p>';
  const names = new Map(c.authorities.map((a) => [hex(a.identity), a.nickname]));
  const digest = bodyDigest(c.bodyText);
  const rows = c.signatures.map((s) => {
    const id = hex(s.identity);
    const check = checkSignature(s, digest, input.now, input.clockSkewMs);
    const configured = input.authorities?.has(id) === true;
    const verdict = check.ok ? (configured ? 'counts' : 'valid, but not a configured authority') : check.reason;
    const expires = check.ok ? formatTime(check.cert.expires) : '';
    return `<tr>${td(names.get(id) ?? '?')}${td(id.slice(0, 16))}${td(verdict)}${td(expires)}</tr>`;
  });
  const counted = c.signatures.filter((s) => checkSignature(s, digest, input.now, input.clockSkewMs).ok && input.authorities?.has(hex(s.identity)) === true).length;
  const total = input.authorities?.size ?? c.authorities.length;
  const w = c.bandwidthWeights;
  return `<table class="kv">
<tr><th>valid-after</th>${td(formatTime(c.validAfter))}</tr>
<tr><th>fresh-until</th>${td(formatTime(c.freshUntil))}</tr>
<tr><th>valid-until</th>${td(formatTime(c.validUntil))}</tr>
<tr><th>consensus method</th>${td(String(c.consensusMethod))}</tr>
<tr><th>relays listed</th>${td(String(c.relays.length))}</tr>
<tr><th>signatures that count</th>${td(`${counted} of ${total} authorities${counted * 2 > total ? '' : ' (not a majority)'}`)}</tr>
<tr><th>bandwidth weights</th>${td(w === undefined ? 'none' : `Wgg=${w.Wgg} Wgd=${w.Wgd} Wmg=${w.Wmg} Wmd=${w.Wmd} Wme=${w.Wme} Wee=${w.Wee} Wed=${w.Wed} (scale ${w.scale})`)}</tr>
</table>
<h3>Signed by</h3>
<table><tr><th>authority</th><th>identity</th><th>signature</th><th>certificate expires</th></tr>
${rows.join('\n')}
</table>`;
}

function relaysSection(input: StatusInput, c: Consensus | undefined): string {
  const inConsensus = new Map((c?.relays ?? []).map((r) => [hex(r.identity), r]));
  const known = new Map(input.relays.map((r) => [r.identityHex, r]));
  const ids = [...new Set([...inConsensus.keys(), ...known.keys()])].sort((a, b) => {
    const na = inConsensus.get(a)?.nickname ?? known.get(a)?.nickname ?? '';
    const nb = inConsensus.get(b)?.nickname ?? known.get(b)?.nickname ?? '';
    return na < nb ? -1 : na > nb ? 1 : a < b ? -1 : 1;
  });
  const rows = ids.map((id) => {
    const r = inConsensus.get(id);
    const k = known.get(id);
    const nickname = r?.nickname ?? k?.nickname ?? '?';
    const endpoint = r !== undefined ? `${r.address}:${r.orPort}` : k !== undefined ? `${k.address}:${k.orPort}` : '';
    const flags = r === undefined ? '(not in the consensus)' : r.flags.join(' ');
    const weight = r === undefined ? '' : `${bytesPerSecond(r.bandwidth)}${r.unmeasured === true ? ' (unmeasured)' : ''}`;
    const exit = r === undefined ? '' : formatSummary(r.exitSummary);
    const here = k === undefined ? 'unknown here' : k.running ? 'Running' : 'not Running';
    const measured = k?.measured === undefined ? '' : bytesPerSecond(k.measured);
    const s = k?.stats;
    const uptime = s === undefined ? '' : s.currentUptimeMs > 0 ? `up ${duration(s.currentUptimeMs)}` : 'down';
    const wfu = s === undefined ? '' : `${(s.wfu * 100).toFixed(1)} %`;
    const mtbf = s === undefined ? '' : duration(s.mtbfMs);
    return `<tr>${td(nickname)}${td(id.slice(0, 16))}${td(endpoint)}${td(flags)}${td(weight)}${td(exit)}${td(here)}${td(measured)}${td(uptime)}${td(wfu)}${td(mtbf)}</tr>`;
  });
  return `<table>
<tr><th>nickname</th><th>identity</th><th>address</th><th>consensus flags</th><th>consensus weight</th><th>exit ports</th><th>this authority's test</th><th>measured here</th><th>uptime</th><th>WFU</th><th>MTBF</th></tr>
${rows.join('\n')}
</table>`;
}

function roundsSection(rounds: readonly RoundReport[]): string {
  if (rounds.length === 0) return '<p>No round has ended yet.</p>';
  const rows = [...rounds].reverse().slice(0, 10).map((r) =>
    `<tr>${td(formatTime(r.validAfter))}${td(`${r.votes} of ${r.authorities}`)}${td(`${r.signatures} of ${r.authorities}`)}${td(r.relays === undefined ? '' : String(r.relays))}${td(r.published ? 'published' : r.fetched === true ? `fetched from the other authorities (here: ${r.problem ?? 'not published'})` : (r.problem ?? 'not published'))}</tr>`,
  );
  return `<table><tr><th>round (valid-after)</th><th>votes</th><th>signatures</th><th>relays</th><th>outcome</th></tr>
${rows.join('\n')}
</table>`;
}

/** The HTML of the status page. */
export function renderStatusPage(input: StatusInput): string {
  let consensus: (Consensus & { bodyText: string }) | undefined;
  let problem = '';
  if (input.consensus !== undefined) {
    try {
      consensus = parseConsensus(input.consensus);
    } catch (error) {
      problem = `<p>The stored consensus does not parse: ${escapeHtml((error as Error).message)}</p>`;
    }
  }
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Allium authority ${escapeHtml(input.nickname)}</title>
<style>
body { font-family: sans-serif; margin: 1.5em; }
table { border-collapse: collapse; margin-bottom: 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.5em; text-align: left; font-size: 0.9em; }
table.kv th { background: #f4f4f4; }
</style>
</head>
<body>
<h1>Allium directory authority ${escapeHtml(input.nickname)}</h1>
<p>Identity ${escapeHtml(input.identityHex)} at ${escapeHtml(input.url)}; page made ${escapeHtml(formatTime(Math.floor(input.now / 1000) * 1000))} UTC.</p>
<h2>Consensus being served</h2>
${problem}${consensusSection(input, consensus)}
<h2>Relays</h2>
${relaysSection(input, consensus)}
<h2>Last rounds</h2>
${roundsSection(input.rounds)}
</body>
</html>
`;
}
