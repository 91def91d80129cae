/**
 * `npm run bench [-- name... [--option value...]]`: every benchmark (or those named, with the options given),
 * one after another, each in a process of its own so one's heap and JIT state cannot colour the next. The machine and its load are printed first: figures from a noisy machine are read as ratios
 * against the baseline measured in the same run, never as absolutes.
 */
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));

/** In the order a reader wants them: training, the model, one instance, the routers, interop, releases. */
const BENCHMARKS = ['train', 'inference', 'serve', 'router', 'onnx', 'rollback'] as const;

function machine(): string {
  const cpus = os.cpus();
  const load = os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
  return (
    `machine: ${cpus.length} x ${cpus[0]?.model ?? 'unknown cpu'}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, ` +
    `node ${process.version}, load average ${load}`
  );
}

// `npm run bench -- router --duration 5 --rounds 3`: names first, then options passed on to each benchmark named.
const args = process.argv.slice(2);
const firstOption = args.findIndex((a) => a.startsWith('--'));
const only = firstOption < 0 ? args : args.slice(0, firstOption);
const options = firstOption < 0 ? [] : args.slice(firstOption);
const selected = only.length > 0 ? BENCHMARKS.filter((name) => only.includes(name)) : [...BENCHMARKS];
if (only.length > 0 && selected.length !== only.length) {
  process.stderr.write(`unknown benchmark in ${only.join(', ')}; known: ${BENCHMARKS.join(', ')}\n`);
  process.exit(2);
}

process.stdout.write(`${machine()}\n`);
let failed = 0;
for (const name of selected) {
  process.stdout.write(`\n## ${name}\n`);
  const started = Date.now();
  const run = spawnSync(process.execPath, ['--import', 'tsx', path.join(BENCH_DIR, `${name}.ts`), ...options], { stdio: 'inherit' });
  const seconds = ((Date.now() - started) / 1000).toFixed(0);
  if (run.status !== 0) {
    failed++;
    process.stdout.write(`(${name} failed with exit ${run.status ?? run.signal} after ${seconds} s)\n`);
  } else {
    process.stdout.write(`(${name}: ${seconds} s; load average now ${os.loadavg()[0]?.toFixed(2)})\n`);
  }
}
process.exit(failed === 0 ? 0 : 1);
