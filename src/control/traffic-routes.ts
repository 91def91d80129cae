/** /api/status, /api/weights, /api/switch, /api/mirror, /api/sticky: the traffic half of the control API. */
import { request } from 'undici';
import { COLORS, type Color } from '../config/defaults.js';
import { describeError } from '../traffic/health.js';
import { activeColor, weightsFor } from '../traffic/policy.js';
import type { StickyConfig } from '../traffic/types.js';
import type { ControlContext, ControlPlugin, InstanceProcessInfo } from './server.js';

const PERCENT = { type: 'integer', minimum: 0, maximum: 100 } as const;
const COLOR = { type: 'string', enum: [...COLORS] } as const;

export interface InstanceHealth {
  ok: boolean;
  state: string | null;
  model: { name: string; version: string; sha256?: string; format?: string } | null;
  error: string | null;
}

export interface ColorStatus extends InstanceHealth {
  url: string;
  weight: number;
  /** The router's view: in rotation or not. */
  healthy: boolean;
  lastError: string | null;
  process: InstanceProcessInfo | null;
}

export interface StatusReport {
  router: { kind: string; url: string };
  weights: { blue: number; green: number };
  active: Color | null;
  mirror: { target: Color | null; percent: number };
  sticky: StickyConfig | null;
  generation: number;
  colors: Record<Color, ColorStatus>;
}

/** GET /health of one instance, short timeout: status must answer even when an instance hangs. */
export async function fetchInstanceHealth(url: string, timeoutMs = 1_000): Promise<InstanceHealth> {
  try {
    const res = await request(`${url}/health`, { headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
    const body = (await res.body.json()) as { state?: string; model?: InstanceHealth['model'] };
    if (res.statusCode !== 200) return { ok: false, state: body.state ?? null, model: body.model ?? null, error: `GET /health answered ${res.statusCode}` };
    return { ok: true, state: body.state ?? null, model: body.model ?? null, error: null };
  } catch (err) {
    return { ok: false, state: null, model: null, error: describeError(err) };
  }
}

export async function statusReport(ctx: ControlContext): Promise<StatusReport> {
  const state = ctx.traffic.state();
  const health = ctx.traffic.health();
  const processes = ctx.stack?.processes();
  const instances = await Promise.all(COLORS.map((c) => fetchInstanceHealth(ctx.colors[c].url)));
  const colors = {} as Record<Color, ColorStatus>;
  COLORS.forEach((color, i) => {
    colors[color] = {
      url: ctx.colors[color].url,
      weight: state.weights[color],
      healthy: health[color].healthy,
      lastError: health[color].lastError,
      ...instances[i],
      process: processes?.[color] ?? null,
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
  };
}

export const trafficRoutes: ControlPlugin = async (api, { ctx }) => {
  const { traffic } = ctx;

  api.get('/status', async () => statusReport(ctx));

  api.put(
    '/weights',
    {
      schema: {
        body: { type: 'object', required: ['blue', 'green'], additionalProperties: false, properties: { blue: PERCENT, green: PERCENT } },
      },
    },
    async (request) => {
      const started = Date.now();
      const state = await traffic.setWeights(request.body as { blue: number; green: number });
      return { ...state, inEffectMs: Date.now() - started };
    },
  );

  api.post(
    '/switch',
    { schema: { body: { type: 'object', required: ['color'], additionalProperties: false, properties: { color: COLOR } } } },
    async (request) => {
      const started = Date.now();
      const state = await traffic.setWeights(weightsFor((request.body as { color: Color }).color));
      return { ...state, inEffectMs: Date.now() - started };
    },
  );

  api.put(
    '/mirror',
    {
      schema: {
        body: {
          type: 'object',
          required: ['target', 'percent'],
          additionalProperties: false,
          properties: { target: { anyOf: [COLOR, { type: 'null' }] }, percent: PERCENT },
        },
      },
    },
    async (request) => traffic.setMirror(request.body as { target: Color | null; percent: number }),
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
