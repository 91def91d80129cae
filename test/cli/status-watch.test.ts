/**
 * `bgserve status --watch`: the frame renderer by its frames, then the command itself spawned against a real
 * control plane over a real stack for a few frames, stopped with Ctrl-C (SIGINT) by its PID.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ControlPlane } from '../../src/app/root.js';
import type { HistoryReport } from '../../src/control/history-routes.js';
import type { HistoryPoint } from '../../src/control/history.js';
import type { ReleaseView } from '../../src/control/release-routes.js';
import type { StatusReport } from '../../src/control/traffic-routes.js';
import { progressLine, renderWatchFrame, sparkline, splitBar, WATCH_TITLE } from '../../src/cli/status-watch.js';
import type { ReleaseState } from '../../src/release/types.js';
import { type Load, type Stack, startControlPlane, startLoad, startStack } from '../controller/stack.js';
import { startCli, type Started, stopProcess } from '../support/processes.js';

const AT = Date.UTC(2026, 0, 2, 3, 4, 5);

function color(weight: number, version: string) {
  return {
    url: 'http://127.0.0.1:8001',
    weight,
    healthy: true,
    lastError: null,
    process: null,
    ok: true,
    state: 'serving',
    model: { name: 'wine-quality', version },
    error: null,
  };
}

const STATUS = {
  router: { kind: 'embedded', url: 'http://127.0.0.1:8080' },
  weights: { blue: 75, green: 25 },
  active: null,
  mirror: { target: null, percent: 0 },
  sticky: null,
  generation: 3,
  colors: { blue: color(75, '1.0.0'), green: color(25, '1.1.0') },
} as unknown as StatusReport;

function point(i: number, blue: number | null, green: number | null): HistoryPoint {
  const figures = (rate: number | null, weight: number) => ({
    requestRate: rate,
    errorRatio: rate === null ? null : rate > 20 ? 0 : 0.005,
    p50Seconds: rate === null ? null : 0.001,
    p99Seconds: rate === null ? null : 0.0042,
    weight,
  });
  return { at: AT - (10 - i) * 2_000, colors: { blue: figures(blue, 75), green: figures(green, 25) } };
}

const HISTORY = {
  now: AT,
  windowMs: 900_000,
  intervalMs: 2_000,
  points: [point(0, null, null), point(1, 30, 10), point(2, 60, 20), point(3, 45, null)],
  markers: [],
  distributions: { blue: { buckets: [], total: 0, version: null }, green: { buckets: [], total: 0, version: null } },
  golden: null,
} as HistoryReport;

function canary(over: Partial<ReleaseState> = {}): ReleaseState {
  return {
    spec: {
      id: 'r-7',
      modelName: 'wine-quality',
      version: '1.1.0',
      stableVersion: '1.0.0',
      strategy: 'canary',
      stableColor: 'blue',
      targetColor: 'green',
      steps: [10, 25, 100],
      shadowMs: 0,
      analysisMs: 30_000,
    },
    status: 'running',
    phase: 'step',
    stepIndex: 1,
    phaseStartedAt: AT - 12_000,
    targetWeight: 25,
    reason: null,
    lastAnalysis: null,
    ...over,
  } as unknown as ReleaseState;
}

describe('status --watch frames', () => {
  it('draws the split, per-color rates, 5xx and p99 from the newest point with rates, and the release progress', () => {
    const release: ReleaseView = {
      release: canary(),
      events: [{ at: AT - 12_000, releaseId: 'r-7', type: 'step-started', phase: 'step', reason: 'canary step 2/3: 25% to green' }],
    };
    const frame = renderWatchFrame({ at: AT, intervalMs: 2_000, status: STATUS, history: HISTORY, release });
    const lines = frame.split('\n');
    expect(lines[0]).toBe(`${WATCH_TITLE}   03:04:05 UTC   every 2s   (Ctrl-C to stop)`);
    expect(frame).toContain(`split    [${'█'.repeat(30)}${'░'.repeat(10)}]  blue 75%  green 25%`);
    // Blue: the newest point (45 req/s); green's newest point has no rate, so the one before it (20 req/s).
    expect(lines.find((l) => l.startsWith('blue '))).toMatch(/^blue\s+75%\s+45\.0\s+0\.0%\s+4\.2 ms\s+\S+\s+wine-quality 1\.0\.0$/);
    expect(lines.find((l) => l.startsWith('green '))).toMatch(/^green\s+25%\s+20\.0\s+0\.50%\s+4\.2 ms\s+\S+\s+wine-quality 1\.1\.0$/);
    expect(frame).toContain('release  r-7  canary  wine-quality 1.1.0 -> green  (stable blue 1.0.0)');
    expect(frame).toContain('status   RUNNING (step 2/3, green at 25%)');
    expect(frame).toContain('progress [x] 10%  [>] 25%  [ ] 100%   window 12s of 30s');
    expect(frame).toContain('  03:03:53  step-started          canary step 2/3: 25% to green');
  });

  it('says what is missing: no release, no history route, an unreachable control API', () => {
    const bare = renderWatchFrame({ at: AT, intervalMs: 500, status: STATUS, history: null, release: null });
    expect(bare).toContain('every 0.5s');
    expect(bare).toMatch(/^blue\s+75%\s+-\s+-\s+-\s+wine-quality 1\.0\.0$/m);
    expect(bare).toContain('(no history from the control API');
    expect(bare).toContain('release  none yet');
    const down = renderWatchFrame({
      at: AT,
      intervalMs: 2_000,
      status: null,
      history: null,
      release: null,
      problem: 'connect ECONNREFUSED',
    });
    expect(down.split('\n')).toEqual([
      `${WATCH_TITLE}   03:04:05 UTC   every 2s   (Ctrl-C to stop)`,
      '',
      'control API: connect ECONNREFUSED',
      '',
    ]);
  });

  it('draws progress for blue-green phases and finished releases, and bars and sparklines to scale', () => {
    const bg = (phase: string, status = 'running') =>
      canary({ phase, status, spec: { ...canary().spec, strategy: 'bluegreen', shadowMs: 20_000 } } as unknown as Partial<ReleaseState>);
    expect(progressLine(bg('shadow'), AT)).toBe('progress [x] loading  [x] smoke  [>] shadow  [ ] switch   window 12s of 20s');
    expect(progressLine(bg('done', 'succeeded'), AT)).toBe('progress [x] loading  [x] smoke  [x] shadow  [x] switch');
    expect(progressLine(canary({ status: 'rolled_back', phase: 'step', stepIndex: 0 }), AT)).toBe('progress [!] 10%  [ ] 25%  [ ] 100%');
    expect(splitBar({ blue: 0, green: 100 })).toBe(`[${'░'.repeat(40)}]  blue 0%  green 100%`);
    expect(sparkline([0, 4, 8, null, 2])).toBe('▁▄█ ▂');
  });
});

describe('status --watch (spawned, real control plane)', () => {
  let stack: Stack;
  let plane: ControlPlane;
  let load: Load;
  let watch: Started | undefined;
  const token = 'watch-test-token-0123456789';

  beforeAll(async () => {
    stack = await startStack();
    plane = await startControlPlane(stack, token);
    await plane.app.listen({ host: '127.0.0.1', port: 0 });
    load = await startLoad(stack.router.url, 1, 30_000);
  }, 60_000);

  afterAll(async () => {
    if (watch) await stopProcess(watch);
    await load?.stop();
    await plane?.app.close();
    await stack?.close();
  });

  it('redraws every interval with live rates until Ctrl-C, then exits 0', async () => {
    const address = plane.app.server.address();
    const url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
    watch = startCli(['status', '--watch', '--interval', '0.5', '--control-url', url, '--token', token]);
    const frames = () => watch!.output().split(WATCH_TITLE).slice(1);
    // Two frames at least, and live rates in one (the history has them from its second sample on, 2 s apart);
    // the CLI starting from source (tsx) takes most of the time on a busy machine.
    await expect
      .poll(() => frames().length >= 2 && frames().some((f) => /^blue\s+100%\s+\d+\.\d\s+0\.0%\s+\d+\.\d ms/m.test(f)), {
        timeout: 60_000,
        interval: 250,
      })
      .toBe(true);
    const seen = frames();
    expect(seen.length).toBeGreaterThanOrEqual(2);
    for (const f of seen) expect(f).toContain('split    [');
    expect(seen[seen.length - 1]).toMatch(/^green\s+0%/m);
    expect(seen[seen.length - 1]).toContain('release  none yet');

    const exited = new Promise<number | null>((resolve) => watch!.child.once('exit', (code) => resolve(code)));
    process.kill(watch.child.pid as number, 'SIGINT');
    expect(await exited).toBe(0);
  }, 90_000);
});
