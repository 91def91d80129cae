/**
 * The control API: a token-protected Fastify app on loopback that the CLI and the release engine talk to.
 * Routes live in plugins registered under /api behind the bearer check; which plugins, over which services,
 * is the composition root's choice (app/root.ts). This module is the app itself: auth, errors, /metrics.
 */
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import { collectDefaultMetrics, Registry } from 'prom-client';
import type { Color } from '../config/defaults.js';
import { TrafficInputError } from '../traffic/policy.js';
import { RouterRefusedError, type TrafficDriver } from '../traffic/types.js';
import { bearerAuth } from './auth.js';
import { ControlError, type ControlContext, type ControlPlugin, type ReleasePort, type StackView } from './context.js';

export interface ControlServerOptions {
  token: string;
  traffic: TrafficDriver;
  colors: Record<Color, { url: string }>;
  /** Each color's replicas (status shows each); default: the one at colors[c].url. */
  pools?: ControlContext['pools'];
  stack?: StackView;
  /** The release controller's port, for the traffic routes and status (none: the API has no releases). */
  releases?: ReleasePort;
  /** Registry of the services' own metrics (the controller's), served on /metrics. Default: a new one. */
  metrics?: Registry;
  /** Registered under /api, behind the token check, in order. */
  plugins?: ControlPlugin[];
  /** Registered at the root without the token check (e.g. a status page). Use sparingly. */
  publicPlugins?: ControlPlugin[];
  logger?: boolean | { level: string };
}

export interface ControlServer {
  app: FastifyInstance;
  ctx: ControlContext;
}

/**
 * Builds the app (not listening). Returns a wrapper, not the Fastify instance itself: an instance is
 * thenable, so returning it from an async function would run `ready()` and close it to more plugins.
 */
export async function buildControlServer(opts: ControlServerOptions): Promise<ControlServer> {
  const app = Fastify({
    logger: opts.logger ?? false,
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: true } },
  });
  const processRegistry = new Registry();
  collectDefaultMetrics({ register: processRegistry, prefix: 'bgserve_control_' });
  const ctx: ControlContext = {
    traffic: opts.traffic,
    colors: opts.colors,
    ...(opts.pools ? { pools: opts.pools } : {}),
    stack: opts.stack,
    releases: opts.releases,
    metrics: opts.metrics ?? new Registry(),
  };

  app.setErrorHandler((err: FastifyError | Error, _request, reply) => {
    if (err instanceof ControlError) {
      return reply.code(err.statusCode).send({ error: err.code, message: err.message, ...(err.details ? { details: err.details } : {}) });
    }
    if (err instanceof TrafficInputError) {
      return reply.code(422).send({ error: err.code, message: err.message, details: err.details });
    }
    if (err instanceof RouterRefusedError) {
      return reply.code(502).send({ error: 'router_refused', message: err.message, details: { output: err.output } });
    }
    const fe = err as FastifyError;
    if (fe.validation) {
      const details: Record<string, string> = {};
      for (const v of fe.validation) {
        const missing = (v.params as { missingProperty?: string }).missingProperty;
        const extra = (v.params as { additionalProperty?: string }).additionalProperty;
        const where = (v.instancePath || '/').slice(1) || missing || extra || 'body';
        details[missing ?? extra ?? where] = extra ? 'unknown property' : (v.message ?? 'invalid');
      }
      return reply.code(400).send({ error: 'bad_request', message: 'the request does not match the schema', details });
    }
    if (fe.statusCode && fe.statusCode < 500) {
      return reply.code(fe.statusCode).send({ error: fe.code ?? 'bad_request', message: fe.message });
    }
    reply.log.error({ err }, 'control API error');
    return reply.code(500).send({ error: 'internal', message: err.message });
  });
  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send({ error: 'not_found', message: `no route ${request.method} ${request.url}` }),
  );

  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/metrics', async (_request, reply) => {
    const texts = await Promise.all([processRegistry, opts.traffic.metrics, ctx.metrics].map((r) => r.metrics()));
    return reply.type(processRegistry.contentType).send(texts.join('\n'));
  });
  for (const plugin of opts.publicPlugins ?? []) await app.register(plugin, { ctx });

  await app.register(
    async (api) => {
      api.addHook('onRequest', bearerAuth(opts.token));
      for (const plugin of opts.plugins ?? []) await api.register(plugin, { ctx });
    },
    { prefix: '/api' },
  );
  return { app, ctx };
}

/** Builds and listens; resolves with the app and its URL. */
export async function startControlServer(
  opts: ControlServerOptions & { host: string; port: number },
): Promise<ControlServer & { url: string }> {
  const { app, ctx } = await buildControlServer(opts);
  await app.listen({ host: opts.host, port: opts.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : opts.port;
  return { app, ctx, url: `http://${opts.host}:${port}` };
}
