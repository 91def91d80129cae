/**
 * Writes a FlatForest as an ONNX model shaped like skl2onnx's output for
 * Pipeline(StandardScaler, RandomForestRegressor): ai.onnx.ml Scaler -> TreeEnsembleRegressor.
 *
 * Why these choices:
 * - ir_version 8 and opsets {'' : 17, 'ai.onnx.ml': 3}: the newest that Debian's onnx 1.12 checker knows, and
 *   what skl2onnx writes for such a pipeline.
 * - thresholds and leaf values are float attributes (float32): ONNX's TreeEnsembleRegressor compares float32
 *   inputs with float32 thresholds, after a Scaler that computes in float32 too, while the native runtime compares
 *   float64. An input reaches the graph as a float32, so every raw value in one float32 "cell" (the doubles that
 *   round to one float32) takes one branch. A threshold lying within a cell (a forest's thresholds may sit on,
 *   or one float64 ulp beside, a training value) must send that cell where the native model sends the value a
 *   user would type there: the shortest decimal in the cell (0.079, not 0.0790000036). float32Thresholds picks,
 *   per node, the last cell the native model sends left and uses that cell's Scaler output as the threshold; the
 *   Scaler's float32 steps are monotone, so every cell below goes left and every cell above goes right.
 */
import onnxProto from 'onnx-proto';
import type { FlatForest } from '../forest.js';
import { LEAF, forestProblem, nodeCount, outputsOf } from '../forest.js';

const { onnx } = onnxProto;
type IAttributeProto = onnxProto.onnx.IAttributeProto;
type IValueInfoProto = onnxProto.onnx.IValueInfoProto;

export const ONNX_IR_VERSION = 8;
export const ONNX_DEFAULT_OPSET = 17;
export const ONNX_ML_OPSET = 3;
/** skl2onnx's names for a regressor converted with initial_types=[('float_input', FloatTensorType([None, n]))]. */
export const SKL2ONNX_INPUT = 'float_input';
export const SKL2ONNX_OUTPUT = 'variable';
/**
 * skl2onnx's outputs for a classifier converted with options={'zipmap': False}: the label tensor and a plain
 * [N, classes] probability tensor (instead of ZipMap's sequence of maps).
 */
export const SKL2ONNX_LABEL_OUTPUT = 'label';
export const SKL2ONNX_PROBABILITIES_OUTPUT = 'probabilities';

export type OnnxElemType = 'float32' | 'float64';

export interface OnnxForestOptions {
  /**
   * The standard scaling the forest's thresholds are expressed after (float64 mean and std, as the native runtime
   * divides by std); written as an ai.onnx.ml Scaler with offset = mean and scale = 1 / std. null: no Scaler, the
   * graph takes already scaled (or unscaled) values.
   */
  scaler: { mean: ArrayLike<number>; std: ArrayLike<number> } | null;
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
  /**
   * A classifier's class labels (the forest has one output per class): written as a TreeEnsembleClassifier
   * with outputs `label` (string [N]) and `probabilities` (float [N, classes]), outputName ignored.
   */
  classes?: readonly string[];
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

/** A classifier's label output: one string per row. */
function labelInfo(name: string): IValueInfoProto {
  return { name, type: { tensorType: { elemType: onnx.TensorProto.DataType.STRING, shape: { dim: [{ dimParam: 'N' }] } } } };
}

/** Scaler attributes as float32: offset = mean, scale = 1 / std. */
function scalerAttributes(scaler: NonNullable<OnnxForestOptions['scaler']>): { offset: Float32Array; scale: Float32Array } {
  return { offset: Float32Array.from(scaler.mean), scale: Float32Array.from(scaler.std, (s) => 1 / s) };
}

const bits = new Int32Array(1);
const asFloat = new Float32Array(bits.buffer);

/** The float32 next to x (a float32) towards +Infinity (up) or -Infinity (down). */
export function nextFloat32(x: number, up: boolean): number {
  if (x === 0) return up ? 2 ** -149 : -(2 ** -149);
  asFloat[0] = x;
  bits[0] += x > 0 === up ? 1 : -1;
  return asFloat[0];
}

/** The shortest decimal that rounds to the float32 x, and its number of significant digits. */
function shortestDecimal(x: number): { value: number; digits: number } {
  for (let p = 1; p < 9; p++) {
    const value = Number(x.toPrecision(p));
    if (Math.fround(value) === x) return { value, digits: p };
  }
  return { value: Number(x.toPrecision(9)), digits: 9 };
}

/** The shortest decimal that rounds to the float32 x: the value a person types for that cell. */
export function shortestDecimalOfFloat32(x: number): number {
  return shortestDecimal(x).value;
}

/** Bound on the float32 steps one threshold may take; real thresholds settle within a few. */
const MAX_STEPS = 256;

/**
 * Float32 thresholds, one per node (0 for leaves), that split the Scaler's float32 outputs as the float64 forest
 * splits typed values (see the header). The Scaler can map several neighbouring input cells onto one output
 * (x - offset loses bits when |offset| > |x|): such a group takes the branch of its most typable member, the
 * cell with the shortest decimal. Without a scaler the graph's inputs are scaled values rounded to float32,
 * and nearest rounding of the threshold is the best float32 can do.
 */
export function float32Thresholds(forest: FlatForest, scaler: OnnxForestOptions['scaler']): Float32Array {
  const out = new Float32Array(forest.threshold.length);
  if (scaler === null) {
    out.set(forest.threshold);
    return out;
  }
  const { offset, scale } = scalerAttributes(scaler);
  const f32 = Math.fround;
  for (let i = 0; i < out.length; i++) {
    const j = forest.feature[i];
    if (j === LEAF) continue;
    const t = forest.threshold[i];
    const start = f32(t * scaler.std[j] + scaler.mean[j]);
    if (!Number.isFinite(start)) {
      out[i] = t;
      continue;
    }
    const scaled = (cell: number) => f32(f32(cell - offset[j]) * scale[j]);
    /** The input cells of one Scaler output, walking from `cell`; the branch of their most typable member. */
    const group = (cell: number): { y: number; lo: number; hi: number; left: boolean } => {
      const y = scaled(cell);
      let lo = cell;
      let hi = cell;
      for (let k = 0; k < MAX_STEPS && scaled(nextFloat32(lo, false)) === y; k++) lo = nextFloat32(lo, false);
      for (let k = 0; k < MAX_STEPS && scaled(nextFloat32(hi, true)) === y; k++) hi = nextFloat32(hi, true);
      let best = shortestDecimal(lo);
      for (let c = lo; c < hi; ) {
        c = nextFloat32(c, true);
        const d = shortestDecimal(c);
        if (d.digits < best.digits) best = d;
      }
      return { y, lo, hi, left: (best.value - scaler.mean[j]) / scaler.std[j] <= t };
    };
    let g = group(start);
    for (let k = 0; k < MAX_STEPS; k++) {
      const above = group(nextFloat32(g.hi, true));
      if (!above.left) break;
      g = above;
    }
    for (let k = 0; k < MAX_STEPS && !g.left; k++) g = group(nextFloat32(g.lo, false));
    out[i] = g.y;
  }
  return out;
}

/** TreeEnsembleRegressor attributes with tree-local node ids, as skl2onnx lays them out. */
export function treeEnsembleAttributes(forest: FlatForest, thresholds: Float32Array, nTargets = 1): IAttributeProto[] {
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
      values.push(leaf ? 0 : thresholds[i]);
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

/**
 * TreeEnsembleClassifier attributes as skl2onnx lays out a RandomForestClassifier: the node attributes of the
 * regressor, and per leaf one weight per class, its share divided by the number of trees (the operator sums
 * the trees' weights; with no post_transform the sums are the mean probabilities). Every class gets a weight,
 * so onnxruntime does not take the binary shortcut (one weight, its complement inferred).
 */
export function treeEnsembleClassifierAttributes(
  forest: FlatForest,
  thresholds: Float32Array,
  classes: readonly string[],
): IAttributeProto[] {
  const K = classes.length;
  if (outputsOf(forest) !== K) throw new Error(`the forest has ${outputsOf(forest)} outputs for ${K} classes`);
  const nodeAttrs = treeEnsembleAttributes({ ...forest, value: new Float64Array(nodeCount(forest)), nOutputs: 1 }, thresholds).filter((a) =>
    a.name?.startsWith('nodes_'),
  );
  const classTreeIds: number[] = [];
  const classNodeIds: number[] = [];
  const classIds: number[] = [];
  const classWeights: number[] = [];
  for (let t = 0; t < forest.nTrees; t++) {
    const root = forest.treeOffsets[t];
    for (let i = root; i < forest.treeOffsets[t + 1]; i++) {
      if (forest.feature[i] !== LEAF) continue;
      for (let k = 0; k < K; k++) {
        classTreeIds.push(t);
        classNodeIds.push(i - root);
        classIds.push(k);
        classWeights.push(forest.value[i * K + k] / forest.nTrees);
      }
    }
  }
  return [
    attrInts('class_ids', classIds),
    attrInts('class_nodeids', classNodeIds),
    attrInts('class_treeids', classTreeIds),
    attrFloats('class_weights', classWeights),
    attrStrings('classlabels_strings', [...classes]),
    ...nodeAttrs,
    attrString('post_transform', 'NONE'),
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
    const { mean, std } = options.scaler;
    if (mean.length !== forest.nFeatures || std.length !== forest.nFeatures) {
      throw new Error(`scaler has ${mean.length} means and ${std.length} deviations, forest has ${forest.nFeatures} features`);
    }
    const { offset, scale } = scalerAttributes(options.scaler);
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
  const classes = options.classes;
  const thresholds = float32Thresholds(forest, options.scaler);
  nodes.push(
    classes
      ? {
          opType: 'TreeEnsembleClassifier',
          domain: 'ai.onnx.ml',
          name: 'TreeEnsembleClassifier',
          input: [treeInput],
          output: [SKL2ONNX_LABEL_OUTPUT, SKL2ONNX_PROBABILITIES_OUTPUT],
          attribute: treeEnsembleClassifierAttributes(forest, thresholds, classes),
        }
      : {
          opType: 'TreeEnsembleRegressor',
          domain: 'ai.onnx.ml',
          name: 'TreeEnsembleRegressor',
          input: [treeInput],
          output: [outputName],
          attribute: treeEnsembleAttributes(forest, thresholds, nTargets),
        },
  );
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
      // TreeEnsembleRegressor and TreeEnsembleClassifier's scores are always float32.
      output: classes
        ? [labelInfo(SKL2ONNX_LABEL_OUTPUT), tensorInfo(SKL2ONNX_PROBABILITIES_OUTPUT, 'float32', classes.length)]
        : [tensorInfo(outputName, 'float32', nTargets)],
    },
    metadataProps: Object.entries(options.metadata ?? {}).map(([key, value]) => ({ key, value })),
  });
  return onnx.ModelProto.encode(model).finish();
}
