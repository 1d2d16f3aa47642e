/**
 * The dashboards' HTML: a static shell whose script (static/dashboard.js for
 * a node, static/network.js for the testnet) fetches the JSON and draws it.
 * No inline script, no outside resource: everything comes from the same port.
 */

function shell(title: string, script: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:">
<title>${title}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/uplot.css">
<link rel="stylesheet" href="/dashboard.css">
<script src="/uplot.js" defer></script>
<script src="${script}" defer></script>
</head>
<body>
${body}
</body>
</html>
`;
}

/** The page of one node (relay, authority or client). */
export function nodePage(role: string): string {
  return shell(
    `Allium ${role}`,
    '/dashboard.js',
    `<header><h1>Allium <span id="role">${role}</span> <span id="nickname"></span></h1><p id="identity" class="mono"></p></header>
<main>
<section class="cards">
  <div class="card"><h2>Flags</h2><p id="flags">—</p></div>
  <div class="card"><h2>Consensus</h2><p id="consensus">—</p></div>
  <div class="card"><h2>Links</h2><p id="links">—</p></div>
  <div class="card"><h2>Circuits</h2><p id="circuits">—</p></div>
  <div class="card"><h2>Streams</h2><p id="streams">—</p></div>
  <div class="card"><h2>Up</h2><p id="uptime">—</p></div>
</section>
<section><h2>Bandwidth, last hour</h2><div id="chart"></div></section>
<section id="relays-section" hidden><h2>Relays in the consensus</h2><table id="relays"><thead><tr><th>nickname</th><th>flags</th><th>bandwidth</th></tr></thead><tbody></tbody></table></section>
<section><h2>Recent notices</h2><ol id="notices" class="mono"></ol></section>
</main>
<footer>Read-only. Refreshes every 5 s. <a href="/metrics">/metrics</a></footer>`,
  );
}

/** The testnet's page: every node. */
export function networkPage(): string {
  return shell(
    'Allium testnet',
    '/network.js',
    `<header><h1>Allium testnet</h1><p id="summary"></p></header>
<main>
<section><h2>Nodes</h2><table id="nodes"><thead><tr><th>node</th><th>role</th><th>state</th><th>flags</th><th>links</th><th>circuits</th><th>streams</th><th>peak written, last hour</th><th>dashboard</th></tr></thead><tbody></tbody></table></section>
<section><h2>Traffic per relay (bytes written per second), last hour</h2><div id="chart"></div></section>
<section><h2>Consensus</h2><p id="consensus">—</p></section>
<section><h2>The client's circuits (guard → middle → exit)</h2><ol id="circuits" class="mono"></ol></section>
</main>
<footer>Read-only. Refreshes every 5 s.</footer>`,
  );
}
