/**
 * The ONNX inference runtime (onnxruntime-node, CPU). The input schema still comes from the manifest; the
 * model's signature must fit it (see signature.ts) and a one-row probe must yield one finite number, or the
 * bundle is refused at load and never served. Batches run as one [N, nFeatures] float32 tensor.
 */
import * as ort from 'onnxruntime-node';
import type { Manifest, ModelRuntime } from '../types.js';
import { BundleError } from '../bundle-error.js';
import { checkOnnxSignature, type OnnxIo } from './signature.js';

/** The model file's name in bundles bgserve writes. */
export const ONNX_MODEL_FILE = 'model.onnx';

/**
 * One intra-op thread: a tree ensemble on small batches gains nothing from ORT's spinning thread pool, and
 * several instances share this machine's cores.
 */
const SESSION_OPTIONS: ort.InferenceSession.SessionOptions = {
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
  executionMode: 'sequential',
  graphOptimizationLevel: 'all',
};

export interface OnnxRuntime extends ModelRuntime {
  readonly kind: 'onnx';
  readonly io: OnnxIo;
}

/** Scaling applied in JS before the graph, for ONNX models that do not carry their own Scaler. */
function scalerFrom(manifest: Manifest): ((rows: Float64Array, out: Float32Array) => void) | null {
  const pre = manifest.preprocessing;
  if (pre.kind !== 'standard-scaler') return null;
  const n = manifest.features.length;
  const { mean, scale } = pre;
  return (rows, out) => {
    for (let i = 0; i < rows.length; i++) {
      const j = i % n;
      out[i] = (rows[i] - mean[j]) / scale[j];
    }
  };
}

const message = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/**
 * Opens a bundle's ONNX model from its verified bytes; throws BundleError ('model_invalid') naming every
 * mismatch between the model and the manifest. `dir` only names the bundle in messages.
 */
export async function createOnnxRuntime(manifest: Manifest, dir: string, modelBytes: Uint8Array): Promise<OnnxRuntime> {
  const nFeatures = manifest.features.length;
  const where = `bundle ${dir}: ${manifest.modelFile}`;
  const refuse = (why: string, details: string[] = []) => new BundleError('model_invalid', `${where} ${why}`, details);
  const names = manifest.onnx;
  if (names !== undefined && (typeof names !== 'object' || typeof names.input !== 'string' || typeof names.output !== 'string')) {
    throw refuse('cannot be checked: the manifest\'s onnx must be {"input": string, "output": string}');
  }
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(modelBytes, SESSION_OPTIONS);
  } catch (err) {
    throw refuse(`is not a model onnxruntime can load: ${message(err)}`);
  }
  // A classifier answers one probability per class.
  const K = manifest.task === 'classification' ? (manifest.classes?.length ?? 0) : 1;
  const check = checkOnnxSignature(nFeatures, session.inputMetadata, session.outputMetadata, names ?? {}, K);
  if (!check.ok) {
    await session.release();
    throw refuse(`does not fit the manifest: ${check.problems.join('; ')}`, check.problems);
  }
  const { io } = check;
  const scale = scalerFrom(manifest);

  const predict = async (rows: Float64Array, nRows: number): Promise<Float64Array> => {
    const size = nRows * nFeatures;
    if (!Number.isInteger(nRows) || nRows < 0 || rows.length < size) {
      throw new RangeError(`predict: ${rows.length} values cannot hold ${nRows} rows of ${nFeatures} features`);
    }
    const used = rows.length === size ? rows : rows.subarray(0, size);
    const input = new Float32Array(size);
    if (scale) scale(used, input);
    else input.set(used);
    const result = await session.run({ [io.input]: new ort.Tensor('float32', input, [nRows, nFeatures]) }, [io.output]);
    const out = result[io.output];
    const data = out.data;
    if (!(data instanceof Float32Array || data instanceof Float64Array) || data.length !== nRows * K) {
      throw new Error(`${where}: output '${io.output}' gave ${out.type} of shape [${out.dims.join(', ')}] for ${nRows} rows`);
    }
    return Float64Array.from(data);
  };

  // Metadata can leave dimensions symbolic: a one-row probe (the training means) proves the shapes for real.
  const probeRow = Float64Array.from(manifest.features, (f) => f.mean);
  try {
    const probe = await predict(probeRow, 1);
    const bad = probe.find((v) => !Number.isFinite(v));
    if (bad !== undefined) throw new Error(`predicts ${bad} for the training means`);
  } catch (err) {
    await session.release();
    throw refuse(`fails a one-row probe: ${message(err)}`);
  }

  return {
    kind: 'onnx',
    nFeatures,
    ...(K > 1 ? { nOutputs: K } : {}),
    io,
    predict,
    close: () => session.release(),
  };
}
