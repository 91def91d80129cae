/** /api/status, /api/weights, /api/switch, /api/mirror, /api/sticky: the traffic half of the control API. */
import { request } from 'undici';
import { COLORS, type Color } from '../config/defaults.js';
import { INSTANCE_METRICS } from '../config/metric-names.js';
import { parseExposition } from '../metric-sources/prom-text.js';
import { describeError } from '../traffic/health.js';
import { weightsFor } from '../config/traffic-split.js';
import { activeColor, validateMirror, validateWeights } from '../traffic/policy.js';
import type { MirrorConfig, StickyConfig, Upstream, Weights } from '../traffic/types.js';
import type { LogDamage } from '../store/release-store.js';
import type { ControlContext, ControlPlugin, InstanceProcessInfo } from './context.js';
import { actorOf } from './actor.js';
import { claimTraffic, releaseTraffic, type ReleaseTraffic } from './traffic-guard.js';

const PERCENT = { type: 'integer', minimum: 0, maximum: 100 } as const;
const COLOR = { type: 'string', enum: [...COLORS] } as const;
/** Move traffic even while a release is live: the release is paused first (see traffic-guard.ts). */
const FORCE = { type: 'boolean' } as const;

export interface InstanceHealth {
  ok: boolean;
  state: string | null;
  model: { name: string; version: string; sha256?: string; format?: string } | null;
  error: string | null;
}

/** One replica of a color, as status shows it. */
export interface ReplicaStatus {
  /** "host:port" */
  address: string;
  url: string;
  model: { name: string; version: string; sha256?: string } | null;
  /** Answers /health and serves (not loading, not draining). */
  ready: boolean;
  /** The router's view: in rotation or not. */
  healthy: boolean;
  /** Prediction requests per second it answered since the previous status (null on the first, or unreadable). */
  rps: number | null;
  /** Its process, when this stack started it. */
  process?: InstanceProcessInfo | null;
}

export interface ColorStatus extends InstanceHealth {
  /** The first replica's (the color's instance when it has one). */
  url: string;
  weight: number;
  /** The router's view: in rotation or not. */
  healthy: boolean;
  lastError: string | null;
  process: InstanceProcessInfo | null;
  /** Every replica of the color (one for a color of one instance); always set by statusReport. */
  replicas?: ReplicaStatus[];
}

export interface StatusReport {
  router: { kind: string; url: string };
  weights: { blue: number; green: number };
  active: Color | null;
  mirror: { target: Color | null; percent: number };
  sticky: StickyConfig | null;
  generation: number;
  colors: Record<Color, ColorStatus>;
  /** The router's traffic against the latest release's (absent without a release controller or a release). */
  releaseTraffic?: ReleaseTraffic;
  /** The release log and the lines skipped as damaged when it was opened (absent without a release controller). */
  releaseLog?: { file: string; damage: LogDamage[] };
}

/** GET /health of one instance, short timeout: status must answer even when an instance hangs. */
export async function fetchInstanceHealth(url: string, timeoutMs = 1_000): Promise<InstanceHealth> {
  try {
    const res = await request(`${url}/health`, { headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
    const body = (await res.body.json()) as { state?: string; model?: InstanceHealth['model'] };
    if (res.statusCode !== 200)
      return { ok: false, state: body.state ?? null, model: body.model ?? null, error: `GET /health answered ${res.statusCode}` };
    return { ok: true, state: body.state ?? null, model: body.model ?? null, error: null };
  } catch (err) {
    return { ok: false, state: null, model: null, error: describeError(err) };
  }
}

/** Each replica's request count at the previous status, per control API: the next status's rate. */
const lastCounts = new WeakMap<ControlContext, Map<string, { count: number; at: number }>>();

/** Requests an instance answered so far (every route, status and source), or null when /metrics does not answer. */
async function requestCount(url: string, timeoutMs = 1_000): Promise<number | null> {
  try {
    const res = await request(`${url}/metrics`, { headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
    const text = await res.body.text();
    if (res.statusCode !== 200) return null;
    return parseExposition(text, { families: [INSTANCE_METRICS.requests] })
      .filter((s) => s.name === INSTANCE_METRICS.requests)
      .reduce((sum, s) => sum + s.value, 0);
  } catch {
    return null;
  }
}

function poolOf(ctx: ControlContext, color: Color): Upstream[] {
  const pool = ctx.pools?.replicas(color);
  if (pool) return [...pool];
  const url = new URL(ctx.colors[color].url);
  return [{ host: url.hostname.replace(/^\[|\]$/g, ''), port: url.port === '' ? 80 : Number(url.port) }];
}

async function replicaStatuses(ctx: ControlContext, color: Color): Promise<ReplicaStatus[]> {
  const routerView = ctx.traffic.health()[color];
  const processes = ctx.stack?.replicaProcesses?.()[color];
  const counts = lastCounts.get(ctx) ?? new Map<string, { count: number; at: number }>();
  lastCounts.set(ctx, counts);
  return Promise.all(
    poolOf(ctx, color).map(async (u) => {
      const address = `${u.host}:${u.port}`;
      const url = `http://${u.host.includes(':') ? `[${u.host}]` : u.host}:${u.port}`;
      const [h, count] = await Promise.all([fetchInstanceHealth(url), requestCount(url)]);
      const at = Date.now();
      const before = counts.get(address);
      const rps =
        count !== null && before && count >= before.count && at > before.at ? ((count - before.count) * 1000) / (at - before.at) : null;
      if (count !== null) counts.set(address, { count, at });
      const seen = (routerView.replicas ?? []).find((r) => r.address === address);
      const process = processes?.find((p) => p.address === address);
      return {
        address,
        url,
        model: h.model ? { name: h.model.name, version: h.model.version, ...(h.model.sha256 ? { sha256: h.model.sha256 } : {}) } : null,
        ready: h.ok && (h.state === null || h.state === 'serving'),
        healthy: seen ? seen.healthy : routerView.healthy,
        rps: rps === null ? null : Math.round(rps * 10) / 10,
        ...(process ? { process: { pid: process.pid, running: process.running, exitCode: process.exitCode, signal: process.signal } } : {}),
      };
    }),
  );
}

export async function statusReport(ctx: ControlContext): Promise<StatusReport> {
  const state = ctx.traffic.state();
  const health = ctx.traffic.health();
  const processes = ctx.stack?.processes();
  const [instances, replicas] = await Promise.all([
    Promise.all(COLORS.map((c) => fetchInstanceHealth(ctx.colors[c].url))),
    Promise.all(COLORS.map((c) => replicaStatuses(ctx, c))),
  ]);
  const colors = {} as Record<Color, ColorStatus>;
  COLORS.forEach((color, i) => {
    colors[color] = {
      url: ctx.colors[color].url,
      weight: state.weights[color],
      healthy: health[color].healthy,
      lastError: health[color].lastError,
      ...instances[i],
      process: processes?.[color] ?? null,
      replicas: replicas[i],
    };
  });
  return {
    router: { kind: ctx.traffic.kind, url: ctx.traffic.url },
    weights: state.weights,
    active: activeColor(state.weights),
    mirror: state.mirror,
    sticky: state.sticky,
    generation: state.generation,
    colors,
    ...releaseReport(ctx),
  };
}

function releaseReport(ctx: ControlContext): Pick<StatusReport, 'releaseTraffic' | 'releaseLog'> {
  const port = ctx.releases;
  if (!port) return {};
  const latest = port.current();
  return {
    ...(latest ? { releaseTraffic: releaseTraffic(latest, ctx.traffic.state()) } : {}),
    releaseLog: { file: port.log.file, damage: [...port.log.damage] },
  };
}

const sameWeights = (a: Weights, b: Weights) => a.blue === b.blue && a.green === b.green;

export const trafficRoutes: ControlPlugin = async (api, { ctx }) => {
  const { traffic } = ctx;

  api.get('/status', async () => statusReport(ctx));

  api.put<{ Body: Weights & { force?: boolean } }>(
    '/weights',
    {
      schema: {
        body: {
          type: 'object',
          required: ['blue', 'green'],
          additionalProperties: false,
          properties: { blue: PERCENT, green: PERCENT, force: FORCE },
        },
      },
    },
    async (request) => {
      const weights = validateWeights({ blue: request.body.blue, green: request.body.green });
      const release = await claimTraffic(ctx.releases, `weights blue=${weights.blue} green=${weights.green}`, {
        force: request.body.force === true,
        actor: actorOf(request),
        unchanged: sameWeights(weights, traffic.state().weights),
      });
      const started = Date.now();
      const state = await traffic.setWeights(weights);
      return { ...state, inEffectMs: Date.now() - started, ...(release ? { release } : {}) };
    },
  );

  api.post<{ Body: { color: Color; force?: boolean } }>(
    '/switch',
    { schema: { body: { type: 'object', required: ['color'], additionalProperties: false, properties: { color: COLOR, force: FORCE } } } },
    async (request) => {
      const { color } = request.body;
      const release = await claimTraffic(ctx.releases, `switch to ${color}`, {
        force: request.body.force === true,
        actor: actorOf(request),
        unchanged: sameWeights(weightsFor(color), traffic.state().weights),
      });
      const started = Date.now();
      const state = await traffic.setWeights(weightsFor(color));
      return { ...state, inEffectMs: Date.now() - started, ...(release ? { release } : {}) };
    },
  );

  api.put<{ Body: { target: MirrorConfig['target']; percent?: number; force?: boolean } }>(
    '/mirror',
    {
      schema: {
        body: {
          type: 'object',
          required: ['target'],
          additionalProperties: false,
          properties: { target: { anyOf: [COLOR, { type: 'null' }] }, percent: PERCENT, force: FORCE },
        },
      },
    },
    async (request) => {
      // {"target": null} alone means off; a color still needs its percent.
      const { target, percent = target === null ? 0 : undefined } = request.body;
      const mirror = validateMirror({ target, percent });
      const change = mirror.target && mirror.percent > 0 ? `mirror ${mirror.percent}% to ${mirror.target}` : 'mirror off';
      const current = traffic.state().mirror;
      const release = await claimTraffic(ctx.releases, change, {
        force: request.body.force === true,
        actor: actorOf(request),
        unchanged: current.target === mirror.target && current.percent === mirror.percent,
      });
      const state = await traffic.setMirror(mirror);
      return { ...state, ...(release ? { release } : {}) };
    },
  );

  api.put(
    '/sticky',
    {
      schema: {
        body: {
          anyOf: [
            { type: 'null' },
            { type: 'object', additionalProperties: false, required: ['header'], properties: { header: { type: 'string' } } },
            { type: 'object', additionalProperties: false, required: ['cookie'], properties: { cookie: { type: 'string' } } },
          ],
        },
      },
    },
    async (request) => traffic.setSticky((request.body ?? null) as { header: string } | { cookie: string } | null),
  );
};
