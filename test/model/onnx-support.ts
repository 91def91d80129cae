import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { LEAF, type FlatForest } from '../../src/model/forest.js';

/** Debian's interpreter: the `python3` first on PATH may not see Debian's python3-onnx. */
export const DEBIAN_PYTHON = '/usr/bin/python3';

const CHECK = [
  'import sys, onnx',
  'm = onnx.load(sys.argv[1])',
  'onnx.checker.check_model(m, full_check=True)',
  'print("onnx", onnx.__version__, "ir", m.ir_version, "opsets", sorted((o.domain, o.version) for o in m.opset_import))',
].join('\n');

export function debianOnnxAvailable(): boolean {
  return existsSync(DEBIAN_PYTHON);
}

/** Runs onnx.checker.check_model (full_check: shape inference too) on a file; rejects with its message. */
export async function runOnnxChecker(file: string): Promise<string> {
  const { stdout } = await promisify(execFile)(DEBIAN_PYTHON, ['-c', CHECK, file], { timeout: 60_000 });
  return stdout.trim();
}

/** Two hand-made trees over 3 features: a stump on f0 and a two-level tree on f2 then f1. */
export function tinyForest(): FlatForest {
  return {
    nTrees: 2,
    nFeatures: 3,
    treeOffsets: Int32Array.from([0, 3, 8]),
    feature: Int32Array.from([0, LEAF, LEAF, 2, 1, LEAF, LEAF, LEAF]),
    threshold: Float64Array.from([0.25, 0, 0, -0.5, 1.5, 0, 0, 0]),
    left: Int32Array.from([1, 0, 0, 4, 5, 0, 0, 0]),
    right: Int32Array.from([2, 0, 0, 7, 6, 0, 0, 0]),
    value: Float64Array.from([0, 3, 7, 0, 0, 1, 2, 40]),
  };
}
