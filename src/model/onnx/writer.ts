/**
 * Writes a FlatForest as an ONNX model shaped like skl2onnx's output for
 * Pipeline(StandardScaler, RandomForestRegressor): ai.onnx.ml Scaler -> TreeEnsembleRegressor.
 *
 * Why these choices:
 * - ir_version 8 and opsets {'' : 17, 'ai.onnx.ml': 3}: the newest that Debian's onnx 1.12 checker knows, and
 *   what skl2onnx writes for such a pipeline.
 * - thresholds and leaf values are float attributes (float32): ONNX's TreeEnsembleRegressor compares float32
 *   inputs with float32 thresholds. Math.fround rounds to nearest, which is monotone, so a float32 decision can
 *   differ from the float64 one only when the scaled input and the threshold round to the same float32.
 */
import onnxProto from 'onnx-proto';
import type { FlatForest } from '../forest.js';
import { LEAF, forestProblem } from '../forest.js';

const { onnx } = onnxProto;
type IAttributeProto = onnxProto.onnx.IAttributeProto;
type IValueInfoProto = onnxProto.onnx.IValueInfoProto;

export const ONNX_IR_VERSION = 8;
export const ONNX_DEFAULT_OPSET = 17;
export const ONNX_ML_OPSET = 3;
/** skl2onnx's names for a regressor converted with initial_types=[('float_input', FloatTensorType([None, n]))]. */
export const SKL2ONNX_INPUT = 'float_input';
export const SKL2ONNX_OUTPUT = 'variable';

export type OnnxElemType = 'float32' | 'float64';

export interface OnnxForestOptions {
  /** offset (mean) and scale (1/std) of the ai.onnx.ml Scaler; null leaves the Scaler out. */
  scaler: { offset: ArrayLike<number>; scale: ArrayLike<number> } | null;
  inputName?: string;
  outputName?: string;
  /** Declared input width; the forest's nFeatures unless a test wants a deliberately wrong model. */
  inputWidth?: number;
  /** Declared input element type; float32 as skl2onnx's FloatTensorType. */
  inputType?: OnnxElemType;
  /** Number of regression targets the model declares (n_targets); 1 for this forest. */
  nTargets?: number;
  producerVersion?: string;
  docString?: string;
  /** Free-form key/value pairs stored in ModelProto.metadata_props. */
  metadata?: Record<string, string>;
}

const ELEM: Record<OnnxElemType, number> = {
  float32: onnx.TensorProto.DataType.FLOAT,
  float64: onnx.TensorProto.DataType.DOUBLE,
};

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

function attrInt(name: string, i: number): IAttributeProto {
  return { name, type: onnx.AttributeProto.AttributeType.INT, i };
}
function attrInts(name: string, ints: ArrayLike<number>): IAttributeProto {
  return { name, type: onnx.AttributeProto.AttributeType.INTS, ints: Array.from(ints) };
}
function attrFloats(name: string, floats: ArrayLike<number>): IAttributeProto {
  return { name, type: onnx.AttributeProto.AttributeType.FLOATS, floats: Array.from(floats, Math.fround) };
}
function attrString(name: string, s: string): IAttributeProto {
  return { name, type: onnx.AttributeProto.AttributeType.STRING, s: utf8(s) };
}
function attrStrings(name: string, strings: string[]): IAttributeProto {
  return { name, type: onnx.AttributeProto.AttributeType.STRINGS, strings: strings.map(utf8) };
}

/** A tensor value whose first dimension is the batch (symbolic, like skl2onnx's None). */
function tensorInfo(name: string, elem: OnnxElemType, width: number): IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: ELEM[elem],
        shape: { dim: [{ dimParam: 'N' }, { dimValue: width }] },
      },
    },
  };
}

/** TreeEnsembleRegressor attributes with tree-local node ids, as skl2onnx lays them out. */
export function treeEnsembleAttributes(forest: FlatForest, nTargets = 1): IAttributeProto[] {
  const treeIds: number[] = [];
  const nodeIds: number[] = [];
  const featureIds: number[] = [];
  const values: number[] = [];
  const modes: string[] = [];
  const trueIds: number[] = [];
  const falseIds: number[] = [];
  const targetTreeIds: number[] = [];
  const targetNodeIds: number[] = [];
  const targetIds: number[] = [];
  const targetWeights: number[] = [];
  for (let t = 0; t < forest.nTrees; t++) {
    const root = forest.treeOffsets[t];
    for (let i = root; i < forest.treeOffsets[t + 1]; i++) {
      const leaf = forest.feature[i] === LEAF;
      treeIds.push(t);
      nodeIds.push(i - root);
      featureIds.push(leaf ? 0 : forest.feature[i]);
      values.push(leaf ? 0 : forest.threshold[i]);
      modes.push(leaf ? 'LEAF' : 'BRANCH_LEQ');
      trueIds.push(leaf ? 0 : forest.left[i] - root);
      falseIds.push(leaf ? 0 : forest.right[i] - root);
      if (leaf) {
        // Every target gets the leaf's value: a model with nTargets > 1 exists only to test refusals.
        for (let k = 0; k < nTargets; k++) {
          targetTreeIds.push(t);
          targetNodeIds.push(i - root);
          targetIds.push(k);
          targetWeights.push(forest.value[i]);
        }
      }
    }
  }
  const n = treeIds.length;
  return [
    attrString('aggregate_function', 'AVERAGE'),
    attrInt('n_targets', nTargets),
    attrFloats('nodes_hitrates', new Array<number>(n).fill(1)),
    attrInts('nodes_missing_value_tracks_true', new Array<number>(n).fill(0)),
    attrStrings('nodes_modes', modes),
    attrInts('nodes_featureids', featureIds),
    attrInts('nodes_falsenodeids', falseIds),
    attrInts('nodes_nodeids', nodeIds),
    attrInts('nodes_treeids', treeIds),
    attrInts('nodes_truenodeids', trueIds),
    attrFloats('nodes_values', values),
    attrString('post_transform', 'NONE'),
    attrInts('target_ids', targetIds),
    attrInts('target_nodeids', targetNodeIds),
    attrInts('target_treeids', targetTreeIds),
    attrFloats('target_weights', targetWeights),
  ];
}

/** Encodes the forest (and its scaler) as ONNX ModelProto bytes. */
export function forestToOnnx(forest: FlatForest, options: OnnxForestOptions): Uint8Array {
  const problem = forestProblem(forest);
  if (problem) throw new Error(`cannot export an invalid forest: ${problem}`);
  const inputName = options.inputName ?? SKL2ONNX_INPUT;
  const outputName = options.outputName ?? SKL2ONNX_OUTPUT;
  const width = options.inputWidth ?? forest.nFeatures;
  const nTargets = options.nTargets ?? 1;
  const nodes: onnxProto.onnx.INodeProto[] = [];
  let treeInput = inputName;
  if (options.scaler) {
    const { offset, scale } = options.scaler;
    if (offset.length !== forest.nFeatures || scale.length !== forest.nFeatures) {
      throw new Error(`scaler has ${offset.length} offsets and ${scale.length} scales, forest has ${forest.nFeatures} features`);
    }
    treeInput = 'scaled_input';
    nodes.push({
      opType: 'Scaler',
      domain: 'ai.onnx.ml',
      name: 'Scaler',
      input: [inputName],
      output: [treeInput],
      attribute: [attrFloats('offset', offset), attrFloats('scale', scale)],
    });
  }
  nodes.push({
    opType: 'TreeEnsembleRegressor',
    domain: 'ai.onnx.ml',
    name: 'TreeEnsembleRegressor',
    input: [treeInput],
    output: [outputName],
    attribute: treeEnsembleAttributes(forest, nTargets),
  });
  const model = onnx.ModelProto.create({
    irVersion: ONNX_IR_VERSION,
    opsetImport: [
      { domain: '', version: ONNX_DEFAULT_OPSET },
      { domain: 'ai.onnx.ml', version: ONNX_ML_OPSET },
    ],
    producerName: 'bgserve',
    producerVersion: options.producerVersion ?? '',
    domain: 'bgserve',
    modelVersion: 1,
    docString: options.docString ?? '',
    graph: {
      name: 'bgserve_forest',
      node: nodes,
      input: [tensorInfo(inputName, options.inputType ?? 'float32', width)],
      // TreeEnsembleRegressor always yields float32.
      output: [tensorInfo(outputName, 'float32', nTargets)],
    },
    metadataProps: Object.entries(options.metadata ?? {}).map(([key, value]) => ({ key, value })),
  });
  return onnx.ModelProto.encode(model).finish();
}
