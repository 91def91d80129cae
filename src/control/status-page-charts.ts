/**
 * The status page's charts: the controller's history (GET /api/history) drawn with uPlot, which the control API
 * serves from the installed package (status-page-assets.ts), so the page works offline. Release events are
 * drawn as vertical lines on every time chart. The shadow comparison's scatter (stable vs new prediction per
 * paired request, the y = x diagonal being agreement) shows once a shadow phase has paired requests. The uPlot instances and the markers are on `window.bgCharts`
 * and `window.bgMarkers`, for people poking at the page and for the browser test.
 */

export const CHARTS_CSS = `
.charts { display: grid; grid-template-columns: 1fr 1fr; gap: .8rem; }
.charts figure { margin: 0; min-width: 0; }
.charts figcaption { font-size: .85rem; color: var(--muted); margin-bottom: .2rem; }
#golden dl { margin-top: .6rem; }
.replicas { margin: .2rem 0 0; padding-left: 1.1rem; font-size: .85rem; }
`;

export const CHARTS_SCRIPT = `
'use strict';
const CHART_COLORS = { blue: '#2f6fd6', green: '#1f9d55' };
const FILLS = { blue: 'rgba(47,111,214,0.18)', green: 'rgba(31,157,85,0.18)' };
/** Neither color's: a pair belongs to both. */
const PAIR_COLOR = '#7b3fa0';
const SHORT = { 'release-started': 'start', 'shadow-started': 'shadow', 'step-started': 'step', switched: 'switch',
  promoted: 'promote', paused: 'pause', resumed: 'resume', 'rolled-back': 'rollback', aborted: 'abort', succeeded: 'done' };
const bgCharts = {};
window.bgCharts = bgCharts;
window.bgMarkers = [];
let lastHistoryAt = 0;

/** Vertical lines at the release's events, on whatever time chart it is given to. */
function markerPlugin() {
  return { hooks: { draw: [(u) => {
    const ctx = u.ctx;
    const [min, max] = [u.scales.x.min, u.scales.x.max];
    let drawn = 0;
    ctx.save();
    ctx.font = Math.round(10 * devicePixelRatio) + 'px system-ui, sans-serif';
    ctx.textBaseline = 'top';
    for (const m of window.bgMarkers) {
      const t = m.at / 1000;
      if (t < min || t > max) continue;
      const x = Math.round(u.valToPos(t, 'x', true));
      const bad = m.type === 'rolled-back' || m.type === 'aborted';
      ctx.strokeStyle = bad ? '#c0392b' : '#8a5a00';
      ctx.fillStyle = ctx.strokeStyle;
      ctx.lineWidth = devicePixelRatio;
      ctx.setLineDash([4 * devicePixelRatio, 3 * devicePixelRatio]);
      ctx.beginPath();
      ctx.moveTo(x, u.bbox.top);
      ctx.lineTo(x, u.bbox.top + u.bbox.height);
      ctx.stroke();
      ctx.fillText(SHORT[m.type] || m.type, x + 3 * devicePixelRatio, u.bbox.top + 2 * devicePixelRatio + (drawn % 3) * 11 * devicePixelRatio);
      drawn++;
    }
    ctx.restore();
    u.bgMarkersDrawn = drawn;
  }] } };
}

function chartWidth(name) {
  const fig = document.querySelector('[data-chart="' + name + '"]');
  return Math.max(280, fig.clientWidth - 4);
}

/** The x range covers both the points and the markers, so an event before the first point still shows. */
function timeRange(u, min, max) {
  const first = window.bgMarkers.length ? window.bgMarkers[0].at / 1000 : min;
  const lo = Math.min(min, first);
  return lo === max ? [lo - 1, max + 1] : [lo, max];
}

function timeChart(name, series, yOpts) {
  const opts = {
    width: chartWidth(name), height: 170,
    scales: { x: { time: true, range: timeRange }, y: yOpts.range ? { range: yOpts.range } : {} },
    axes: [{}, { values: (u, vals) => vals.map(yOpts.format), size: 56 }],
    series: [{}].concat(series),
    plugins: [markerPlugin()],
    legend: { live: false },
  };
  const target = document.querySelector('[data-chart="' + name + '"] .plot');
  bgCharts[name] = new uPlot(opts, [[]].concat(series.map(() => [])), target);
}

function line(color, label, extra) {
  return Object.assign({ label: label, stroke: CHART_COLORS[color], width: 2, spanGaps: false }, extra || {});
}

function createCharts() {
  if (typeof uPlot === 'undefined' || bgCharts.rate) return;
  const fixed = (d) => (v) => (v === null ? '' : v.toFixed(d));
  timeChart('rate', [line('blue', 'blue'), line('green', 'green')], { format: fixed(1), range: (u, min, max) => [0, Math.max(1, max)] });
  timeChart('errors', [line('blue', 'blue'), line('green', 'green')],
    { format: (v) => (v * 100).toFixed(1) + '%', range: (u, min, max) => [0, Math.max(0.01, max)] });
  timeChart('latency', [line('blue', 'blue p50', { dash: [5, 4] }), line('blue', 'blue p99'),
    line('green', 'green p50', { dash: [5, 4] }), line('green', 'green p99')],
    { format: fixed(1), range: (u, min, max) => [0, Math.max(1, max)] });
  const stepped = uPlot.paths.stepped({ align: 1 });
  timeChart('weight', [line('blue', 'blue', { paths: stepped }), line('green', 'green', { paths: stepped })],
    { format: (v) => v + '%', range: () => [0, 100] });
  const target = document.querySelector('[data-chart="distribution"] .plot');
  bgCharts.distribution = new uPlot({
    width: chartWidth('distribution'), height: 200,
    scales: { x: { time: false }, y: { range: (u, min, max) => [0, Math.max(0.05, max)] } },
    axes: [{ label: 'predicted quality' }, { values: (u, vals) => vals.map((v) => (v * 100).toFixed(0) + '%'), size: 50 }],
    series: [{}, line('blue', 'blue', { fill: FILLS.blue, points: { show: true, size: 4 } }),
      line('green', 'green', { fill: FILLS.green, points: { show: true, size: 4 } })],
    legend: { live: false },
  }, [[], [], []], target);
}

/** The y = x line across the plot: a point on it is a request both versions answered alike. */
function diagonalPlugin() {
  return { hooks: { draw: [(u) => {
    const [lo, hi] = [u.scales.x.min, u.scales.x.max];
    const ctx = u.ctx;
    ctx.save();
    ctx.strokeStyle = '#888';
    ctx.lineWidth = devicePixelRatio;
    ctx.setLineDash([6 * devicePixelRatio, 4 * devicePixelRatio]);
    ctx.beginPath();
    ctx.moveTo(u.valToPos(lo, 'x', true), u.valToPos(lo, 'y', true));
    ctx.lineTo(u.valToPos(hi, 'x', true), u.valToPos(hi, 'y', true));
    ctx.stroke();
    ctx.restore();
    u.bgDiagonalDrawn = true;
  }] } };
}

/**
 * uPlot 1.6 draws a scatter as a series of points with no line between them, over x values sorted ascending
 * (its mode 2 needs hand-written path builders). Both axes share one range, so the diagonal is at 45 degrees.
 */
let scatterRange = [0, 10];
function createScatter() {
  const target = document.querySelector('[data-chart="scatter"] .plot');
  const same = () => scatterRange;
  bgCharts.scatter = new uPlot({
    width: chartWidth('scatter'), height: 240,
    scales: { x: { time: false, range: same }, y: { range: same } },
    axes: [{ label: 'stable' }, { label: 'new', size: 50 }],
    series: [{ label: 'stable' }, { label: 'new', stroke: PAIR_COLOR, paths: () => null,
      points: { show: true, size: 5, width: 1, stroke: PAIR_COLOR, fill: PAIR_COLOR } }],
    cursor: { show: false },
    plugins: [diagonalPlugin()],
    legend: { show: false },
  }, [[], []], target);
}

/** The latest shadow comparison's sample as points; the figure is hidden until a shadow phase has paired requests. */
function renderScatter(shadow) {
  const fig = document.querySelector('[data-chart="scatter"]');
  const points = shadow ? shadow.sample.slice().sort((a, b) => a[0] - b[0]) : [];
  fig.hidden = points.length === 0;
  if (fig.hidden) return;
  const all = points.flat();
  const [lo, hi] = [Math.min(...all), Math.max(...all)];
  const pad = Math.max(0.1, (hi - lo) * 0.05);
  scatterRange = [Math.floor((lo - pad) * 10) / 10, Math.ceil((hi + pad) * 10) / 10];
  if (!bgCharts.scatter) createScatter();
  bgCharts.scatter.setData([points.map((p) => p[0]), points.map((p) => p[1])]);
  text($('scatter-caption'), 'shadow of ' + shadow.releaseId + ': stable vs new prediction, ' + points.length + ' of ' + shadow.pairs +
    ' paired requests; agreement ' + pct(shadow.agreement) + ' within ' + shadow.tolerance + ', same class ' + pct(shadow.classAgreement));
}

/** Time-chart columns from the history points: x in seconds, a series per color (and per quantile). */
function timeColumns(points) {
  const x = points.map((p) => p.at / 1000);
  const col = (color, key, scale) => points.map((p) => { const v = p.colors[color][key]; return v === null || v === undefined ? null : v * scale; });
  return {
    rate: [x, col('blue', 'requestRate', 1), col('green', 'requestRate', 1)],
    errors: [x, col('blue', 'errorRatio', 1), col('green', 'errorRatio', 1)],
    latency: [x, col('blue', 'p50Seconds', 1000), col('blue', 'p99Seconds', 1000), col('green', 'p50Seconds', 1000), col('green', 'p99Seconds', 1000)],
    weight: [x, col('blue', 'weight', 1), col('green', 'weight', 1)],
  };
}

/** Both colors' predictions as shares per bucket, at the bucket's middle; buckets neither color used are cut. */
function distributionColumns(d) {
  const bounds = [...new Set([...d.blue.buckets, ...d.green.buckets].map((b) => b.le).filter((le) => isFinite(le)))].sort((a, b) => a - b);
  const share = (dist) => {
    const by = new Map(dist.buckets.map((b) => [b.le, b.count]));
    return bounds.map((le) => (dist.total > 0 ? (by.get(le) || 0) / dist.total : null));
  };
  const blue = share(d.blue);
  const green = share(d.green);
  const used = bounds.map((_, i) => (blue[i] || 0) > 0 || (green[i] || 0) > 0);
  let lo = used.indexOf(true);
  let hi = used.lastIndexOf(true);
  if (lo < 0) return [[], [], []];
  lo = Math.max(0, lo - 1);
  hi = Math.min(bounds.length - 1, hi + 1);
  const mid = bounds.map((le, i) => (i === 0 ? le : (bounds[i - 1] + le) / 2));
  return [mid.slice(lo, hi + 1), blue.slice(lo, hi + 1), green.slice(lo, hi + 1)];
}

function renderGolden(g) {
  const box = $('golden');
  box.hidden = !g;
  if (!g) return;
  text(field(box, 'release'), g.releaseId + (g.passed ? '' : ' (smoke failed)'));
  text(field(box, 'rows'), g.rows);
  text(field(box, 'stable'), g.rmse.stable.toFixed(4) + '  (' + g.colors.stable + (g.versions.stable ? ', ' + g.versions.stable : '') + ')');
  text(field(box, 'candidate'), g.rmse.candidate.toFixed(4) + '  (' + g.colors.candidate + ', ' + g.versions.candidate + ')');
  text(field(box, 'agreement'), g.agreement === null ? null : pct(g.agreement));
  text(field(box, 'delta'), g.meanAbsDelta === null ? null : g.meanAbsDelta.toFixed(3));
}

function renderCharts(h) {
  createCharts();
  if (!bgCharts.rate) return;
  window.bgMarkers = h.markers;
  const cols = timeColumns(h.points);
  for (const name of ['rate', 'errors', 'latency', 'weight']) bgCharts[name].setData(cols[name]);
  bgCharts.distribution.setData(distributionColumns(h.distributions));
  const caption = (c) => c + (h.distributions[c].version ? ' ' + h.distributions[c].version : '') + ': ' + h.distributions[c].total;
  text($('distribution-caption'), 'predictions over the window, share per bucket (' + caption('blue') + ', ' + caption('green') + ')');
  renderGolden(h.golden);
  renderScatter(h.shadow);
}

/** Called on every page refresh; asks for the history no more often than the controller samples it. */
async function refreshCharts() {
  if (Date.now() - lastHistoryAt < 1900) return;
  lastHistoryAt = Date.now();
  const res = await api('GET', '/history');
  if (res.status === 200) renderCharts(res.body);
}

window.addEventListener('resize', () => {
  for (const [name, u] of Object.entries(bgCharts)) u.setSize({ width: chartWidth(name), height: u.height });
});
`;

function figure(name: string, caption: string, hidden = false): string {
  const id = name === 'distribution' || name === 'scatter' ? ` id="${name}-caption"` : '';
  return `<figure data-chart="${name}"${hidden ? ' hidden' : ''}><figcaption${id}>${caption}</figcaption><div class="plot"></div></figure>`;
}

export function chartSections(): string {
  return `<section class="wide" id="charts"><h2>Last 15 minutes</h2>
  <div class="charts">
    ${figure('rate', 'requests/s (live traffic)')}
    ${figure('errors', '5xx ratio')}
    ${figure('latency', 'latency p50 (dashed) / p99, ms')}
    ${figure('weight', 'weight, %')}
  </div>
</section>
<section class="wide" id="predictions"><h2>Predictions</h2>
  <div class="charts">
    ${figure('distribution', 'predictions over the window, share per bucket')}
    <div id="golden" hidden><h2>Golden set (smoke phase)</h2>
      <dl>
        <dt>release</dt><dd data-field="release"></dd>
        <dt>rows</dt><dd data-field="rows"></dd>
        <dt>RMSE stable</dt><dd data-field="stable"></dd>
        <dt>RMSE new</dt><dd data-field="candidate"></dd>
        <dt>agreement</dt><dd data-field="agreement"></dd>
        <dt>mean |delta|</dt><dd data-field="delta"></dd>
      </dl>
    </div>
    ${figure('scatter', 'shadow comparison: stable vs new prediction per paired request', true)}
  </div>
</section>`;
}
