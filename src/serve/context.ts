/**
 * What the instance's routes and protocol plugins share: the model holder, the metrics and the color.
 * It is decorated on the Fastify instance as `serving` and also passed to plugins as the option `ctx`.
 */
import type { ModelHolder } from './holder.js';
import type { InstanceMetrics } from './metrics.js';
import type { PredictionRing } from './prediction-ring.js';

export interface ServeContext {
  readonly holder: ModelHolder;
  readonly metrics: InstanceMetrics;
  readonly color: string;
  /** Date.now() when the app was built, for /health's uptime. */
  readonly startedAt: number;
  /** Recent answers to requests that carried an id, for the shadow comparison (GET /admin/predictions). */
  readonly predictions: PredictionRing;
}

/** Options every serve plugin receives; register a plugin with `{ ctx: app.serving }`. */
export interface ServePluginOptions {
  ctx: ServeContext;
}

/**
 * Route config that marks a prediction route: its answers of any status count in predict_requests_total.
 * Spread it into a route's `config` (`config: { ...PREDICTION_ROUTE }`).
 */
export const PREDICTION_ROUTE = { prediction: true } as const;

declare module 'fastify' {
  interface FastifyInstance {
    serving: ServeContext;
  }
  interface FastifyContextConfig {
    prediction?: boolean;
  }
}
