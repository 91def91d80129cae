/**
 * Open Inference Protocol V2 (KServe / Triton / MLServer REST): the infer request's tensors -> row-major rows
 * in manifest feature order, and predictions -> the infer response. Pure; the plugin in routes/v2.ts does the I/O.
 *
 * Accepted request forms (https://github.com/kserve/open-inference-protocol, REST "Inference"):
 * - one tensor of shape [N, F] (F = number of features, columns in manifest order), any name;
 * - one tensor per feature, named exactly as the manifest's features, each of shape [N] or [N, 1].
 * `data` is row-major, flat or nested to match `shape`. Datatypes: FP32, FP64 and the integer types
 * (INT8..INT64, UINT8..UINT64: integers in range only); BOOL, BYTES and FP16 are refused.
 * The output is one tensor "predict": shape [N, 1] for the [N, F] form, else the shape of the feature tensors;
 * datatype FP32 when every input tensor is FP32 (values rounded to float32), otherwise FP64.
 */

export const V2_OUTPUT_NAME = 'predict';

export type V2Datatype = 'FP32' | 'FP64';

export interface V2Tensor {
  name: string;
  shape: number[];
  datatype: string;
  data: number[];
}

export interface ParsedInfer {
  id?: string;
  rows: Float64Array;
  nRows: number;
  outputShape: number[];
  outputDatatype: V2Datatype;
}

export class V2RequestError extends Error {
  override name = 'V2RequestError';
}

/** Integer ranges per V2 datatype; 64-bit types are limited to what a JSON number holds exactly. */
const INT_RANGES: Record<string, [number, number]> = {
  INT8: [-128, 127],
  INT16: [-32768, 32767],
  INT32: [-2147483648, 2147483647],
  INT64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  UINT8: [0, 255],
  UINT16: [0, 65535],
  UINT32: [0, 4294967295],
  UINT64: [0, Number.MAX_SAFE_INTEGER],
};
const FP32_MAX = 3.4028234663852886e38;
export const V2_DATATYPES = ['FP32', 'FP64', ...Object.keys(INT_RANGES)] as const;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Flattens `data` (flat, or nested exactly as `shape`) row-major; throws on a structure that does not fit. */
function flatten(where: string, data: unknown, shape: number[]): unknown[] {
  if (!Array.isArray(data)) throw new V2RequestError(`${where}: data must be an array`);
  const size = shape.reduce((a, b) => a * b, 1);
  if (data.every((v) => !Array.isArray(v))) {
    if (data.length !== size) {
      throw new V2RequestError(`${where}: data has ${data.length} values, shape [${shape.join(', ')}] needs ${size}`);
    }
    return data;
  }
  const out: unknown[] = [];
  const walk = (node: unknown, depth: number, at: string): void => {
    if (depth === shape.length) {
      if (Array.isArray(node)) throw new V2RequestError(`${where}: data${at} is nested deeper than shape [${shape.join(', ')}]`);
      out.push(node);
      return;
    }
    if (!Array.isArray(node) || node.length !== shape[depth]) {
      throw new V2RequestError(`${where}: data${at} must be an array of ${shape[depth]} (shape [${shape.join(', ')}])`);
    }
    node.forEach((child, i) => {
      walk(child, depth + 1, `${at}[${i}]`);
    });
  };
  walk(data, 0, '');
  return out;
}

function checkValue(where: string, datatype: string, v: unknown, index: number): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    throw new V2RequestError(`${where}: data[${index}] must be a finite number, got ${JSON.stringify(v) ?? String(v)}`);
  }
  const range = INT_RANGES[datatype];
  if (range && (!Number.isInteger(v) || v < range[0] || v > range[1])) {
    throw new V2RequestError(`${where}: data[${index}] = ${v} is not a ${datatype}`);
  }
  if (datatype === 'FP32' && Math.abs(v) > FP32_MAX) throw new V2RequestError(`${where}: data[${index}] = ${v} overflows FP32`);
  return v;
}

interface CheckedTensor {
  name: string;
  shape: number[];
  datatype: string;
  values: number[];
}

function checkTensor(t: unknown, i: number): CheckedTensor {
  const at = `inputs[${i}]`;
  if (!isObject(t)) throw new V2RequestError(`${at} must be an object {name, shape, datatype, data}`);
  const { name, shape, datatype, data } = t;
  if (typeof name !== 'string' || name === '') throw new V2RequestError(`${at}.name must be a non-empty string`);
  const where = `input '${name}'`;
  if (!Array.isArray(shape) || shape.length === 0 || !shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) {
    throw new V2RequestError(`${where}: shape must be a non-empty array of non-negative integers`);
  }
  if (typeof datatype !== 'string' || !(V2_DATATYPES as readonly string[]).includes(datatype)) {
    throw new V2RequestError(`${where}: datatype ${JSON.stringify(datatype)} is not supported (use one of ${V2_DATATYPES.join(', ')})`);
  }
  if (data === undefined) throw new V2RequestError(`${where}: data is required (binary tensor data is not supported)`);
  const flat = flatten(where, data, shape as number[]);
  return { name, shape: shape as number[], datatype, values: flat.map((v, k) => checkValue(where, datatype, v, k)) };
}

/** Turns an infer request body into rows; throws V2RequestError with a message naming the offending part. */
export function parseInferRequest(body: unknown, features: readonly string[]): ParsedInfer {
  if (!isObject(body)) throw new V2RequestError('the request body must be a JSON object with "inputs"');
  const { id, inputs, outputs } = body;
  if (id !== undefined && typeof id !== 'string') throw new V2RequestError('id must be a string');
  if (!Array.isArray(inputs) || inputs.length === 0) throw new V2RequestError('inputs must be a non-empty array of tensors');
  if (outputs !== undefined) {
    if (!Array.isArray(outputs)) throw new V2RequestError('outputs must be an array');
    for (const o of outputs) {
      if (!isObject(o) || o.name !== V2_OUTPUT_NAME) {
        throw new V2RequestError(
          `unknown output ${JSON.stringify(isObject(o) ? o.name : o)}: this model has one output, "${V2_OUTPUT_NAME}"`,
        );
      }
    }
  }
  const tensors = inputs.map(checkTensor);
  const F = features.length;
  const outputDatatype: V2Datatype = tensors.every((t) => t.datatype === 'FP32') ? 'FP32' : 'FP64';
  let rows: Float64Array;
  let nRows: number;
  let outputShape: number[];

  const byFeature = tensors.some((t) => features.includes(t.name));
  if (!byFeature) {
    if (tensors.length !== 1) {
      throw new V2RequestError(
        `send one [N, ${F}] tensor or one tensor per feature (${features.join(', ')}); got ${tensors.length} tensors named ${tensors.map((t) => `'${t.name}'`).join(', ')}`,
      );
    }
    const [t] = tensors;
    if (t.shape.length !== 2 || t.shape[1] !== F) {
      throw new V2RequestError(`input '${t.name}': shape [${t.shape.join(', ')}] must be [N, ${F}] (columns: ${features.join(', ')})`);
    }
    nRows = t.shape[0];
    rows = Float64Array.from(t.values);
    outputShape = [nRows, 1];
  } else {
    const seen = new Map<string, CheckedTensor>();
    for (const t of tensors) {
      if (!features.includes(t.name)) throw new V2RequestError(`input '${t.name}' is not a feature of this model (${features.join(', ')})`);
      if (seen.has(t.name)) throw new V2RequestError(`input '${t.name}' is given twice`);
      if (!(t.shape.length === 1 || (t.shape.length === 2 && t.shape[1] === 1))) {
        throw new V2RequestError(`input '${t.name}': shape [${t.shape.join(', ')}] must be [N] or [N, 1] for a per-feature tensor`);
      }
      seen.set(t.name, t);
    }
    const missing = features.filter((f) => !seen.has(f));
    if (missing.length > 0) throw new V2RequestError(`missing feature tensors: ${missing.join(', ')}`);
    const first = tensors[0];
    nRows = first.shape[0];
    outputShape = first.shape;
    for (const t of tensors) {
      if (t.shape.length !== first.shape.length || t.shape[0] !== nRows) {
        throw new V2RequestError(
          `input '${t.name}' has shape [${t.shape.join(', ')}], input '${first.name}' has [${first.shape.join(', ')}]: all feature tensors must have the same shape`,
        );
      }
    }
    rows = new Float64Array(nRows * F);
    features.forEach((f, j) => {
      const values = seen.get(f)!.values;
      for (let r = 0; r < nRows; r++) rows[r * F + j] = values[r];
    });
    outputShape = [...outputShape];
  }
  if (nRows === 0) throw new V2RequestError('the request has no rows (N = 0)');
  return { ...(id === undefined ? {} : { id }), rows, nRows, outputShape, outputDatatype };
}

export interface InferResponse {
  model_name: string;
  model_version: string;
  id?: string;
  outputs: [V2Tensor];
}

export function inferResponse(model: { name: string; version: string }, req: ParsedInfer, predictions: Float64Array): InferResponse {
  const data = Array.from(predictions, req.outputDatatype === 'FP32' ? Math.fround : (x: number) => x);
  return {
    model_name: model.name,
    model_version: model.version,
    ...(req.id === undefined ? {} : { id: req.id }),
    outputs: [{ name: V2_OUTPUT_NAME, shape: req.outputShape, datatype: req.outputDatatype, data }],
  };
}
