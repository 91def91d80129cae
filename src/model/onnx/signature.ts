/**
 * Does an ONNX model's signature fit a bundle's manifest? Pure: takes the metadata onnxruntime reports and
 * returns the chosen input/output names or every mismatch, each naming the value and what was expected.
 *
 * The contract bgserve serves by: one float32 input of shape [batch, nFeatures] (skl2onnx's
 * FloatTensorType([None, n])) and one float output of shape [batch, 1] or [batch]; for a classifier of K
 * classes, the named output is [batch, K] (its probabilities).
 */
import type { InferenceSession } from 'onnxruntime-node';

export type ValueMetadata = InferenceSession.ValueMetadata;

export interface OnnxIo {
  input: string;
  output: string;
}

export type SignatureCheck = { ok: true; io: OnnxIo } | { ok: false; problems: string[] };

const OUTPUT_TYPES = new Set(['float32', 'float64']);

const isBatchDim = (d: number | string | undefined): boolean => typeof d === 'string' || d === undefined || d < 1;
const fmtShape = (shape: ReadonlyArray<number | string>): string =>
  `[${shape.map((d) => (typeof d === 'string' || d < 0 ? 'None' : String(d))).join(', ')}]`;

function pick(kind: 'input' | 'output', values: readonly ValueMetadata[], wanted: string | undefined): ValueMetadata | string {
  const names = values.map((v) => `'${v.name}'`).join(', ');
  if (wanted !== undefined) {
    return values.find((v) => v.name === wanted) ?? `the manifest names ${kind} '${wanted}', the model's ${kind}s are ${names || 'none'}`;
  }
  if (values.length !== 1) {
    return `the model has ${values.length} ${kind}s (${names || 'none'}); name one in the manifest's onnx.${kind}`;
  }
  return values[0];
}

export function checkOnnxSignature(
  nFeatures: number,
  inputs: readonly ValueMetadata[],
  outputs: readonly ValueMetadata[],
  wanted: Partial<OnnxIo> = {},
  nOutputs = 1,
): SignatureCheck {
  const problems: string[] = [];
  const input = pick('input', inputs, wanted.input);
  const output = pick('output', outputs, wanted.output);
  if (typeof input === 'string') problems.push(input);
  else {
    // bgserve feeds exactly one tensor: other inputs would be left unfed.
    if (inputs.length > 1) problems.push(`the model has ${inputs.length} inputs; bgserve feeds one [N, ${nFeatures}] tensor`);
    if (!input.isTensor) problems.push(`input '${input.name}' is not a tensor`);
    else {
      if (input.type !== 'float32') problems.push(`input '${input.name}' has element type ${input.type}, expected float32`);
      const shape = input.shape;
      if (shape.length !== 2) problems.push(`input '${input.name}' has shape ${fmtShape(shape)}, expected [None, ${nFeatures}]`);
      else {
        if (!isBatchDim(shape[0])) {
          problems.push(`input '${input.name}' has a fixed batch size ${shape[0]}, expected a dynamic one (None)`);
        }
        if (typeof shape[1] === 'number' && shape[1] > 0 && shape[1] !== nFeatures) {
          problems.push(`input '${input.name}' has ${shape[1]} columns, manifest has ${nFeatures} features`);
        }
      }
    }
  }
  if (typeof output === 'string') problems.push(output);
  else if (!output.isTensor) problems.push(`output '${output.name}' is not a tensor`);
  else {
    if (!OUTPUT_TYPES.has(output.type)) {
      problems.push(`output '${output.name}' has element type ${output.type}, expected float32 or float64`);
    }
    const shape = output.shape;
    const fits =
      nOutputs > 1
        ? shape.length === 2 && isBatchDim(shape[0]) && (shape[1] === nOutputs || typeof shape[1] === 'string')
        : (shape.length === 1 && isBatchDim(shape[0])) ||
          (shape.length === 2 && isBatchDim(shape[0]) && (shape[1] === 1 || typeof shape[1] === 'string'));
    const expected = nOutputs > 1 ? `[None, ${nOutputs}] (one probability per class)` : '[None, 1] or [None]';
    if (!fits) problems.push(`output '${output.name}' has shape ${fmtShape(shape)}, expected ${expected}`);
  }
  if (problems.length > 0 || typeof input === 'string' || typeof output === 'string') {
    return { ok: false, problems };
  }
  return { ok: true, io: { input: input.name, output: output.name } };
}
