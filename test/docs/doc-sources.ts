/** README.md and docs/*.md as text, and the pieces the docs tests check: CLI calls, env vars, metric names. */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from '../support/processes.js';

export interface Doc {
  file: string;
  text: string;
}

export function readDocs(): Doc[] {
  const docs = readdirSync(path.join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`);
  return ['README.md', ...docs].map((file) => ({ file, text: readFileSync(path.join(ROOT, file), 'utf8') }));
}

export interface CliCall {
  where: string;
  verb: string;
  flags: string[];
}

/**
 * Every `npx bgserve <verb> ...` in a doc: in code blocks (a line, joined with its `\` continuations, up to a
 * `#` comment) and in inline code (up to the closing backtick).
 */
export function cliCalls(doc: Doc): CliCall[] {
  const calls: CliCall[] = [];
  const lines = doc.text.replace(/\\\n\s*/g, ' ').split('\n');
  lines.forEach((line, i) => {
    for (const m of line.matchAll(/npx bgserve ([a-z][a-z-]*)([^`#\n]*)/g)) {
      const flags = [...m[2].matchAll(/(?:^|\s|\[)(--[a-z][a-z0-9-]*)/g)].map((f) => f[1]);
      calls.push({ where: `${doc.file}:${i + 1}`, verb: m[1], flags });
    }
  });
  return calls;
}

export function envVars(doc: Doc): string[] {
  return [...new Set([...doc.text.matchAll(/\bBGSERVE_[A-Z0-9_]*[A-Z0-9]/g)].map((m) => m[0]))];
}

/** Metric names in the first column of the tables under "## Metrics reference" (up to the next `## `). */
export function referencedMetrics(doc: Doc): string[] {
  const start = doc.text.indexOf('## Metrics reference');
  if (start < 0) return [];
  const rest = doc.text.slice(start + 3);
  const section = rest.slice(0, rest.search(/\n## /) >>> 0);
  const names: string[] = [];
  for (const row of section.split('\n').filter((l) => l.startsWith('| `'))) {
    const firstCell = row.split('|')[1];
    for (const m of firstCell.matchAll(/`([a-z][a-z0-9_:*]*)`/g)) names.push(m[1]);
  }
  return names;
}
