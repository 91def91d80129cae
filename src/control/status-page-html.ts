/**
 * The status page itself: one static HTML document with inline CSS and JS (no build step, no CDN). It holds
 * no data: the script reads the token from the URL fragment (#token=..., never sent to the server) or asks
 * for it, then polls the token-protected API once a second and renders with textContent only. The charts'
 * script (status-page-charts.ts) and the uPlot library it draws with come before it.
 */
import { CHARTS_CSS, CHARTS_SCRIPT, chartSections } from './status-page-charts.js';

/** Where the control API serves the bundled uPlot files (status-page-assets.ts). */
export const UPLOT_JS_PATH = '/status/uplot.js';
export const UPLOT_CSS_PATH = '/status/uplot.css';

export const STATUS_PAGE_CSS = `
:root { --blue: #2f6fd6; --green: #1f9d55; --bad: #c0392b; --muted: #667; font-family: system-ui, sans-serif; }
body { margin: 0; background: #f5f6f8; color: #1c1e24; }
header { display: flex; align-items: baseline; gap: 1rem; padding: .8rem 1.2rem; background: #1c1e24; color: #fff; }
header h1 { margin: 0; font-size: 1.2rem; }
header .conn { color: #bbb; font-size: .85rem; }
main { padding: 1rem 1.2rem; display: grid; gap: 1rem; grid-template-columns: 1fr 1fr; max-width: 1200px; }
section { background: #fff; border-radius: 8px; padding: .8rem 1rem; box-shadow: 0 1px 2px rgba(0,0,0,.08); }
section.wide { grid-column: 1 / -1; }
h2 { margin: 0 0 .5rem; font-size: 1rem; }
.color-card h2::before { content: ''; display: inline-block; width: .8rem; height: .8rem; border-radius: 50%; margin-right: .4rem; }
.color-card[data-color=blue] h2::before { background: var(--blue); }
.color-card[data-color=green] h2::before { background: var(--green); }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .2rem .8rem; margin: 0; }
dt { color: var(--muted); }
dd { margin: 0; font-variant-numeric: tabular-nums; }
.ok { color: var(--green); } .bad { color: var(--bad); font-weight: 600; }
.bar { display: flex; height: 1.4rem; border-radius: 4px; overflow: hidden; background: #ddd; }
.bar div { color: #fff; font-size: .8rem; line-height: 1.4rem; text-align: center; transition: width .4s; white-space: nowrap; }
.bar .blue { background: var(--blue); } .bar .green { background: var(--green); }
table { border-collapse: collapse; width: 100%; font-size: .9rem; }
th, td { text-align: left; padding: .25rem .5rem; border-bottom: 1px solid #eee; }
button { font: inherit; padding: .35rem .9rem; border-radius: 4px; border: 1px solid #999; background: #fff; cursor: pointer; }
button:disabled { opacity: .4; cursor: default; }
button[data-command=rollback] { border-color: var(--bad); color: var(--bad); }
.actions { display: flex; gap: .5rem; margin-top: .6rem; }
#message { min-height: 1.2rem; margin-top: .4rem; font-size: .9rem; }
#login { grid-column: 1 / -1; }
[hidden] { display: none !important; }
${CHARTS_CSS}`;

export const STATUS_PAGE_SCRIPT = `
'use strict';
const COLORS = ['blue', 'green'];
const LIVE = ['running', 'paused'];
const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem('bgserve-token') || '';
const fromHash = new URLSearchParams(location.hash.slice(1)).get('token');
if (fromHash) { token = fromHash; sessionStorage.setItem('bgserve-token', token); history.replaceState(null, '', location.pathname); }

async function api(method, path) {
  const res = await fetch('/api' + path, { method, headers: { authorization: 'Bearer ' + token } });
  const body = await res.json().catch(() => ({}));
  if (res.status === 401 || res.status === 403) { showLogin(); throw new Error('token refused'); }
  return { status: res.status, body };
}

function text(el, value) { el.textContent = value === null || value === undefined ? '—' : String(value); return el; }
function el(tag, value, cls) { const e = document.createElement(tag); text(e, value); if (cls) e.className = cls; return e; }
function pct(v) { return v === null || v === undefined ? '—' : (v * 100).toFixed(v < 0.01 && v > 0 ? 2 : 1) + '%'; }
function ms(v) { return v === null || v === undefined ? '—' : (v * 1000).toFixed(v < 0.01 ? 2 : 1) + ' ms'; }
function when(t) { return t ? new Date(t).toLocaleTimeString() : '—'; }
function field(root, name) { return root.querySelector('[data-field="' + name + '"]'); }

function renderColor(color, s, live) {
  const card = document.querySelector('.color-card[data-color="' + color + '"]');
  const model = s.model ? s.model.name + ' ' + s.model.version : null;
  text(field(card, 'model'), model);
  const health = field(card, 'health');
  text(health, s.ok ? (s.state || 'ok') : 'unhealthy' + (s.error ? ': ' + s.error : ''));
  health.className = s.ok ? 'ok' : 'bad';
  text(field(card, 'router'), s.healthy ? 'in rotation' : 'out of rotation' + (s.lastError ? ': ' + s.lastError : ''));
  text(field(card, 'weight'), s.weight + '%');
  const l = live && live.colors[color];
  text(field(card, 'rate'), l && l.requestRate !== null ? l.requestRate.toFixed(1) + ' req/s' : null);
  text(field(card, 'errors'), l ? pct(l.errorRatio) : null);
  text(field(card, 'p99'), l ? ms(l.p99Seconds) : null);
  renderReplicas(card, s.replicas);
}

/** A color's replicas, when the control API reports them (a pool of more than one instance). */
function renderReplicas(card, replicas) {
  const list = card.querySelector('.replicas');
  const row = card.querySelectorAll('[data-replicas]');
  const has = Array.isArray(replicas) && replicas.length > 0;
  for (const e of row) e.hidden = !has;
  if (!has) return;
  const up = replicas.filter((r) => r.healthy).length;
  text(field(card, 'replicas'), up + ' of ' + replicas.length + ' in rotation');
  // Each replica's own version: replicas of one color may differ while a pool is being replaced.
  list.replaceChildren(...replicas.map((r) => el('li', [r.address || r.url || '?', r.model ? r.model.version : null,
    r.ready === false ? 'NOT READY' : null, r.healthy ? 'in rotation' : 'out of rotation',
    typeof r.rps === 'number' ? r.rps.toFixed(1) + ' req/s' : null].filter((x) => x !== null).join('  '),
    r.healthy && r.ready !== false ? '' : 'bad')));
}

function renderWeights(w) {
  for (const c of COLORS) {
    const part = document.querySelector('.bar .' + c);
    part.style.width = w[c] + '%';
    text(part, w[c] > 0 ? c + ' ' + w[c] + '%' : '');
  }
}

function renderRelease(view, traffic) {
  const box = $('release');
  const r = view && view.release;
  $('no-release').hidden = !!r;
  $('release-details').hidden = !r;
  const live = !!r && LIVE.includes(r.status);
  for (const b of box.querySelectorAll('button[data-command]')) b.disabled = !live;
  if (!r) return;
  const s = r.spec;
  text(field(box, 'id'), s.id);
  text(field(box, 'model'), s.modelName + ' ' + s.version + ' → ' + s.targetColor);
  text(field(box, 'strategy'), s.strategy);
  const status = field(box, 'status');
  // A release never reads as done (or green) while the router's traffic says otherwise.
  const disagrees = !!traffic && !traffic.agrees && traffic.releaseId === s.id;
  text(status, r.status + (disagrees ? ' (but live traffic disagrees)' : ''));
  status.className = disagrees || r.status === 'rolled_back' || r.status === 'failed' ? 'bad' : r.status === 'succeeded' ? 'ok' : '';
  text(field(box, 'phase'), r.phase);
  text(field(box, 'step'), r.phase === 'step' ? (r.stepIndex + 1) + ' of ' + s.steps.length + ' (' + s.steps[r.stepIndex] + '%)' : null);
  text(field(box, 'target-weight'), r.targetWeight + '% on ' + s.targetColor);
  text(field(box, 'reason'), r.reason);
  const a = r.lastAnalysis;
  text(field(box, 'verdict'), a ? a.outcome + ' (' + a.samples.target + ' / ' + a.samples.stable + ' samples)' : null);
  $('checks-table').hidden = !a;
  const rows = $('checks');
  rows.replaceChildren(...(a ? a.checks : []).map((c) => {
    const tr = document.createElement('tr');
    tr.append(el('td', c.name), el('td', c.outcome, c.outcome === 'fail' ? 'bad' : c.outcome === 'pass' ? 'ok' : ''), el('td', c.detail));
    return tr;
  }));
  const events = $('events');
  events.replaceChildren(...(view.events || []).slice(-8).reverse().map((e) => {
    const li = el('li', when(e.at) + '  ' + e.type + (e.reason ? ': ' + e.reason : ''));
    return li;
  }));
}

function renderWarnings(s) {
  const t = s.releaseTraffic;
  const warning = $('traffic-warning');
  warning.hidden = !t || t.agrees;
  text(warning, t && !t.agrees ? 'Traffic disagrees with the release: ' + t.message : '');
  const log = s.releaseLog;
  const damage = log ? log.damage : [];
  const box = $('log-damage');
  box.hidden = damage.length === 0;
  text(field(box, 'summary'), damage.length + ' damaged record' + (damage.length === 1 ? '' : 's') + ' skipped in ' + (log ? log.file : ''));
  $('damage').replaceChildren(...damage.slice(0, 20).map((d) => el('li', 'line ' + d.line + ': ' + d.problem)));
}

function renderHistory(list) {
  $('history').replaceChildren(...list.map((r) => {
    const tr = document.createElement('tr');
    tr.append(el('td', r.spec.id), el('td', r.spec.version), el('td', r.spec.strategy),
      el('td', r.status, r.status === 'rolled_back' || r.status === 'failed' ? 'bad' : r.status === 'succeeded' ? 'ok' : ''),
      el('td', when(r.createdAt)), el('td', r.reason));
    return tr;
  }));
}

function showLogin() { $('login').hidden = false; }

async function refresh() {
  if (!token) { showLogin(); return; }
  try {
    const [status, live, current, history] = await Promise.all([
      api('GET', '/status'), api('GET', '/live'), api('GET', '/releases/current'), api('GET', '/releases?limit=10'),
    ]);
    if (status.status !== 200) throw new Error(status.body.message || 'status ' + status.status);
    for (const c of COLORS) renderColor(c, status.body.colors[c], live.status === 200 ? live.body : null);
    renderWeights(status.body.weights);
    renderRelease(current.status === 200 ? current.body : null, status.body.releaseTraffic);
    renderWarnings(status.body);
    renderHistory(history.status === 200 ? history.body.releases : []);
    text($('conn'), 'updated ' + new Date().toLocaleTimeString());
    $('login').hidden = true;
    await refreshCharts();
  } catch (err) {
    text($('conn'), 'disconnected: ' + err.message);
  }
}

async function command(name) {
  if (!confirm(name + ' the current release?')) return;
  const msg = $('message');
  text(msg, name + '...');
  try {
    const res = await api('POST', '/releases/current/' + name);
    text(msg, res.status === 200 ? name + ': release is now ' + res.body.release.status : (res.body.message || 'refused (' + res.status + ')'));
    msg.className = res.status === 200 ? 'ok' : 'bad';
  } catch (err) { text(msg, err.message); msg.className = 'bad'; }
  refresh();
}

for (const b of document.querySelectorAll('button[data-command]')) b.addEventListener('click', () => command(b.dataset.command));
$('login-form').addEventListener('submit', (e) => {
  e.preventDefault();
  token = $('token').value.trim();
  sessionStorage.setItem('bgserve-token', token);
  refresh();
});
refresh();
setInterval(refresh, 1000);
`;

function colorCard(color: string): string {
  return `<section class="color-card" data-color="${color}">
  <h2>${color}</h2>
  <dl>
    <dt>model</dt><dd data-field="model">—</dd>
    <dt>health</dt><dd data-field="health">—</dd>
    <dt>router</dt><dd data-field="router">—</dd>
    <dt>weight</dt><dd data-field="weight">—</dd>
    <dt>requests</dt><dd data-field="rate">—</dd>
    <dt>5xx ratio</dt><dd data-field="errors">—</dd>
    <dt>p99 latency</dt><dd data-field="p99">—</dd>
    <dt data-replicas hidden>replicas</dt><dd data-replicas hidden><span data-field="replicas"></span><ul class="replicas"></ul></dd>
  </dl>
</section>`;
}

/** Subresource Integrity of the served uPlot files: the browser refuses them if they are not these. */
export interface PageAssets {
  uplotJsIntegrity: string;
  uplotCssIntegrity: string;
}

export function renderStatusPage(assets: PageAssets): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>bgserve status</title>
<link rel="stylesheet" href="${UPLOT_CSS_PATH}" integrity="${assets.uplotCssIntegrity}">
<style>${STATUS_PAGE_CSS}</style>
</head>
<body>
<header><h1>bgserve</h1><span class="conn" id="conn">connecting...</span></header>
<main>
<section id="login" hidden>
  <form id="login-form"><label>Control API token (from <code>.bgserve/token</code>):
    <input id="token" type="password" autocomplete="off" size="48"></label> <button type="submit">Connect</button></form>
</section>
${colorCard('blue')}
${colorCard('green')}
<section class="wide" id="log-damage" hidden><h2>Release log damaged</h2>
  <p class="bad" data-field="summary"></p><ul id="damage"></ul>
  <p>The stack started on the records that are intact; the damaged lines stay in the file for inspection.</p>
</section>
<section class="wide"><h2>Weights</h2><div class="bar"><div class="blue"></div><div class="green"></div></div></section>
${chartSections()}
<section class="wide" id="release">
  <h2>Current release</h2>
  <p id="traffic-warning" class="bad" hidden></p>
  <p id="no-release">No release yet: start one with <code>bgserve deploy &lt;bundle&gt;</code>.</p>
  <div id="release-details" hidden>
    <dl>
      <dt>release</dt><dd data-field="id"></dd>
      <dt>model</dt><dd data-field="model"></dd>
      <dt>strategy</dt><dd data-field="strategy"></dd>
      <dt>status</dt><dd data-field="status"></dd>
      <dt>phase</dt><dd data-field="phase"></dd>
      <dt>step</dt><dd data-field="step"></dd>
      <dt>new version gets</dt><dd data-field="target-weight"></dd>
      <dt>reason</dt><dd data-field="reason"></dd>
      <dt>last analysis</dt><dd data-field="verdict"></dd>
    </dl>
    <table id="checks-table"><thead><tr><th>check</th><th>outcome</th><th>detail</th></tr></thead><tbody id="checks"></tbody></table>
    <h2>Events</h2><ul id="events"></ul>
  </div>
  <div class="actions">
    <button data-command="promote" disabled>Promote</button>
    <button data-command="abort" disabled>Abort</button>
    <button data-command="rollback" disabled>Rollback</button>
  </div>
  <div id="message"></div>
</section>
<section class="wide"><h2>History</h2>
  <table><thead><tr><th>release</th><th>version</th><th>strategy</th><th>outcome</th><th>started</th><th>reason</th></tr></thead>
  <tbody id="history"></tbody></table>
</section>
</main>
<script src="${UPLOT_JS_PATH}" integrity="${assets.uplotJsIntegrity}"></script>
<script>${CHARTS_SCRIPT}</script>
<script>${STATUS_PAGE_SCRIPT}</script>
</body>
</html>
`;
}
