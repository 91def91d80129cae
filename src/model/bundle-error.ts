export type BundleErrorCode =
  | 'manifest_missing'
  | 'manifest_invalid'
  | 'checksum_mismatch'
  | 'file_missing'
  | 'features_mismatch'
  | 'unsupported_format'
  | 'model_invalid'
  /** The folder or one of its files resolves outside the roots an instance may load from (bundle-roots.ts). */
  | 'outside_roots';

/** Why a bundle is refused. The message names the bundle folder and the exact problem. */
export class BundleError extends Error {
  override name = 'BundleError';
  constructor(
    readonly code: BundleErrorCode,
    message: string,
    /** Individual problems, e.g. every malformed manifest field. */
    readonly details: readonly string[] = [],
  ) {
    super(message);
  }
}
