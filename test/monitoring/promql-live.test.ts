/**
 * Every PromQL expression of the committed rules and dashboard, run against a real Prometheus scraping a real
 * local stack (`bgserve up`: blue and green instances, the embedded router, the control API) under bounded
 * load through the router to both colors (with some bad requests).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COLORS, type Color } from '../../src/config/defaults.js';
import { CONTROLLER_METRICS, ROUTER_METRICS } from '../../src/config/metric-names.js';
import { readTokenFile } from '../../src/control/auth.js';
import { WINE_EXAMPLE } from '../../src/model/wine.js';
import { startLocalPrometheus, type LocalPrometheus } from '../../src/monitoring/local-prometheus.js';
import { queryInstant, type InstantResult } from '../../src/monitoring/prometheus-api.js';
import { ALERT_THRESHOLDS, JOBS, RECORDED, alertDefinitions, modelVersions } from '../../src/monitoring/queries.js';
import { freePort, startCli, stopAll, stopProcess, waitForHttp, type Started, freeUpPorts, upArgv } from '../support/processes.js';
import { dashboardExpressions, ruleExpressions, withGrafanaVariables, type Expression } from './expressions.js';

/** One request in BAD_EVERY is invalid (a 422 counted in predict_errors_total). */
const BAD_EVERY = 10;
const LOAD_DEADLINE_MS = 40_000;
const MIN_LOAD_MS = 10_000;

const CONTROL_METRICS: string[] = [...Object.values(ROUTER_METRICS), ...Object.values(CONTROLLER_METRICS)];
/** Router and controller metrics, and the control API's own target (alone: the instance-down alert watches both jobs). */
const CONTROL_NAMES = [...CONTROL_METRICS, `job="${JOBS.control}"`];

/** Expressions about the router or the controller: their data comes from the control API. */
function isControlExpression(expr: string): boolean {
  return CONTROL_NAMES.some((name) => expr.includes(name));
}

/** Metric family names with at least one sample in a Prometheus text exposition (histogram suffixes folded). */
function exportedMetrics(text: string): Set<string> {
  const names = text
    .split('\n')
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => line.split(/[{ ]/)[0].replace(/_(bucket|sum|count)$/, ''));
  return new Set(names);
}

function describeResult(r: InstantResult): string {
  return r.status === 'success' ? JSON.stringify(r.samples) : `${r.errorType}: ${r.error}`;
}

/** The colors an expression is about: those it selects by name (a per-color panel), else both. */
function colorsOf(expr: string): Color[] {
  const named = COLORS.filter((c) => expr.includes(`color="${c}"`));
  return named.length > 0 ? named : [...COLORS];
}

/**
 * Data for every color the expression is about: each present when the result is labelled by color, else at
 * least one series (e.g. the blue/green prediction shift, which exists only when both colors have data).
 */
function hasDataForItsColors(expr: string, r: InstantResult): boolean {
  if (r.status !== 'success' || r.samples.length === 0) return false;
  const colors = new Set(r.samples.map((s) => s.labels.color).filter((c) => c !== undefined));
  return colors.size === 0 || colorsOf(expr).every((c) => colors.has(c));
}

describe('PromQL catalogue against a real Prometheus and real instances', () => {
  let stack: Started | undefined;
  const urls = { router: '', control: '', blue: '', green: '' };
  let prom: LocalPrometheus | undefined;
  let dataDir: string;
  /** Metric names the control API exports with at least one sample. */
  let controlExported = new Set<string>();
  let instanceExprs: Expression[] = [];
  let controlExprs: Expression[] = [];
  /** Alert conditions are empty while all is well: Prometheus must accept them, their values must have data. */
  let alertConditions: Expression[] = [];
  const sent = { good: 0, bad: 0, failed: 0 };

  /**
   * Live traffic through the router, split 50/50 (see beforeAll): router and instance metrics both move. Not
   * through the preview route, which rules and panels leave out by design.
   */
  async function load(signal: AbortSignal): Promise<void> {
    let n = 0;
    while (!signal.aborted) {
      const bad = ++n % BAD_EVERY === 0;
      const body = bad ? { ...WINE_EXAMPLE, alcohol: 'lots' } : WINE_EXAMPLE;
      try {
        const res = await fetch(`${urls.router}/predict`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
          // Not the loop's signal: undici keeps a listener on it per request. Each request is short; the loop stops between them.
          signal: AbortSignal.timeout(5_000),
        });
        await res.arrayBuffer();
        if (bad) sent.bad++;
        else sent.good++;
      } catch {
        if (!signal.aborted) sent.failed++;
      }
      // Bounded load: a steady trickle, enough for every rate() without hogging the shared CPUs.
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  /**
   * A canary release rolled back by command, so the controller's metrics (phase, weights, releases by
   * outcome, time to roll back) have data for the dashboard's release panels and annotations.
   */
  async function rollBackOneRelease(token: string): Promise<void> {
    const call = async (method: string, url: string, body?: unknown) => {
      const res = await fetch(`${urls.control}/api${url}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body !== undefined && { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: res.status, body: (await res.json()) as { release: { phase: string; status: string } } };
    };
    const started = await call('POST', '/releases', {
      bundle: 'models/wine-quality/1.1.0',
      strategy: 'canary',
      steps: [10, 100],
      analysisMs: 120_000,
    });
    if (started.status !== 201) throw new Error(`release refused: ${JSON.stringify(started.body)}`);
    const deadline = Date.now() + 60_000;
    while ((await call('GET', '/releases/current')).body.release.phase !== 'step') {
      if (Date.now() > deadline) throw new Error('release never reached its first step');
      await new Promise((r) => setTimeout(r, 200));
    }
    const rolledBack = await call('POST', '/releases/current/rollback');
    if (rolledBack.body.release.status !== 'rolled_back') throw new Error(`rollback: ${JSON.stringify(rolledBack.body)}`);
  }

  beforeAll(async () => {
    const [rules, dashboard] = await Promise.all([ruleExpressions(), dashboardExpressions()]);
    const alertNames = new Set(alertDefinitions().map((a) => a.name));
    const isAlert = (e: Expression) => alertNames.has(e.source.replace(/^rule /, ''));
    alertConditions = rules.filter(isAlert);
    const alertValues = alertDefinitions().map((a) => ({ source: `alert value ${a.name}`, expr: a.value }));
    const all = [...rules.filter((e) => !isAlert(e)), ...alertValues, ...dashboard].map((e) => ({
      ...e,
      expr: withGrafanaVariables(e.expr),
    }));
    instanceExprs = all.filter((e) => !isControlExpression(e.expr));
    controlExprs = all.filter((e) => isControlExpression(e.expr));

    dataDir = await mkdtemp(path.join(tmpdir(), 'bgserve-promql-live-'));
    const ports = await freeUpPorts();
    for (const key of Object.keys(ports) as Array<keyof typeof ports>) urls[key] = `http://127.0.0.1:${ports[key]}`;
    stack = startCli(upArgv(ports, path.join(dataDir, 'stack')));
    await waitForHttp(`${urls.control}/healthz`, { proc: stack, timeoutMs: 60_000 });
    await Promise.all(COLORS.map((c) => waitForHttp(`${urls[c]}/ready`, { proc: stack, timeoutMs: 30_000 })));
    const token = await readTokenFile(path.join(dataDir, 'stack', 'token'));
    await rollBackOneRelease(token);
    const split = await fetch(`${urls.control}/api/weights`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ blue: 50, green: 50 }),
    });
    if (split.status !== 200) throw new Error(`weights 50/50: ${split.status} ${await split.text()}`);

    prom = await startLocalPrometheus({
      port: await freePort(),
      dataDir: path.join(dataDir, 'prometheus'),
      scrapeInterval: '1s',
      targets: {
        instances: COLORS.map((color) => ({ color, address: `127.0.0.1:${ports[color]}` })),
        control: `127.0.0.1:${ports.control}`,
      },
    });

    // Load both colors until every instance expression has data for both colors (or the deadline passes).
    const stopLoad = new AbortController();
    const loaders = Array.from({ length: 4 }, () => load(stopLoad.signal));
    const deadline = Date.now() + LOAD_DEADLINE_MS;
    // The router picks a color per request at random: enough requests that each color's share of bad ones
    // is close to one in ten.
    const enough = Date.now() + MIN_LOAD_MS;
    try {
      while (Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 1_000));
        if (Date.now() < enough) continue;
        const results = await Promise.all(instanceExprs.map((e) => queryInstant(prom!.url, e.expr)));
        const up = await queryInstant(prom!.url, `up{job="${JOBS.control}"} == 1`);
        if (results.every((r, i) => hasDataForItsColors(instanceExprs[i].expr, r)) && up.status === 'success' && up.samples.length === 1)
          break;
      }
    } finally {
      stopLoad.abort();
      await Promise.allSettled(loaders);
    }
    controlExported = exportedMetrics(await (await fetch(`${urls.control}/metrics`)).text());
  }, 120_000);

  afterAll(async () => {
    await prom?.stop();
    if (stack) await stopProcess(stack, 15_000);
    await stopAll();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('sent good and bad requests to both colors', () => {
    expect(sent.failed).toBe(0);
    expect(sent.good).toBeGreaterThan(50);
    expect(sent.bad).toBeGreaterThan(5);
  });

  it('covers the rules, the alert values and the dashboard', () => {
    expect(instanceExprs.length).toBeGreaterThan(20);
    expect(instanceExprs.some((e) => e.source.startsWith('rule color:'))).toBe(true);
    const instanceAlerts = alertDefinitions().filter((a) => !isControlExpression(a.value));
    expect(instanceAlerts.map((a) => a.name)).toContain('BgserveInstanceDown');
    expect(instanceExprs.filter((e) => e.source.startsWith('alert value ')).length).toBe(instanceAlerts.length);
    expect(instanceExprs.some((e) => e.source.startsWith('panel '))).toBe(true);
    expect(controlExprs.some((e) => e.source.startsWith('annotation '))).toBe(true);
  });

  it('every instance expression returns data for both colors', async () => {
    const failures: string[] = [];
    for (const e of instanceExprs) {
      const r = await queryInstant(prom!.url, e.expr);
      if (!hasDataForItsColors(e.expr, r)) failures.push(`${e.source}: ${e.expr}\n  -> ${describeResult(r)}`);
    }
    expect(failures, failures.join('\n')).toEqual([]);
  });

  it('every alert condition and every router and controller expression is accepted by Prometheus', async () => {
    for (const e of [...alertConditions, ...controlExprs]) {
      const r = await queryInstant(prom!.url, e.expr);
      expect(r.status, `${e.source}: ${e.expr}\n${describeResult(r)}`).toBe('success');
    }
  });

  it('every router and controller expression whose metrics the control API exports returns data', async () => {
    // The router's metrics exist from the start; release metrics appear once a release has run.
    expect(controlExported).toContain(ROUTER_METRICS.requests);
    const checked: string[] = [];
    const failures: string[] = [];
    for (const e of controlExprs) {
      const used = CONTROL_METRICS.filter((m) => e.expr.includes(m));
      // A comparison against zero (e.g. "releases finished > 0") is legitimately empty while nothing happens.
      if (!used.every((m) => controlExported.has(m)) || / > 0$/.test(e.expr)) continue;
      checked.push(e.source);
      const r = await queryInstant(prom!.url, e.expr);
      if (!hasDataForItsColors(e.expr, r)) failures.push(`${e.source}: ${e.expr}\n  -> ${describeResult(r)}`);
    }
    expect(failures, failures.join('\n')).toEqual([]);
    // After one rolled-back release, the release panels and the phase annotation have data too.
    expect(checked).toEqual(
      expect.arrayContaining([
        'panel Traffic by color / B',
        'panel Weights / A',
        'panel Weights / B',
        'panel Targets up / B',
        'panel Release phase / A',
        'panel Time to roll back (p99) / A',
        'annotation Release phases',
      ]),
    );
  });

  it('measures what the load did: one request in ten rejected, none failing on the server', async () => {
    const ratio = await queryInstant(prom!.url, RECORDED.errorRatio);
    const server = await queryInstant(prom!.url, RECORDED.serverErrorRatio);
    expect(ratio.status === 'success' && server.status === 'success').toBe(true);
    if (ratio.status !== 'success' || server.status !== 'success') return;
    for (const color of COLORS) {
      const r = ratio.samples.find((s) => s.labels.color === color);
      expect(r?.value, `${color} error ratio`).toBeGreaterThan(0.05);
      expect(r?.value, `${color} error ratio`).toBeLessThan(0.15);
      expect(server.samples.find((s) => s.labels.color === color)?.value, `${color} 5xx ratio`).toBe(0);
    }
  });

  it('sees both instances and the control API up, each color with its model, and no prediction shift', async () => {
    const up = await queryInstant(prom!.url, `up{job="${JOBS.instances}"}`);
    expect(up.status === 'success' && up.samples.map((s) => [s.labels.color, s.value]).sort()).toEqual([
      ['blue', 1],
      ['green', 1],
    ]);
    const control = await queryInstant(prom!.url, `up{job="${JOBS.control}"}`);
    expect(control.status === 'success' && control.samples.map((s) => s.value)).toEqual([1]);
    const shift = await queryInstant(prom!.url, alertDefinitions().find((a) => a.name === 'BgservePredictionShift')!.value);
    // The rolled-back release left 1.1.0 loaded on green (warm, for the next release); the 50/50 load reaches it.
    const versions = await queryInstant(prom!.url, modelVersions());
    expect(versions.status === 'success' && versions.samples.map((s) => [s.labels.color, s.labels.model_version]).sort()).toEqual([
      ['blue', '1.0.0'],
      ['green', '1.1.0'],
    ]);
    // Two versions trained on the same data predict the same example almost alike: a shift, but far below the alert.
    expect(shift.status === 'success' && shift.samples.length).toBe(1);
    const value = shift.status === 'success' ? shift.samples[0].value : NaN;
    expect(value).toBeGreaterThanOrEqual(0);
    expect(value).toBeLessThan(ALERT_THRESHOLDS.predictionShift);
  });
});
