/**
 * Choosing a model's columns in any CSV: the target the user names, and the features they list or, by
 * default, every other numeric column in header order (so the wine table gives the eleven wine inputs in
 * their usual order). Every refusal is one line naming the column, and the line and cell that decided it.
 */
import { headerName, isDecimal } from './csv.js';
import type { Task } from './types.js';

export class TrainDataError extends Error {
  override name = 'TrainDataError';
}

interface ColumnScan {
  header: string[];
  /** First empty cell per column (1-based line, or 0 when there is none). */
  firstEmpty: number[];
  /** First cell per column that is not a decimal number (line and raw text), when there is one. */
  firstText: Array<{ line: number; raw: string } | undefined>;
  rows: number;
}

function scan(text: string, where: string): ColumnScan {
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  const headerIdx = lines.findIndex((l) => l.trim() !== '');
  if (headerIdx < 0) throw new TrainDataError(`${where}: empty CSV`);
  const header = lines[headerIdx].split(',').map(headerName);
  const firstEmpty = header.map(() => 0);
  const firstText: ColumnScan['firstText'] = header.map(() => undefined);
  let rows = 0;
  for (let i = headerIdx + 1; i < lines.length; i++) {
    if (lines[i].trim() === '') continue;
    const cells = lines[i].split(',');
    if (cells.length !== header.length) {
      throw new TrainDataError(`${where} line ${i + 1}: ${cells.length} cells, the header has ${header.length}`);
    }
    rows++;
    cells.forEach((cell, j) => {
      const raw = cell.trim();
      if (raw === '') {
        if (firstEmpty[j] === 0) firstEmpty[j] = i + 1;
      } else if (firstText[j] === undefined && !isDecimal(raw)) firstText[j] = { line: i + 1, raw };
    });
  }
  if (rows === 0) throw new TrainDataError(`${where}: no data rows after the header`);
  return { header, firstEmpty, firstText, rows };
}

export interface ChosenColumns {
  features: string[];
  target: string;
  task: Task;
}

export interface ColumnRequest {
  target: string;
  /** Absent: every numeric column but the target. */
  features?: readonly string[];
  /** Absent: classification when the target holds text, else regression. */
  task?: Task;
  /** The file name, shown in messages. */
  source: string;
}

/** The target and features to train on, checked against the table's header and cells. */
export function chooseColumns(text: string, req: ColumnRequest): ChosenColumns {
  const where = req.source;
  const { header, firstEmpty, firstText } = scan(text, where);
  const dup = header.find((h, i) => header.indexOf(h) !== i);
  if (dup !== undefined) throw new TrainDataError(`${where}: column "${dup}" appears twice in the header`);
  const known = `columns: ${header.join(', ')}`;
  const col = (name: string, role: string): number => {
    const j = header.indexOf(name);
    if (j < 0) throw new TrainDataError(`${where}: no ${role} column "${name}" (${known})`);
    return j;
  };
  const numeric = (j: number, role: string): void => {
    if (firstEmpty[j] > 0) {
      throw new TrainDataError(`${where} line ${firstEmpty[j]}: ${role} "${header[j]}" is empty (fill or drop rows with missing values)`);
    }
    const text = firstText[j];
    if (text) throw new TrainDataError(`${where} line ${text.line}: ${role} "${header[j]}" is not numeric: ${JSON.stringify(text.raw)}`);
  };
  const t = col(req.target, 'target');
  const textTarget = firstText[t] !== undefined;
  const task: Task = req.task ?? (textTarget ? 'classification' : 'regression');
  if (task === 'regression') {
    if (textTarget) {
      const cell = firstText[t]!;
      throw new TrainDataError(
        `${where} line ${cell.line}: target "${req.target}" is not numeric: ${JSON.stringify(cell.raw)} (a regression needs numbers; a class label needs --task classification)`,
      );
    }
    numeric(t, 'target');
  } else if (firstEmpty[t] > 0) {
    throw new TrainDataError(`${where} line ${firstEmpty[t]}: target "${req.target}" is empty (fill or drop rows with missing labels)`);
  }
  let features: string[];
  if (req.features !== undefined) {
    if (req.features.length === 0) throw new TrainDataError('--features lists no column');
    const twice = req.features.find((f, i) => req.features!.indexOf(f) !== i);
    if (twice !== undefined) throw new TrainDataError(`feature "${twice}" is listed twice`);
    if (req.features.includes(req.target)) throw new TrainDataError(`"${req.target}" is the target: it cannot also be a feature`);
    for (const f of req.features) numeric(col(f, 'feature'), 'feature');
    features = [...req.features];
  } else {
    // A column with text in it is a label or an id, not an input: left out. A numeric column with holes is
    // refused instead, since leaving it out silently would hide a likely input.
    features = header.filter((_, j) => j !== t && firstText[j] === undefined);
    for (const f of features) numeric(header.indexOf(f), 'feature');
    if (features.length === 0) throw new TrainDataError(`${where}: no numeric column besides the target "${req.target}" (${known})`);
  }
  return { features, target: req.target, task };
}

/** Refuses labels a regressor cannot learn from: all equal. */
export function checkTargetVaries(y: ArrayLike<number>, target: string, source: string): void {
  for (let i = 1; i < y.length; i++) if (y[i] !== y[0]) return;
  throw new TrainDataError(`${source}: target "${target}" is constant (${y[0]} in every row): nothing to learn`);
}

/**
 * The classes of a labelled column, in the order of the model's outputs: numerically when every label is a
 * number (so "10" follows "9"), else by code point (scikit-learn's np.unique order for strings).
 */
export function classesOf(labels: readonly string[]): string[] {
  const distinct = [...new Set(labels)];
  return distinct.every(isDecimal)
    ? distinct.sort((a, b) => Number(a) - Number(b) || (a < b ? -1 : a > b ? 1 : 0))
    : distinct.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** Class indices of labels, as the trainer's y; a label outside `classes` is refused with its row. */
export function classIndices(labels: readonly string[], classes: readonly string[], source: string, target: string): Float64Array {
  const index = new Map(classes.map((c, i) => [c, i]));
  return Float64Array.from(labels, (label, r) => {
    const i = index.get(label);
    if (i === undefined) {
      throw new TrainDataError(
        `${source}: row ${r + 1} has ${target} ${JSON.stringify(label)}, a class the training data does not have (${classes.join(', ')})`,
      );
    }
    return i;
  });
}
