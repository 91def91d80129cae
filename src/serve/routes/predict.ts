/**
 * The original API: POST /predict (one row, the data set's named fields) and POST /predict/batch.
 *
 * Bodies are validated in the handler against the model being served rather than by Fastify's route
 * validator: an admin load may change the features, and a compiled route schema could not follow. The route
 * schemas are still declared, for the OpenAPI document (and fast response serialization).
 */
import type { FastifyInstance, FastifySchema } from 'fastify';
import type { FeatureSpec } from '../../model/types.js';
import { PREDICTION_ROUTE, type ServePluginOptions } from '../context.js';
import { ApiError, ERROR_BODY_SCHEMA } from '../errors.js';
import type { ServedModel } from '../holder.js';
import { trafficSource } from '../source.js';
import { batchSchema, rowSchema } from '../validation.js';
import { PREDICTION_SCHEMA, PROBABILITIES_SCHEMA, batchAnswer, classesOf, perRowValues, singleAnswer } from '../class-answers.js';

export const PREDICT_ROUTE = '/predict';
export const BATCH_ROUTE = '/predict/batch';

const MODEL_SCHEMA = {
  type: 'object',
  required: ['name', 'version'],
  properties: { name: { type: 'string' }, version: { type: 'string' } },
} as const;

const ERROR_RESPONSES = { '4xx': ERROR_BODY_SCHEMA, '5xx': ERROR_BODY_SCHEMA };

function predictSchemas(features: readonly FeatureSpec[], batchLimit: number): { single: FastifySchema; batch: FastifySchema } {
  return {
    single: {
      summary: 'Predict one row',
      description: 'The body holds exactly the model features, each a finite number.',
      body: rowSchema(features),
      response: {
        200: {
          type: 'object',
          required: ['prediction', 'model', 'color'],
          properties: {
            prediction: PREDICTION_SCHEMA,
            probabilities: PROBABILITIES_SCHEMA,
            model: MODEL_SCHEMA,
            color: { type: 'string' },
          },
        },
        ...ERROR_RESPONSES,
      },
    },
    batch: {
      summary: 'Predict many rows',
      description: `Up to ${batchLimit} rows; predictions come back in the same order.`,
      body: batchSchema(features, batchLimit),
      response: {
        200: {
          type: 'object',
          required: ['predictions', 'model', 'color'],
          properties: {
            predictions: { type: 'array', items: PREDICTION_SCHEMA },
            probabilities: { type: 'array', items: PROBABILITIES_SCHEMA },
            model: MODEL_SCHEMA,
            color: { type: 'string' },
          },
        },
        ...ERROR_RESPONSES,
      },
    },
  };
}

/**
 * Refuses to answer with a value JSON cannot carry (a model can overflow on finite inputs). A 5xx, not a 4xx:
 * the inputs were valid, the model failed on them, and a release must count that against the model.
 */
export function assertFinite(predictions: Float64Array): void {
  for (let i = 0; i < predictions.length; i++) {
    if (!Number.isFinite(predictions[i])) {
      throw new ApiError('model_error', 'the model produced no finite prediction for these inputs', [
        { field: predictions.length === 1 ? 'body' : `instances[${i}]`, problem: 'gives a non-finite prediction' },
      ]);
    }
  }
}

/** Runs the model and waits only when the runtime is asynchronous. */
export async function predictRows(served: ServedModel, rows: Float64Array, nRows: number): Promise<Float64Array> {
  const out = served.predict(rows, nRows);
  const values = out instanceof Float64Array ? out : await out;
  assertFinite(values);
  return values;
}

/** The route schemas validate nothing at request time (see the header comment). */
const noRouteValidation = () => () => true;

export async function predictRoutes(app: FastifyInstance, { ctx }: ServePluginOptions): Promise<void> {
  const { holder, color } = ctx;
  const schemas = predictSchemas(holder.current.model.manifest.features, holder.batchLimit);

  /**
   * One prediction route: read rows from the body, predict, record, answer; the model is read once. A
   * synchronous runtime (the native one) is answered without a promise: a thrown ApiError still reaches the
   * error handler, as Fastify catches what a handler throws.
   */
  function route(url: string, schema: FastifySchema, read: Reader, answer: (values: Float64Array, served: ServedModel) => object) {
    app.post(url, { schema, validatorCompiler: noRouteValidation, config: { ...PREDICTION_ROUTE } }, (request, reply) => {
      const started = performance.now();
      const served = holder.current;
      const { rows, nRows } = read(served, request.body);
      const finish = (out: Float64Array) => {
        assertFinite(out);
        // A classifier's probabilities are recorded as its class per row; answered in full.
        const values = perRowValues(out, nRows, classesOf(served.model.manifest));
        const source = trafficSource(request.headers);
        served.series.route(url, source).served((performance.now() - started) / 1000, values);
        ctx.predictions.record(request.headers, request.id, source, served.featureNames, rows, values);
        return answer(out, served);
      };
      const out = served.predict(rows, nRows);
      return out instanceof Float64Array ? reply.send(finish(out)) : out.then(finish);
    });
  }

  route(
    PREDICT_ROUTE,
    schemas.single,
    (served, body) => ({ rows: served.input.readRow(body), nRows: 1 }),
    (values, served) => ({ ...singleAnswer(values, classesOf(served.model.manifest)), model: served.answerModel, color }),
  );
  route(
    BATCH_ROUTE,
    schemas.batch,
    (served, body) => served.input.readBatch(body),
    (values, served) => ({ ...batchAnswer(values, classesOf(served.model.manifest)), model: served.answerModel, color }),
  );
}

type Reader = (served: ServedModel, body: unknown) => { rows: Float64Array; nRows: number };
