// A node's dashboard (served by cli/dashboard/node-dashboard.ts): fetches
// /api/status every 5 s and draws it. Plain browser JavaScript, no build step.
'use strict';
(() => {
  const REFRESH_MS = 5000;
  const $ = (id) => document.getElementById(id);
  const text = (id, value) => { $(id).textContent = value; };
  let plot = null;

  function bytes(n) {
    const units = ['B', 'kB', 'MB', 'GB'];
    let i = 0;
    while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
    return `${n.toFixed(n < 10 && i > 0 ? 1 : 0)} ${units[i]}`;
  }

  function duration(ms) {
    const s = Math.floor(ms / 1000);
    if (s < 120) return `${s} s`;
    if (s < 7200) return `${Math.floor(s / 60)} min`;
    return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  }

  function chart(points) {
    const data = [points.map((p) => p[0]), points.map((p) => p[1]), points.map((p) => p[2])];
    if (plot === null) {
      const el = $('chart');
      plot = new uPlot({
        width: Math.max(320, el.clientWidth - 12),
        height: 220,
        series: [
          {},
          { label: 'read', stroke: '#2271b1', fill: 'rgba(34,113,177,0.15)', value: (u, v) => (v == null ? '—' : `${bytes(v)}/s`) },
          { label: 'written', stroke: '#d63638', value: (u, v) => (v == null ? '—' : `${bytes(v)}/s`) },
        ],
        axes: [{}, { values: (u, vals) => vals.map((v) => `${bytes(v)}/s`), size: 70 }],
      }, data, el);
    } else {
      plot.setData(data);
    }
  }

  function render(s) {
    window.alliumStatus = s;
    text('nickname', s.nickname ?? '');
    text('identity', s.identity ? `identity ${s.identity}` : `version ${s.version}`);
    text('flags', s.consensus === null ? 'no consensus yet' : s.consensus.flags === null ? (s.role === 'relay' ? 'not listed' : 'n/a') : s.consensus.flags.join(' ') || 'none');
    text('consensus', s.consensus === null ? '—' : `${s.consensus.relays} relays, ${duration(s.now - s.consensus.validAfter)} old`);
    text('links', s.links === null ? 'n/a' : `${s.links.initiated + s.links.received} (${s.links.initiated} out, ${s.links.received} in)`);
    text('circuits', s.circuits === null ? 'n/a' : String(s.circuits));
    text('streams', s.streams === null ? 'n/a' : String(s.streams));
    text('uptime', duration(s.now - s.startedAt));
    chart(s.bandwidth);
    const entries = s.consensus && s.consensus.entries;
    $('relays-section').hidden = !entries;
    if (entries) {
      const body = $('relays').tBodies[0];
      body.replaceChildren(...entries.map((e) => {
        const row = document.createElement('tr');
        for (const v of [e.nickname, e.flags.join(' '), `${bytes(e.bandwidth)}/s`]) {
          const td = document.createElement('td');
          td.textContent = v;
          row.append(td);
        }
        return row;
      }));
    }
    $('notices').replaceChildren(...s.notices.slice().reverse().map((n) => {
      const li = document.createElement('li');
      li.textContent = `${new Date(n.time).toISOString().replace('T', ' ').slice(0, 19)} [${n.level}] ${n.message}`;
      return li;
    }));
  }

  async function refresh() {
    try {
      const res = await fetch('/api/status', { cache: 'no-store' });
      if (res.ok) render(await res.json());
    } finally {
      setTimeout(refresh, REFRESH_MS);
    }
  }
  refresh();
})();
