import { readFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';

/** Rows of a labelled (or unlabelled) table, columns laid out in the order of `features`. */
export interface Dataset {
  features: readonly string[];
  target: string | null;
  nRows: number;
  /** Row-major nRows x features.length, raw units. */
  x: Float64Array;
  /** Labels, when the table has the target column (class indices for a classifier's table: see classes.ts). */
  y: Float64Array | null;
  /** The target cells as text, when parsed with `textLabels` (a classifier's labels). */
  labelTexts?: string[];
}

export class CsvError extends Error {
  override name = 'CsvError';
  constructor(
    message: string,
    readonly line?: number,
    readonly source?: string,
  ) {
    const where = [source, line === undefined ? undefined : `line ${line}`].filter(Boolean).join(' ');
    super(where ? `${where}: ${message}` : message);
  }
}

export interface ParseOptions {
  features: readonly string[];
  /** Name of the label column; required unless `labelled` is false. */
  target: string;
  /** When true (the default) the target column must be present. */
  labelled?: boolean;
  /** Shown in error messages. */
  source?: string;
  /** Keep the target cells as text (labelTexts) instead of parsing them as numbers; y is then null. */
  textLabels?: boolean;
}

export function headerName(cell: string): string {
  const t = cell.trim();
  return t.length >= 2 && t.startsWith('"') && t.endsWith('"') ? t.slice(1, -1) : t;
}

const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/** Plain decimal notation only: Number('') is 0 and Number('0x1f') is 31, neither a data value. */
export function isDecimal(raw: string): boolean {
  return DECIMAL.test(raw);
}

/**
 * Strict comma-separated parsing: a header naming every feature (in any order, extra columns ignored), then
 * one row per line with exactly as many cells, each a finite decimal number. Blank lines are skipped.
 */
export function parseDataset(text: string, opts: ParseOptions): Dataset {
  const fail = (message: string, line?: number) => new CsvError(message, line, opts.source);
  const labelled = opts.labelled ?? true;
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  const headerIdx = lines.findIndex((l) => l.trim() !== '');
  if (headerIdx < 0) throw fail(`empty CSV`);
  const header = lines[headerIdx].split(',').map(headerName);
  const dup = header.find((h, i) => header.indexOf(h) !== i);
  if (dup !== undefined) throw fail(`column "${dup}" appears twice in the header`, headerIdx + 1);
  const wanted = labelled ? [...opts.features, opts.target] : opts.features;
  const missing = wanted.filter((name) => !header.includes(name));
  if (missing.length > 0) {
    throw fail(
      `header lacks ${missing.map((m) => JSON.stringify(m)).join(', ')} (expected columns: ${wanted.join(', ')}; found: ${header.join(', ')})`,
      headerIdx + 1,
    );
  }
  const featureCols = opts.features.map((name) => header.indexOf(name));
  const targetCol = header.indexOf(opts.target);
  const hasTarget = targetCol >= 0;
  const nf = opts.features.length;
  const x: number[] = [];
  const y: number[] = [];
  const texts: string[] = [];
  for (let i = headerIdx + 1; i < lines.length; i++) {
    const line = lines[i];
    if (line.trim() === '') continue;
    const cells = line.split(',');
    if (cells.length !== header.length) {
      throw fail(`${cells.length} cells, the header has ${header.length}`, i + 1);
    }
    const num = (col: number): number => {
      const raw = cells[col].trim();
      if (!isDecimal(raw)) {
        throw fail(`column "${header[col]}" is not a number: ${JSON.stringify(raw)}`, i + 1);
      }
      const v = Number(raw);
      if (!Number.isFinite(v)) throw fail(`column "${header[col]}" is out of range: ${raw}`, i + 1);
      return v;
    };
    for (let j = 0; j < nf; j++) x.push(num(featureCols[j]));
    if (!hasTarget) continue;
    if (opts.textLabels) {
      const label = cells[targetCol].trim();
      if (label === '') throw fail(`column "${header[targetCol]}" is empty`, i + 1);
      texts.push(label);
    } else y.push(num(targetCol));
  }
  if (y.length === 0 && x.length === 0) throw fail(`no data rows after the header`);
  return {
    features: opts.features,
    target: hasTarget ? opts.target : null,
    nRows: x.length / nf,
    x: Float64Array.from(x),
    y: hasTarget && !opts.textLabels ? Float64Array.from(y) : null,
    ...(hasTarget && opts.textLabels ? { labelTexts: texts } : {}),
  };
}

export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Reads and parses a CSV file; also returns the sha256 of its bytes, recorded in manifests. */
export async function readDataset(file: string, opts: Omit<ParseOptions, 'source'>): Promise<Dataset & { sha256: string }> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (err) {
    throw new CsvError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  return { ...parseDataset(bytes.toString('utf8'), { ...opts, source: file }), sha256: sha256Hex(bytes) };
}

/** Writes rows back as CSV with the given header (features then target); numbers round-trip exactly. */
export function formatDataset(
  features: readonly string[],
  target: string,
  x: Float64Array,
  y: ArrayLike<number> | readonly string[],
  rows: ArrayLike<number>,
): string {
  const nf = features.length;
  const out = [[...features, target].join(',')];
  for (let k = 0; k < rows.length; k++) {
    const r = rows[k];
    const cells: string[] = [];
    for (let j = 0; j < nf; j++) cells.push(String(x[r * nf + j]));
    cells.push(String(y[r]));
    out.push(cells.join(','));
  }
  return `${out.join('\n')}\n`;
}
