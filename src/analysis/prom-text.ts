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

function parseValue(text: string, line: string): number {
  switch (text) {
    case '+Inf':
    case 'Inf':
      return Infinity;
    case '-Inf':
      return -Infinity;
    case 'NaN':
      return Number.NaN;
  }
  const v = Number(text);
  if (text === '' || Number.isNaN(v)) throw new ExpositionError(`bad sample value "${text}" in: ${line}`);
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

export function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const brace = line.indexOf('{');
    const space = line.indexOf(' ');
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
