/**
 * The demo's slow model: the good forest exported to ONNX, plus a dense block (a K x K matrix product gated by
 * the input row) that the output weighs at zero. The same predictions, but every request really multiplies
 * two K x K matrices: about K^3 multiply-adds, milliseconds of CPU, against microseconds for the forest.
 *
 * Why not a bigger forest: a forest walk costs about a microsecond per row, so one slow enough to fail the
 * latency checks (milliseconds) would weigh gigabytes; this block costs a few bytes of model file. The product
 * depends on the input (through the gate), so onnxruntime cannot fold it into a constant when it loads.
 */
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;
const FLOAT = onnx.TensorProto.DataType.FLOAT;
const INT64 = onnx.TensorProto.DataType.INT64;
const keepNoDims = { name: 'keepdims', type: onnx.AttributeProto.AttributeType.INT, i: 0 };

/** K: 800^3 multiply-adds take ~15 ms on one core of this machine, well past the latency checks' limits. */
export const SLOW_DENSE_SIZE = 800;

/**
 * Adds the dense block to an ONNX model whose graph has one input [N, features] and one output [N, 1]; the
 * output keeps its name and (exactly) its values.
 */
export function withDenseBlock(modelBytes: Uint8Array, size = SLOW_DENSE_SIZE): Uint8Array {
  const model = onnx.ModelProto.decode(modelBytes);
  const graph = model.graph;
  const input = graph?.input?.[0]?.name;
  const output = graph?.output?.[0]?.name;
  const last = graph?.node?.find((n) => n.output?.includes(output ?? ''));
  if (!graph || !input || !output || !last?.output) throw new Error('expected a graph with one input and one output');
  last.output = last.output.map((o) => (o === output ? 'model_output' : o));
  graph.initializer = [
    ...(graph.initializer ?? []),
    { name: 'dense_shape', dataType: INT64, dims: [2], int64Data: [size, size] },
    { name: 'zero', dataType: FLOAT, dims: [], floatData: [0] },
  ];
  graph.node = [
    ...(graph.node ?? []),
    // tanh keeps the gate in [-1, 1]: the product stays finite for any finite input.
    { opType: 'ReduceSum', name: 'RowSum', input: [input], output: ['row_sum'], attribute: [keepNoDims] },
    { opType: 'Tanh', name: 'Gate', input: ['row_sum'], output: ['gate'] },
    {
      opType: 'ConstantOfShape',
      name: 'Dense',
      input: ['dense_shape'],
      output: ['dense'],
      attribute: [{ name: 'value', type: onnx.AttributeProto.AttributeType.TENSOR, t: { dataType: FLOAT, dims: [1], floatData: [1e-3] } }],
    },
    { opType: 'Mul', name: 'Gated', input: ['dense', 'gate'], output: ['gated'] },
    { opType: 'MatMul', name: 'Product', input: ['gated', 'dense'], output: ['product'] },
    { opType: 'ReduceSum', name: 'Total', input: ['product'], output: ['total'], attribute: [keepNoDims] },
    { opType: 'Mul', name: 'WeighedZero', input: ['total', 'zero'], output: ['nothing'] },
    { opType: 'Add', name: 'Output', input: ['model_output', 'nothing'], output: [output] },
  ];
  model.docString = `${model.docString ?? ''} (demo: plus a ${size}x${size} matrix product per request, weighed at zero)`.trim();
  return onnx.ModelProto.encode(model).finish();
}
