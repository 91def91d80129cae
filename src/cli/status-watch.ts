/**
 * `bgserve status --watch`: the split, per-color rates, 5xx ratio and p99, and the release's progress, redrawn
 * every couple of seconds until Ctrl-C (as `kubectl argo rollouts get rollout --watch` does). The frame is a
 * pure function of what the control API answered; the loop around it only fetches and writes.
 */
import { COLORS, type Color } from '../config/defaults.js';
import type { HistoryPoint } from '../control/history.js';
import type { HistoryReport } from '../control/history-routes.js';
import type { ReleaseView } from '../control/release-routes.js';
import type { StatusReport } from '../control/traffic-routes.js';
import type { ReleaseState } from '../release/types.js';
import { InvalidArgumentError } from 'commander';
import type { ControlClient } from './control-client.js';
import { formatReleaseSummary } from './release.js';

export const WATCH_TITLE = 'bgserve status --watch';

export interface WatchInput {
  at: number;
  intervalMs: number;
  /** Null when the control API could not be read; `problem` then says why. */
  status: StatusReport | null;
  history: HistoryReport | null;
  release: ReleaseView | null;
  problem?: string;
}

const BAR_WIDTH = 40;
const SPARKS = '▁▂▃▄▅▆▇█';

function pad(text: string, width: number): string {
  return text.length >= width ? `${text} ` : text.padEnd(width);
}

function clock(ms: number): string {
  return new Date(ms).toISOString().slice(11, 19);
}

/** The split as one bar: blue's share in full blocks, green's in light shade. */
export function splitBar(weights: Record<Color, number>): string {
  const blue = Math.round((weights.blue / 100) * BAR_WIDTH);
  return `[${'█'.repeat(blue)}${'░'.repeat(BAR_WIDTH - blue)}]  blue ${weights.blue}%  green ${weights.green}%`;
}

/** The last `n` values as a sparkline scaled to their own maximum; gaps are spaces. */
export function sparkline(values: ReadonlyArray<number | null>, n = 20): string {
  const tail = values.slice(-n);
  const max = Math.max(0, ...tail.map((v) => v ?? 0));
  return tail
    .map((v) => (v === null ? ' ' : SPARKS[max > 0 ? Math.min(SPARKS.length - 1, Math.floor((v / max) * (SPARKS.length - 1))) : 0]))
    .join('');
}

const num = (v: number | null | undefined, digits: number, unit = '') =>
  v === null || v === undefined ? '-' : `${v.toFixed(digits)}${unit}`;
const ratio = (v: number | null | undefined) => (v === null || v === undefined ? '-' : `${(v * 100).toFixed(v > 0 && v < 0.01 ? 2 : 1)}%`);

/** The newest point with rates for this color (the first point after a start or a failed scrape has none). */
function latest(points: readonly HistoryPoint[], color: Color): HistoryPoint['colors'][Color] | undefined {
  for (let i = points.length - 1; i >= 0; i--) if (points[i].colors[color].requestRate !== null) return points[i].colors[color];
  return undefined;
}

function colorRows(input: WatchInput): string[] {
  const status = input.status as StatusReport;
  const points = input.history?.points ?? [];
  const rows = [`${pad('color', 7)}${pad('weight', 8)}${pad('req/s', 9)}${pad('5xx', 8)}${pad('p99', 10)}${pad('trend (req/s)', 22)}model`];
  for (const color of COLORS) {
    const c = status.colors[color];
    const p = latest(points, color);
    const model = c.model ? `${c.model.name} ${c.model.version}` : c.ok ? '-' : 'DOWN';
    rows.push(
      `${pad(color, 7)}${pad(`${c.weight}%`, 8)}${pad(num(p?.requestRate, 1), 9)}${pad(ratio(p?.errorRatio), 8)}` +
        `${pad(p?.p99Seconds == null ? '-' : num(p.p99Seconds * 1000, 1, ' ms'), 10)}` +
        `${pad(sparkline(points.map((q) => q.colors[color].requestRate)), 22)}${model}`,
    );
  }
  if (!input.history) rows.push('(no history from the control API: rates need a controller with /api/history)');
  return rows;
}

/**
 * Where the release is on its way: each canary step, or the blue-green phases, as done [x], current [>],
 * to come [ ], or where an unsuccessful release ended [!].
 */
export function progressLine(r: ReleaseState, now: number): string {
  const { spec } = r;
  const live = r.status === 'running' || r.status === 'paused';
  let stages: string;
  if (spec.strategy === 'canary') {
    stages = spec.steps
      .map((w, i) => {
        const done = r.status === 'succeeded' || (r.phase === 'step' && i < r.stepIndex) || r.phase === 'post-switch' || r.phase === 'done';
        const here = r.phase === 'step' && i === r.stepIndex;
        // Where a release that ended without succeeding stopped (rolled back, aborted, failed).
        const mark = live ? '>' : '!';
        return `[${done ? 'x' : here ? mark : ' '}] ${w}%`;
      })
      .join('  ');
  } else {
    const phases = ['loading', 'smoke', ...(spec.shadowMs > 0 ? ['shadow'] : []), 'post-switch'] as const;
    const at = phases.indexOf(r.phase as (typeof phases)[number]);
    stages = phases
      .map(
        (p, i) => `[${r.status === 'succeeded' || (at >= 0 && i < at) ? 'x' : i === at ? '>' : ' '}] ${p === 'post-switch' ? 'switch' : p}`,
      )
      .join('  ');
  }
  const analysed = r.phase === 'step' || r.phase === 'post-switch' || r.phase === 'shadow';
  const windowMs = r.phase === 'shadow' ? spec.shadowMs : spec.analysisMs;
  const window =
    live && analysed && windowMs > 0
      ? `   window ${Math.min(Math.round((now - r.phaseStartedAt) / 1000), Math.round(windowMs / 1000))}s of ${Math.round(windowMs / 1000)}s`
      : '';
  return `progress ${stages}${window}`;
}

/** One full screen. */
export function renderWatchFrame(input: WatchInput): string {
  const every = `every ${Math.round(input.intervalMs / 100) / 10}s`;
  const lines = [`${WATCH_TITLE}   ${clock(input.at)} UTC   ${every}   (Ctrl-C to stop)`, ''];
  if (input.problem) lines.push(`control API: ${input.problem}`, '');
  if (!input.status) return lines.join('\n');
  const s = input.status;
  lines.push(`router   ${s.router.kind} at ${s.router.url}`, `split    ${splitBar(s.weights)}`);
  if (s.mirror.target) lines.push(`mirror   ${s.mirror.percent}% copied to ${s.mirror.target}`);
  if (s.releaseTraffic && !s.releaseTraffic.agrees) lines.push(`traffic  DISAGREES: ${s.releaseTraffic.message}`);
  lines.push('', ...colorRows(input), '');
  const view = input.release;
  if (!view) lines.push('release  none yet');
  else {
    lines.push(formatReleaseSummary(view.release, s.releaseTraffic), progressLine(view.release, input.at));
    const recent = view.events.slice(-4);
    if (recent.length > 0) {
      lines.push('events');
      for (const e of recent) lines.push(`  ${clock(e.at)}  ${pad(e.type, 22)}${e.reason}`);
    }
  }
  return lines.join('\n');
}

export interface WatchSink {
  write(text: string): unknown;
  isTTY?: boolean;
}

/** Fetches what a frame shows; a route the control API lacks (no releases, no history) is left out. */
export async function fetchWatchInput(client: ControlClient, intervalMs: number, now = Date.now()): Promise<WatchInput> {
  const optional = <T>(p: Promise<T>) =>
    p.then(
      (v) => v as T | null,
      () => null,
    );
  try {
    const [status, history, release] = await Promise.all([
      client.get<StatusReport>('/api/status'),
      // A minute is all a frame draws (the sparkline and the latest rates).
      optional(client.get<HistoryReport>(`/api/history?since=${Math.max(0, now - 60_000)}`)),
      optional(client.get<ReleaseView>('/api/releases/current')),
    ]);
    return { at: now, intervalMs, status, history, release };
  } catch (err) {
    return { at: now, intervalMs, status: null, history: null, release: null, problem: (err as Error).message };
  }
}

/**
 * Redraws until `signal` aborts. On a terminal each frame replaces the last (cursor home, clear); into a pipe
 * frames follow one another, a blank line apart, so a log of them stays readable.
 */
export async function watchStatus(client: ControlClient, out: WatchSink, opts: { intervalMs: number; signal: AbortSignal }): Promise<void> {
  let first = true;
  while (!opts.signal.aborted) {
    const started = Date.now();
    const frame = renderWatchFrame(await fetchWatchInput(client, opts.intervalMs));
    if (opts.signal.aborted) break;
    out.write(out.isTTY ? `\x1b[H\x1b[2J${frame}\n` : `${first ? '' : '\n'}${frame}\n`);
    first = false;
    await new Promise<void>((resolve) => {
      // Frames keep their rhythm however long the control API took to answer.
      const timer = setTimeout(done, Math.max(0, opts.intervalMs - (Date.now() - started)));
      opts.signal.addEventListener('abort', done, { once: true });
      function done() {
        clearTimeout(timer);
        opts.signal.removeEventListener('abort', done);
        resolve();
      }
    });
  }
}

/** --interval: seconds between frames, at least a fifth of a second (faster only loads the control API). */
export function positiveSeconds(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0.2) throw new InvalidArgumentError('expected a number of seconds, at least 0.2');
  return n;
}

/** The `status --watch` command: redraws on stdout until Ctrl-C (or SIGTERM), then leaves with status 0. */
export async function runWatch(client: ControlClient, intervalSeconds: number): Promise<void> {
  const stop = new AbortController();
  const end = () => stop.abort();
  process.once('SIGINT', end);
  process.once('SIGTERM', end);
  try {
    await watchStatus(client, process.stdout, { intervalMs: Math.round(intervalSeconds * 1000), signal: stop.signal });
  } finally {
    process.off('SIGINT', end);
    process.off('SIGTERM', end);
  }
}
