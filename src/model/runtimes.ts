/** The one place where a bundle's format picks its inference runtime. */
import { BundleError } from './bundle-error.js';
import { type FlatForest, deserializeForest, outputsOf } from './forest.js';
import { NativeClassifierRuntime } from './native-classifier.js';
import { NativeForestRuntime } from './native-runtime.js';
import type { Manifest, ModelRuntime } from './types.js';

export const SUPPORTED_FORMATS: readonly string[] = ['native-forest', 'onnx'];

/**
 * Builds the runtime of a verified bundle. modelBytes are the model file's bytes, already checked against the
 * manifest's sha256 (reading the file again here could see a file changed since the check).
 */
export async function createRuntime(manifest: Manifest, dir: string, modelBytes: Uint8Array): Promise<ModelRuntime> {
  switch (manifest.format) {
    case 'native-forest':
      return nativeRuntime(manifest, dir, modelBytes);
    case 'onnx': {
      // onnxruntime-node costs ~12 MB of RSS once imported: only bundles that need it pay for it.
      const { createOnnxRuntime } = await import('./onnx/runtime.js');
      return createOnnxRuntime(manifest, dir, modelBytes);
    }
    default:
      throw new BundleError(
        'unsupported_format',
        `bundle ${dir}: model format "${String(manifest.format)}" is not supported (supported: ${SUPPORTED_FORMATS.join(', ')})`,
      );
  }
}

function nativeRuntime(manifest: Manifest, dir: string, modelBytes: Uint8Array): ModelRuntime {
  let forest: FlatForest;
  try {
    forest = deserializeForest(modelBytes);
  } catch (err) {
    throw new BundleError('model_invalid', `bundle ${dir}: ${manifest.modelFile} is not a usable forest: ${(err as Error).message}`);
  }
  if (forest.nFeatures !== manifest.features.length) {
    throw new BundleError(
      'model_invalid',
      `bundle ${dir}: ${manifest.modelFile} expects ${forest.nFeatures} features but the manifest lists ${manifest.features.length}`,
    );
  }
  const K = outputsOf(forest);
  const classes = manifest.task === 'classification' ? (manifest.classes?.length ?? 0) : 1;
  if (K !== classes) {
    throw new BundleError(
      'model_invalid',
      `bundle ${dir}: ${manifest.modelFile} has ${K} output(s) per row but the manifest's ${manifest.task} task needs ${classes}`,
    );
  }
  return K > 1 ? new NativeClassifierRuntime(forest, manifest.preprocessing) : new NativeForestRuntime(forest, manifest.preprocessing);
}
