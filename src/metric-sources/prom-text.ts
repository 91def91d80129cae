/**
 * A parser for the Prometheus text exposition format (version 0.0.4), the format prom-client writes and
 * Prometheus scrapes. prom-client only writes it, so this small parser reads it back for the direct-scrape
 * analysis provider. Comments and HELP/TYPE lines are skipped; samples keep their labels.
 */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export class ExpositionError extends Error {}

export interface ParseOptions {
  /**
   * Metric families to read (a histogram's family covers its _bucket, _sum and _count samples). Lines of
   * other families are skipped before they are parsed, so a line the reader does not need can never fail it.
   * Absent: every line is read.
   */
  families?: readonly string[];
}

const INF = /^[+-]?inf(inity)?$/i;
const NAN = /^[+-]?nan$/i;

/**
 * Sample values as Prometheus reads them (Go's ParseFloat): NaN and Inf in any case (prom-client writes
 * `Nan`), an optional sign, exponents.
 */
export function parseSampleValue(text: string): number | null {
  if (NAN.test(text)) return Number.NaN;
  if (INF.test(text)) return text.startsWith('-') ? -Infinity : Infinity;
  if (text === '') return null;
  const v = Number(text);
  return Number.isNaN(v) ? null : v;
}

function parseValue(text: string, line: string): number {
  const v = parseSampleValue(text);
  if (v === null) throw new ExpositionError(`bad sample value "${text}" in: ${line}`);
  return v;
}

/** Reads `{a="x",b="y\"z"}` starting at `start` (the "{"); returns the labels and the index after "}". */
function parseLabels(line: string, start: number): { labels: Record<string, string>; end: number } {
  const labels: Record<string, string> = {};
  let i = start + 1;
  for (;;) {
    while (line[i] === ' ' || line[i] === ',') i++;
    if (line[i] === '}') return { labels, end: i + 1 };
    const eq = line.indexOf('=', i);
    if (eq === -1 || line[eq + 1] !== '"') throw new ExpositionError(`bad label set in: ${line}`);
    const name = line.slice(i, eq).trim();
    let value = '';
    let j = eq + 2;
    for (; j < line.length && line[j] !== '"'; j++) {
      if (line[j] === '\\') {
        const next = line[++j];
        value += next === 'n' ? '\n' : next;
      } else value += line[j];
    }
    if (j >= line.length) throw new ExpositionError(`unterminated label value in: ${line}`);
    labels[name] = value;
    i = j + 1;
  }
}

/** The metric name of a sample line: everything before its label set or value. */
function sampleName(line: string): string {
  let end = 0;
  while (end < line.length && line[end] !== '{' && line[end] !== ' ' && line[end] !== '\t') end++;
  return line.slice(0, end);
}

const SUFFIXES = ['_bucket', '_sum', '_count'];

function familyFilter(families: readonly string[] | undefined): ((name: string) => boolean) | undefined {
  if (!families) return undefined;
  const names = new Set(families.flatMap((f) => [f, ...SUFFIXES.map((s) => f + s)]));
  return (name) => names.has(name);
}

export function parseExposition(text: string, opts: ParseOptions = {}): Sample[] {
  const wanted = familyFilter(opts.families);
  const samples: Sample[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    if (wanted && !wanted(sampleName(line))) continue;
    const brace = line.indexOf('{');
    const space = line.search(/[ \t]/);
    let name: string;
    let labels: Record<string, string> = {};
    let rest: string;
    if (brace !== -1 && (space === -1 || brace < space)) {
      name = line.slice(0, brace);
      const parsed = parseLabels(line, brace);
      labels = parsed.labels;
      rest = line.slice(parsed.end).trim();
    } else {
      if (space === -1) throw new ExpositionError(`sample without a value: ${line}`);
      name = line.slice(0, space);
      rest = line.slice(space + 1).trim();
    }
    // An optional timestamp may follow the value.
    samples.push({ name, labels, value: parseValue(rest.split(/\s+/)[0], line) });
  }
  return samples;
}
