/**
 * A classifier's answers. Its runtime returns nRows x nClasses probabilities; callers answer with the class
 * (the first most probable, as scikit-learn's predict) and the probabilities by class name, and record the
 * class index per row wherever a regressor's prediction is recorded (latency and prediction-value series, the
 * prediction ring), so the prediction-value histogram shows the predicted classes' frequencies.
 */
import { argmaxRows } from '../model/classifier.js';
import type { ParsedInfer } from './v2-request.js';

/** The served model's classes, or undefined for a regressor. */
export function classesOf(manifest: { task: string; classes?: string[] }): readonly string[] | undefined {
  return manifest.task === 'classification' ? manifest.classes : undefined;
}

/** One value per row: the class index of a classifier's output, a regressor's output as it is. */
export function perRowValues(values: Float64Array, nRows: number, classes: readonly string[] | undefined): Float64Array {
  return classes ? Float64Array.from(argmaxRows(values, nRows, classes.length)) : values;
}

function probabilitiesOf(values: Float64Array, r: number, classes: readonly string[]): Record<string, number> {
  const K = classes.length;
  const out: Record<string, number> = {};
  for (let k = 0; k < K; k++) out[classes[k]] = values[r * K + k];
  return out;
}

/** /predict: {prediction: class, probabilities: {class: p}}; a regressor's {prediction: value}. */
export function singleAnswer(values: Float64Array, classes: readonly string[] | undefined) {
  if (!classes) return { prediction: values[0] };
  const [best] = perRowValues(values, 1, classes);
  return { prediction: classes[best], probabilities: probabilitiesOf(values, 0, classes) };
}

/** /predict/batch: {predictions: [class], probabilities: [{class: p}]}; a regressor's {predictions: [value]}. */
export function batchAnswer(values: Float64Array, classes: readonly string[] | undefined) {
  if (!classes) return { predictions: Array.from(values) };
  const nRows = values.length / classes.length;
  const best = perRowValues(values, nRows, classes);
  return {
    predictions: Array.from(best, (k) => classes[k]),
    probabilities: Array.from({ length: nRows }, (_, r) => probabilitiesOf(values, r, classes)),
  };
}

/** The response schema's answer fields, for either task (an admin load may change the task). */
export const PREDICTION_SCHEMA = { type: ['number', 'string'] } as const;
export const PROBABILITIES_SCHEMA = {
  type: 'object',
  description: 'classifiers only: the probability of each class, by class name',
  additionalProperties: { type: 'number' },
} as const;

/**
 * V2 for a classifier: two outputs, `predict` (BYTES, the class of each row, shape [N]) and `probabilities`
 * (FP64 or the request's FP32, shape [N, nClasses], columns in the order of the model metadata's classes).
 */
export function classInferResponse(
  model: { name: string; version: string },
  req: ParsedInfer,
  values: Float64Array,
  classes: readonly string[],
  outputName: string,
) {
  const best = perRowValues(values, req.nRows, classes);
  const fp32 = req.outputDatatype === 'FP32';
  return {
    model_name: model.name,
    model_version: model.version,
    ...(req.id === undefined ? {} : { id: req.id }),
    outputs: [
      { name: outputName, shape: [req.nRows], datatype: 'BYTES', data: Array.from(best, (k) => classes[k]) },
      {
        name: 'probabilities',
        shape: [req.nRows, classes.length],
        datatype: req.outputDatatype,
        data: Array.from(values, fp32 ? Math.fround : (x: number) => x),
      },
    ],
  };
}
