/**
 * The folders a running instance may load bundles from (POST /admin/model). A path is judged by what it
 * resolves to, symlinks included, for the bundle folder and for every file the bundle reads; a path outside
 * every root is refused with one answer whether or not it exists, so the admin API cannot be used to learn
 * what lies outside the roots.
 */
import { realpath } from 'node:fs/promises';
import path from 'node:path';
import { BundleError } from './bundle-error.js';

/** Where a bundle's files are read from: a plain folder, or one confined to the roots. */
export interface BundleLocator {
  /** The path to read for a bundle-relative file; rejects with the errno error, or a BundleError when refused. */
  locate(rel: string): Promise<string>;
}

export function plainLocator(dir: string): BundleLocator {
  return { locate: async (rel) => path.join(dir, rel) };
}

function isInside(root: string, p: string): boolean {
  const rel = path.relative(root, p);
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel));
}

/**
 * The roots an instance has unless told otherwise: `models/` under the working directory, and the folder
 * holding the start-up bundle's model folder (models/<name>/<version> -> models/), unless that is the
 * filesystem root.
 */
export function defaultBundleRoots(startupBundle: string, cwd = process.cwd()): string[] {
  const roots = [path.resolve(cwd, 'models')];
  const above = path.dirname(path.dirname(path.resolve(cwd, startupBundle)));
  if (above !== path.parse(above).root) roots.push(above);
  return [...new Set(roots)];
}

export class BundleRoots {
  readonly roots: readonly string[];

  constructor(roots: readonly string[]) {
    this.roots = [...new Set(roots.map((r) => path.resolve(r)))];
  }

  private refused(requested: string, what: string): BundleError {
    return new BundleError(
      'outside_roots',
      `refused: ${what} ${requested} is outside the bundle roots (${this.roots.join(', ')}); add one with --bundle-root (serve or up)`,
    );
  }

  /** The roots as given and as they resolve (a root may itself sit behind a symlink); missing roots resolve to nothing. */
  private async resolvedRoots(): Promise<{ given: readonly string[]; real: string[] }> {
    const real = await Promise.all(this.roots.map((r) => realpath(r).catch(() => null)));
    return { given: this.roots, real: real.filter((r): r is string => r !== null) };
  }

  /**
   * Confines the bundle folder `requested` (absolute): refused as written when outside every root (nothing is
   * read), then refused when it resolves outside; a folder inside the roots that does not exist is not a bundle.
   * Every file is then located by its own resolved path, checked the same way.
   */
  async confine(requested: string): Promise<{ dir: string; locator: BundleLocator }> {
    const { given, real } = await this.resolvedRoots();
    const inRoots = (p: string, roots: readonly string[]) => roots.some((r) => isInside(r, p));
    if (!inRoots(requested, [...given, ...real])) throw this.refused(requested, 'bundle');
    let dir: string;
    try {
      dir = await realpath(requested);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
      throw new BundleError('manifest_missing', `not a bundle: ${requested} is not a readable folder (${code})`);
    }
    if (!inRoots(dir, real)) throw this.refused(requested, 'bundle');
    return {
      dir,
      locator: {
        locate: async (rel) => {
          const file = await realpath(path.join(dir, rel));
          if (!inRoots(file, real)) throw this.refused(path.join(requested, rel), 'file');
          return file;
        },
      },
    };
  }
}
