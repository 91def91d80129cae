/**
 * export-onnx: a native-forest bundle -> a bundle of its own in format 'onnx' (Scaler + TreeEnsembleRegressor,
 * as skl2onnx writes Pipeline(StandardScaler, RandomForestRegressor); a classifier's: Scaler +
 * TreeEnsembleClassifier with a plain probability tensor, as skl2onnx with zipmap off), with new checksums, then loaded back
 * through the ONNX runtime and compared with the native runtime on the source's golden rows (or the feature
 * means) before the export is reported done.
 */
import { access, readFile } from 'node:fs/promises';
import path from 'node:path';
import { BundleError, MANIFEST_FILE, loadBundle, writeBundle } from '../bundle.js';
import { sha256Hex, readDataset } from '../csv.js';
import { deserializeForest, outputsOf, type FlatForest } from '../forest.js';
import type { LoadedModel, Manifest, ModelRuntime } from '../types.js';
import { createOnnxRuntime, ONNX_MODEL_FILE } from './runtime.js';
import { forestToOnnx, SKL2ONNX_INPUT, SKL2ONNX_OUTPUT, SKL2ONNX_PROBABILITIES_OUTPUT } from './writer.js';

/** Distance from x to the next float32 away from zero. */
export function ulp32(x: number): number {
  const a = Math.fround(Math.abs(x));
  if (a === 0) return 2 ** -149;
  const exp = Math.floor(Math.log2(a));
  return 2 ** (Math.max(exp, -126) - 23);
}

/**
 * Largest |ONNX - native| expected for a row when both runtimes take the same branches: the ONNX leaf values are
 * float32 (at most half an ulp of the largest |leaf| each), onnxruntime sums nTrees of them in float32 (each
 * addition off by at most half an ulp of the running sum, at most nTrees * max|leaf|, so the mean is off by at most
 * half an ulp of that), and the mean itself is rounded to float32 (half an ulp of max|leaf|).
 */
export function onnxParityTolerance(forest: FlatForest): number {
  const K = outputsOf(forest);
  // A classifier's leaf weights are shares / nTrees (at most half an ulp off each), summed in float32 into
  // probabilities up to 1 (each addition at most half an ulp of 1 off).
  if (K > 1) return forest.nTrees * (0.5 * ulp32(1 / forest.nTrees) + 0.5 * ulp32(1));
  let maxLeaf = 0;
  for (let i = 0; i < forest.value.length; i++) if (forest.feature[i] === -1) maxLeaf = Math.max(maxLeaf, Math.abs(forest.value[i]));
  return 0.5 * ulp32(forest.nTrees * maxLeaf) + ulp32(maxLeaf);
}

export interface ExportOptions {
  /** Output bundle folder; default: beside the source, named by the new version. */
  outDir?: string;
  /** Version of the new bundle; default: the source's version with "-onnx" appended. */
  version?: string;
}

export interface ExportResult {
  dir: string;
  manifest: Manifest;
  /** Rows both runtimes predicted, and the largest absolute difference between them. */
  comparedRows: number;
  maxAbsDiff: number;
  tolerance: number;
}

async function exists(file: string): Promise<boolean> {
  return access(file).then(
    () => true,
    () => false,
  );
}

/** The rows used to confirm an export: the golden set when the bundle has one, else the training means. */
async function comparisonRows(source: LoadedModel): Promise<{ rows: Float64Array; nRows: number }> {
  const { manifest, dir } = source;
  if (manifest.goldenFile) {
    const data = await readDataset(path.join(dir, manifest.goldenFile), {
      features: source.featureNames,
      target: manifest.target,
      labelled: false,
      // A classifier's golden labels are class names.
      textLabels: manifest.task === 'classification',
    });
    return { rows: data.x, nRows: data.nRows };
  }
  return { rows: Float64Array.from(manifest.features, (f) => f.mean), nRows: 1 };
}

/** Largest absolute difference between two runtimes' outputs (a classifier's: every probability) on the same rows. */
export async function compareRuntimes(
  a: ModelRuntime,
  b: ModelRuntime,
  input: { rows: Float64Array; nRows: number },
): Promise<{ nRows: number; maxAbsDiff: number }> {
  const pa = await a.predict(input.rows, input.nRows);
  const pb = await b.predict(input.rows, input.nRows);
  if (pa.length !== pb.length) return { nRows: input.nRows, maxAbsDiff: Number.POSITIVE_INFINITY };
  let maxAbsDiff = 0;
  for (let i = 0; i < pa.length; i++) maxAbsDiff = Math.max(maxAbsDiff, Math.abs(pa[i] - pb[i]));
  return { nRows: input.nRows, maxAbsDiff };
}

export async function exportOnnxBundle(sourceDir: string, opts: ExportOptions = {}): Promise<ExportResult> {
  const source = await loadBundle(sourceDir);
  const src = source.manifest;
  try {
    if (src.format !== 'native-forest') {
      throw new BundleError(
        'unsupported_format',
        `bundle ${sourceDir}: only native-forest bundles can be exported to ONNX (this one is ${src.format})`,
      );
    }
    const version = opts.version ?? `${src.version}-onnx`;
    const outDir = opts.outDir ?? path.join(path.dirname(path.resolve(sourceDir)), version);
    if (await exists(path.join(outDir, MANIFEST_FILE))) {
      throw new BundleError('manifest_invalid', `refusing to overwrite the bundle in ${outDir}: remove it or choose --out`);
    }
    // loadBundle verified the forest's sha256; reading it again must give the same bytes.
    const forestBytes = await readFile(path.join(sourceDir, src.modelFile));
    if (sha256Hex(forestBytes) !== src.files[src.modelFile]) {
      throw new BundleError('checksum_mismatch', `bundle ${sourceDir}: ${src.modelFile} changed while exporting`);
    }
    const forest = deserializeForest(forestBytes);
    const pre = src.preprocessing;
    const classes = src.task === 'classification' ? src.classes : undefined;
    const onnxBytes = forestToOnnx(forest, {
      ...(classes ? { classes } : {}),
      scaler: pre.kind === 'standard-scaler' ? { mean: pre.mean, std: pre.scale } : null,
      producerVersion: version,
      docString: `${src.name} ${version}: exported by bgserve from ${src.name} ${src.version} (manifest sha256 ${source.sha256})`,
      metadata: {
        bgserve_name: src.name,
        bgserve_version: version,
        bgserve_source_version: src.version,
        features: JSON.stringify(source.featureNames),
      },
    });
    const files: Record<string, Uint8Array> = { [ONNX_MODEL_FILE]: onnxBytes };
    if (src.goldenFile) files[src.goldenFile] = await readFile(path.join(sourceDir, src.goldenFile));
    const { files: _srcFiles, ...rest } = src;
    void _srcFiles;
    const manifest: Omit<Manifest, 'files'> = {
      ...rest,
      version,
      format: 'onnx',
      modelFile: ONNX_MODEL_FILE,
      // The Scaler is inside the graph: the runtime feeds raw values.
      preprocessing: { kind: 'none' },
      onnx: { input: SKL2ONNX_INPUT, output: classes ? SKL2ONNX_PROBABILITIES_OUTPUT : SKL2ONNX_OUTPUT },
      training: {
        ...src.training,
        params: { ...src.training.params, exportedFrom: { version: src.version, manifestSha256: source.sha256 } },
      },
      createdAt: new Date().toISOString(),
    };
    // Compare before writing anything: an export that does not predict what its source predicts is refused.
    const tolerance = onnxParityTolerance(forest);
    const candidate = await createOnnxRuntime({ ...manifest, files: {} }, outDir, onnxBytes);
    let comparison: { nRows: number; maxAbsDiff: number };
    try {
      comparison = await compareRuntimes(source.runtime, candidate, await comparisonRows(source));
    } finally {
      await candidate.close?.();
    }
    if (!(comparison.maxAbsDiff <= tolerance)) {
      throw new BundleError(
        'model_invalid',
        `bundle ${sourceDir}: the ONNX export differs from the native forest by ${comparison.maxAbsDiff} (tolerance ${tolerance}) on ${comparison.nRows} rows`,
      );
    }
    await writeBundle(outDir, { manifest, files });
    // Loading it back runs every check a serving instance will run.
    const exported = await loadBundle(outDir);
    await exported.runtime.close?.();
    return { dir: outDir, manifest: exported.manifest, comparedRows: comparison.nRows, maxAbsDiff: comparison.maxAbsDiff, tolerance };
  } finally {
    await source.runtime.close?.();
  }
}
