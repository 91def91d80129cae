/** Writes the generated monitoring files: `tsx deploy/generate.ts prometheus|grafana`. */
import { fileURLToPath } from 'node:url';
import { grafanaFiles, prometheusFiles, writeGeneratedFiles, type GeneratedFile } from '../src/monitoring/generated-files.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const sets: Record<string, () => GeneratedFile[]> = { prometheus: prometheusFiles, grafana: grafanaFiles };
const wanted = process.argv.slice(2);
const unknown = wanted.filter((w) => !(w in sets));
if (wanted.length === 0 || unknown.length > 0) {
  process.stderr.write(`usage: tsx deploy/generate.ts ${Object.keys(sets).join('|')} ...\n`);
  process.exit(2);
}
const files = wanted.flatMap((w) => sets[w]());
await writeGeneratedFiles(root, files);
for (const f of files) process.stdout.write(`wrote ${f.path}\n`);
