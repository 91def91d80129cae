/**
 * Open Inference Protocol V2 (the REST API of KServe, Triton and MLServer) beside the original API:
 *   GET  /v2                                   server metadata
 *   GET  /v2/health/live | /v2/health/ready    200, or 503 while a model loads or the instance drains
 *   GET  /v2/models/{name}[/versions/{v}]      model metadata
 *   GET  /v2/models/{name}[/versions/{v}]/ready
 *   POST /v2/models/{name}[/versions/{v}]/infer
 * Request forms and datatypes: see v2-request.ts. Errors are the protocol's {"error": "<message>"}: 400 for a
 * bad request, 404 for an unknown model or version, 413/415 as for /predict, 503 when not ready. Rejections are
 * counted in predict_errors_total (and, on the infer routes, predict_requests_total) exactly as /predict's are;
 * answered inferences feed the same latency and prediction-value series, labelled by route.
 */
import { PACKAGE_VERSION } from '../../config/package-version.js';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { PREDICTION_ROUTE, type ServePluginOptions, type ServeContext } from '../context.js';
import { ApiError, toApiError } from '../errors.js';
import type { ServedModel } from '../holder.js';
import { predictRows } from './predict.js';
import { trafficSource } from '../source.js';
import { inferResponse, parseInferRequest, V2_OUTPUT_NAME, V2RequestError } from '../v2-request.js';
import { classesOf, classInferResponse, perRowValues } from '../class-answers.js';

export const V2_INFER_ROUTES = ['/v2/models/:name/infer', '/v2/models/:name/versions/:version/infer'] as const;
const SERVER_NAME = 'bgserve';
/** src/serve and dist/serve are both two levels below the package root. */
const SERVER_VERSION = PACKAGE_VERSION;

/** The protocol's answer for each error: 400 for the caller's bad request, other statuses kept. */
const V2_STATUS: Partial<Record<string, number>> = { invalid_input: 400, invalid_json: 400 };

class V2Error extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

function v2Error(err: unknown): V2Error {
  if (err instanceof V2Error) return err;
  if (err instanceof V2RequestError) return new V2Error(400, 'invalid_input', err.message);
  const api = toApiError(err);
  const details = api.details?.map((d) => `${d.field} ${d.problem}`).join('; ');
  return new V2Error(V2_STATUS[api.code] ?? api.statusCode, api.code, details ? `${api.message}: ${details}` : api.message);
}

interface ModelParams {
  name: string;
  version?: string;
}

/** The served model if it is the one the path names, else a 404 naming what this instance serves. */
function resolveModel(ctx: ServeContext, params: ModelParams): ServedModel {
  const served = ctx.holder.current;
  const { name, version } = served.answerModel;
  if (params.name !== name) throw new V2Error(404, 'not_found', `unknown model '${params.name}': this instance serves '${name}'`);
  if (params.version !== undefined && params.version !== version) {
    throw new V2Error(
      404,
      'not_found',
      `model '${name}' has no version '${params.version}' here: this instance serves version '${version}'`,
    );
  }
  return served;
}

function modelMetadata(served: ServedModel) {
  const { manifest } = served.model;
  const width = served.featureNames.length;
  return {
    name: manifest.name,
    versions: [manifest.version],
    platform: manifest.format === 'onnx' ? 'onnxruntime_onnx' : 'bgserve_native_forest',
    inputs: [{ name: 'input', datatype: 'FP64', shape: [-1, width] }],
    outputs: classesOf(manifest)
      ? [
          { name: V2_OUTPUT_NAME, datatype: 'BYTES', shape: [-1] },
          { name: 'probabilities', datatype: 'FP64', shape: [-1, manifest.classes!.length] },
        ]
      : [{ name: V2_OUTPUT_NAME, datatype: 'FP64', shape: [-1, 1] }],
    parameters: {
      features: served.featureNames,
      ...(classesOf(manifest) ? { classes: manifest.classes } : {}),
      note: `send one [N, ${width}] tensor (columns in the order of "features") or one tensor per feature, named as the feature, of shape [N] or [N, 1]; FP32, FP64 or integer datatypes`,
    },
  };
}

export async function v2Routes(app: FastifyInstance, { ctx }: ServePluginOptions): Promise<void> {
  const { holder } = ctx;

  // Same counting as the app's handler for /predict, answered in the protocol's error shape.
  app.setErrorHandler((err, request: FastifyRequest, reply: FastifyReply) => {
    const e = v2Error(err);
    const route = request.routeOptions.url ?? request.url;
    holder.current.series.rejected(
      route,
      e.statusCode,
      e.code,
      request.routeOptions.config?.prediction === true,
      trafficSource(request.headers),
    );
    if (e.statusCode >= 500) request.log.error({ err, route }, 'request failed');
    return reply.code(e.statusCode).send({ error: e.message });
  });

  const notReady = () => new V2Error(503, 'not_ready', `not ready: the instance is ${holder.state}`);

  app.get('/v2', { schema: { summary: 'V2 server metadata' } }, async () => ({
    name: SERVER_NAME,
    version: SERVER_VERSION,
    extensions: [],
  }));
  app.get('/v2/health/live', { schema: { summary: 'V2 liveness' } }, async () => ({ live: true }));
  app.get('/v2/health/ready', { schema: { summary: 'V2 readiness: 503 while a model loads or the instance drains' } }, async () => {
    if (!holder.ready) throw notReady();
    return { ready: true };
  });

  for (const prefix of ['/v2/models/:name', '/v2/models/:name/versions/:version']) {
    app.get(prefix, { schema: { summary: 'V2 model metadata' } }, async (request) =>
      modelMetadata(resolveModel(ctx, request.params as ModelParams)),
    );
    app.get(`${prefix}/ready`, { schema: { summary: 'V2 model readiness' } }, async (request) => {
      const served = resolveModel(ctx, request.params as ModelParams);
      if (!holder.ready) throw notReady();
      return { name: served.answerModel.name, ready: true };
    });
    const route = `${prefix}/infer`;
    app.post(route, { schema: { summary: 'V2 inference' }, config: { ...PREDICTION_ROUTE } }, async (request) => {
      const started = performance.now();
      const served = resolveModel(ctx, request.params as ModelParams);
      const parsed = parseInferRequest(request.body, served.featureNames);
      // The /predict/batch limit, answered as there (413).
      if (parsed.nRows > holder.batchLimit) {
        throw new ApiError('batch_too_large', `a request holds at most ${holder.batchLimit} rows; this one has ${parsed.nRows}`);
      }
      const out = await predictRows(served, parsed.rows, parsed.nRows);
      const classes = classesOf(served.model.manifest);
      const values = perRowValues(out, parsed.nRows, classes);
      const source = trafficSource(request.headers);
      served.series.route(route, source).served((performance.now() - started) / 1000, values);
      ctx.predictions.record(request.headers, request.id, source, served.featureNames, parsed.rows, values);
      if (classes) return classInferResponse(served.answerModel, parsed, out, classes, V2_OUTPUT_NAME);
      return inferResponse(served.answerModel, parsed, values);
    });
  }
}
