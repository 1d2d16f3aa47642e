// The testnet's page (served by cli/dashboard/network-dashboard.ts): fetches
// /api/network every 5 s and draws every node and each relay's traffic.
'use strict';
(() => {
  const REFRESH_MS = 5000;
  const COLORS = ['#2271b1', '#d63638', '#00a32a', '#dba617', '#8c5fc6', '#1d2327', '#e65054', '#3582c4'];
  const $ = (id) => document.getElementById(id);
  let plot = null;
  let plotSeries = '';

  function bytes(n) {
    const units = ['B', 'kB', 'MB', 'GB'];
    let i = 0;
    while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
    return `${n.toFixed(n < 10 && i > 0 ? 1 : 0)} ${units[i]}`;
  }

  function cell(row, value, cls) {
    const td = document.createElement('td');
    if (value instanceof Node) td.append(value); else td.textContent = value;
    if (cls) td.className = cls;
    row.append(td);
  }

  function chart(relays) {
    // One x axis: the union of every relay's sample times (the nodes sample on the same
    // 5 s wall-clock ticks; the last, partial point of each is at its own time).
    const times = new Set();
    for (const r of relays) for (const p of r.status.bandwidth) times.add(p[0]);
    const xs = [...times].sort((a, b) => a - b);
    const index = new Map(xs.map((t, i) => [t, i]));
    const data = [xs];
    for (const r of relays) {
      const ys = new Array(xs.length).fill(null);
      for (const p of r.status.bandwidth) ys[index.get(p[0])] = p[2];
      data.push(ys);
    }
    const names = relays.map((r) => r.nickname).join(',');
    if (plot === null || names !== plotSeries) {
      if (plot !== null) plot.destroy();
      const el = $('chart');
      plot = new uPlot({
        width: Math.max(320, el.clientWidth - 12),
        height: 260,
        spanGaps: true,
        series: [{}, ...relays.map((r, i) => ({ label: r.nickname, stroke: COLORS[i % COLORS.length], value: (u, v) => (v == null ? '—' : `${bytes(v)}/s`) }))],
        axes: [{}, { values: (u, vals) => vals.map((v) => `${bytes(v)}/s`), size: 70 }],
      }, data, el);
      plotSeries = names;
    } else {
      plot.setData(data);
    }
  }

  function render(view) {
    window.alliumNetwork = view;
    const body = $('nodes').tBodies[0];
    body.replaceChildren(...view.nodes.map((n) => {
      const s = n.status;
      const row = document.createElement('tr');
      cell(row, n.nickname);
      cell(row, n.role + (n.exit ? ' (exit)' : ''));
      cell(row, n.alive ? (s ? 'up' : 'no answer') : 'down', n.alive && s ? 'up' : 'down');
      cell(row, s && s.consensus && s.consensus.flags ? s.consensus.flags.join(' ') : '—');
      cell(row, s && s.links ? String(s.links.initiated + s.links.received) : '—');
      cell(row, s && s.circuits !== null ? String(s.circuits) : '—');
      cell(row, s && s.streams !== null ? String(s.streams) : '—');
      const peak = s && s.bandwidth.length > 0 ? Math.max(...s.bandwidth.map((p) => p[2])) : null;
      cell(row, peak !== null ? `${bytes(peak)}/s` : '—');
      if (n.metrics) {
        const a = document.createElement('a');
        a.href = `http://${n.metrics}/`;
        a.textContent = n.metrics;
        cell(row, a);
      } else cell(row, '—');
      return row;
    }));
    const up = view.nodes.filter((n) => n.alive).length;
    $('summary').textContent = `${up} of ${view.nodes.length} nodes up`;
    const auth = view.nodes.find((n) => n.role === 'authority' && n.status && n.status.consensus);
    if (auth) {
      const c = auth.status.consensus;
      $('consensus').textContent = `${c.relays} relays, valid after ${new Date(c.validAfter).toISOString().replace('T', ' ').slice(0, 19)}: ` +
        (c.entries || []).map((e) => `${e.nickname} (${e.flags.join(' ')})`).join(', ');
    }
    chart(view.nodes.filter((n) => n.role === 'relay' && n.status));
    // Which relays the client's circuits use: one line per open circuit.
    const paths = view.nodes.filter((n) => n.role === 'client' && n.status && n.status.circuitPaths).flatMap((n) => n.status.circuitPaths);
    $('circuits').replaceChildren(...(paths.length === 0 ? [Object.assign(document.createElement('li'), { textContent: 'none open' })] : paths.map((p) => {
      const li = document.createElement('li');
      li.textContent = p.join(' → ');
      return li;
    })));
  }

  async function refresh() {
    try {
      const res = await fetch('/api/network', { cache: 'no-store' });
      if (res.ok) render(await res.json());
    } finally {
      setTimeout(refresh, REFRESH_MS);
    }
  }
  refresh();
})();
