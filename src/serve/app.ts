/**
 * One serving instance: a Fastify app answering the original API for the model in its ModelHolder.
 * Pure request handling: listening, signals and draining live in server.ts.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { REQUEST_ID_HEADER } from '../config/defaults.js';
import { defaultBundleRoots } from '../model/bundle-roots.js';
import type { LoadedModel } from '../model/types.js';
import type { ServeContext } from './context.js';
import { registerDocs } from './docs.js';
import { ApiError, toApiError } from './errors.js';
import { ModelHolder } from './holder.js';
import { lingerOnRefusedBody, LINGER_DEFAULTS, type LingerLimits } from './linger.js';
import { InstanceMetrics } from './metrics.js';
import { PredictionRing } from './prediction-ring.js';
import { adminRoutes } from './routes/admin.js';
import { predictRoutes } from './routes/predict.js';
import { statusRoutes } from './routes/status.js';
import { trafficSource } from './source.js';
import { v2Routes } from './routes/v2.js';
import { STRICT_AJV_OPTIONS } from './validation.js';

export { ModelHolder } from './holder.js';

export const SERVE_DEFAULTS = {
  /** Rows per /predict/batch request; more answers 413 batch_too_large. */
  batchLimit: 1000,
  /** Bytes per request body (1 MiB holds a full default batch with room to spare); more answers 413. */
  bodyLimit: 1024 * 1024,
} as const;

/** The route label of requests that matched no route (404s), so unknown paths add no label values. */
export const UNMATCHED_ROUTE = 'unmatched';

export { REQUEST_ID_HEADER };

/** Fastify's error for a body over bodyLimit. */
const TOO_LARGE_CODE = 'FST_ERR_CTP_BODY_TOO_LARGE';

export interface BuildAppOptions {
  model: LoadedModel;
  /** The color label of every metric and answer ("blue", "green", or any name for a standalone instance). */
  color: string;
  /** Bearer token of POST /admin/model; without one the admin API answers 403. */
  adminToken?: string;
  batchLimit?: number;
  bodyLimit?: number;
  /** pino options (or true for defaults); off by default, as tests build many apps. */
  logger?: boolean | { level?: string };
  /** An existing pino logger, instead of `logger`. */
  loggerInstance?: FastifyBaseLogger;
  /** Default process metrics in /metrics (default true). */
  processMetrics?: boolean;
  /** Buckets of the prediction_value histogram (default 0..10 by 0.25). */
  predictionBuckets?: number[];
  /** How long and how much of a too-large body is read and discarded after its 413 (default 5 s, 64 MiB). */
  linger?: LingerLimits;
  /** Folders POST /admin/model may load from (default: defaultBundleRoots of the start-up bundle). */
  bundleRoots?: readonly string[];
}

const ACCEPTED_REQUEST_ID = /^[\w.:-]{1,128}$/;

/** Honours a caller's well-formed x-request-id (so one id follows a request through the router), else a UUID. */
function requestId(req: IncomingMessage): string {
  const given = req.headers[REQUEST_ID_HEADER];
  return typeof given === 'string' && ACCEPTED_REQUEST_ID.test(given) ? given : randomUUID();
}

export function buildApp(opts: BuildAppOptions): FastifyInstance {
  const batchLimit = opts.batchLimit ?? SERVE_DEFAULTS.batchLimit;
  const app = Fastify({
    ...(opts.loggerInstance ? { loggerInstance: opts.loggerInstance } : { logger: opts.logger ?? false }),
    bodyLimit: opts.bodyLimit ?? SERVE_DEFAULTS.bodyLimit,
    genReqId: requestId,
    requestIdHeader: false,
    // Two log lines per request would cost more than the prediction: rejections and failures are logged
    // by the error handler, successful requests at debug level only.
    logController: new LogController({ disableRequestLogging: true }),
    ajv: { customOptions: { ...STRICT_AJV_OPTIONS } },
  });

  const metrics = new InstanceMetrics(opts.color, {
    processMetrics: opts.processMetrics,
    predictionBuckets: opts.predictionBuckets,
  });
  const holder = new ModelHolder(opts.model, metrics, batchLimit);
  const ctx: ServeContext = { holder, metrics, color: opts.color, startedAt: Date.now(), predictions: new PredictionRing() };
  app.decorate('serving', ctx);

  // Only JSON is accepted: without its default text/plain parser Fastify answers other types with 415.
  app.removeContentTypeParser('text/plain');

  app.addHook('onRoute', (route) => {
    if (route.config?.prediction === true) holder.declarePredictionRoute(route.url);
  });
  // Callback style: no promise per request on the hot path.
  app.addHook('onRequest', (request, reply, done) => {
    reply.header(REQUEST_ID_HEADER, request.id);
    done();
  });
  // Fastify answers a too-large body with "Connection: close" before reading it; closing on unread bytes
  // resets the connection under a client still sending, which then never sees the 413 (linger.ts).
  const linger = opts.linger ?? LINGER_DEFAULTS;
  app.addHook('onError', (request, reply, error, done) => {
    if ((error as { code?: string }).code === TOO_LARGE_CODE) {
      reply.removeHeader('connection');
      lingerOnRefusedBody(request.raw, reply.raw, linger);
    }
    done();
  });
  if (app.log.level === 'debug' || app.log.level === 'trace') {
    app.addHook('onResponse', async (request, reply) => {
      request.log.debug({ method: request.method, url: request.url, status: reply.statusCode, ms: reply.elapsedTime }, 'answered');
    });
  }

  app.setErrorHandler((err, request, reply) => answerError(ctx, request, reply, toApiError(err), err));
  app.setNotFoundHandler((request, reply) =>
    answerError(ctx, request, reply, new ApiError('not_found', `no route for ${request.method} ${request.url.slice(0, 200)}`)),
  );

  registerDocs(app, opts.model.manifest);
  app.register(statusRoutes, { ctx });
  app.register(predictRoutes, { ctx });
  app.register(adminRoutes, { ctx, adminToken: opts.adminToken, bundleRoots: opts.bundleRoots ?? defaultBundleRoots(opts.model.dir) });
  app.register(v2Routes, { ctx });
  // Protocol plugins beside the original API register here with `{ ctx }` (see ServePluginOptions). They
  // inherit the error handler above, so their rejections are answered and counted like /predict's; mark
  // prediction routes with `config: { ...PREDICTION_ROUTE }` (their series then exist from the start) and
  // record answers with
  // `ctx.holder.current.series.route(url, trafficSource(request.headers)).served(seconds, values)`.

  return app;
}

/** Answers an error in the common shape and counts it in predict_errors_total. */
function answerError(ctx: ServeContext, request: FastifyRequest, reply: FastifyReply, error: ApiError, cause?: unknown): FastifyReply {
  const route = request.routeOptions.url ?? UNMATCHED_ROUTE;
  const predictionRoute = request.routeOptions.config?.prediction === true;
  ctx.holder.current.series.rejected(route, error.statusCode, error.code, predictionRoute, trafficSource(request.headers));
  if (error.statusCode >= 500) request.log.error({ err: cause, route }, 'request failed');
  else request.log.info({ route, status: error.statusCode, error: error.code }, 'request rejected');
  return reply.code(error.statusCode).send(error.toBody());
}
