/**
 * ONNX and Open Inference Protocol V2 benchmark, in one run:
 * - µs per row of the native and the ONNX runtime on the default bundle and its ONNX export (single rows and
 *   1000-row batches, medians of several rounds; bench/inference.ts does the timing);
 * - requests per second of POST /v2/models/{name}/infer beside POST /predict with the same row, on an instance
 *   of each bundle (autocannon, short runs; the instances are child processes, the load generator shares the
 *   machine's cores with them).
 *
 *   node --import tsx bench/onnx.ts [--duration 3] [--connections 10]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { exportOnnxBundle } from '../src/model/onnx/export.js';
import { WINE_EXAMPLE, WINE_FEATURES } from '../src/model/wine.js';
import { freePort, startCli, stopProcess, waitForHttp } from '../test/support/processes.js';
import { DEFAULT_BENCH_BUNDLE, runInferenceBench, type InferenceBenchResult } from './inference.js';

export interface HttpRow {
  runtime: string;
  route: string;
  reqPerSec: number;
  p50Ms: number;
  p99Ms: number;
  /** Connection errors plus non-2xx answers: must be 0. */
  failures: number;
}

export interface OnnxBenchResult {
  inference: InferenceBenchResult[];
  http: HttpRow[];
  /** Largest |native - ONNX| over the golden rows, checked by the export. */
  exportMaxAbsDiff: number;
  loadAverage: number[];
  cpus: number;
}

export interface OnnxBenchOptions {
  durationSeconds?: number;
  connections?: number;
  bundleDir?: string;
}

const PREDICT_BODY = JSON.stringify(WINE_EXAMPLE);
const V2_BODY = JSON.stringify({
  inputs: [{ name: 'input-0', shape: [1, WINE_FEATURES.length], datatype: 'FP64', data: WINE_FEATURES.map((f) => WINE_EXAMPLE[f]) }],
});

async function cannon(url: string, body: string, connections: number, duration: number): Promise<Omit<HttpRow, 'runtime' | 'route'>> {
  const r = await autocannon({ url, method: 'POST', headers: { 'content-type': 'application/json' }, body, connections, duration });
  return { reqPerSec: r.requests.average, p50Ms: r.latency.p50, p99Ms: r.latency.p99, failures: r.errors + r.timeouts + r.non2xx };
}

/** One instance of `bundle`: /predict, then V2 infer, with the same row. */
async function httpRows(bundle: string, runtime: string, connections: number, duration: number): Promise<HttpRow[]> {
  const port = await freePort();
  const proc = startCli(['serve', '--bundle', bundle, '--port', String(port), '--drain-delay-ms', '0', '--log-level', 'warn']);
  try {
    const base = `http://127.0.0.1:${port}`;
    await waitForHttp(`${base}/ready`, { proc, timeoutMs: 60_000 });
    const name = (await (await fetch(`${base}/health`)).json()) as { model: { name: string } };
    const v2 = `/v2/models/${name.model.name}/infer`;
    // Warm-up of both routes (JIT, ONNX session), not measured.
    await cannon(`${base}/predict`, PREDICT_BODY, connections, 1);
    await cannon(`${base}${v2}`, V2_BODY, connections, 1);
    return [
      { runtime, route: '/predict', ...(await cannon(`${base}/predict`, PREDICT_BODY, connections, duration)) },
      { runtime, route: v2, ...(await cannon(`${base}${v2}`, V2_BODY, connections, duration)) },
    ];
  } finally {
    await stopProcess(proc);
  }
}

export async function runOnnxBench(opts: OnnxBenchOptions = {}): Promise<OnnxBenchResult> {
  const duration = opts.durationSeconds ?? 3;
  const connections = opts.connections ?? 10;
  const native = opts.bundleDir ?? DEFAULT_BENCH_BUNDLE;
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'bgserve-onnx-bench-'));
  try {
    const exported = await exportOnnxBundle(native, { outDir: path.join(tmp, 'onnx'), version: 'bench-onnx' });
    const inference = [await runInferenceBench({ bundleDir: native }), await runInferenceBench({ bundleDir: exported.dir })];
    const http = [
      ...(await httpRows(native, 'native-forest', connections, duration)),
      ...(await httpRows(exported.dir, 'onnx', connections, duration)),
    ];
    return { inference, http, exportMaxAbsDiff: exported.maxAbsDiff, loadAverage: os.loadavg(), cpus: os.cpus().length };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

export function formatOnnxBench(r: OnnxBenchResult): string {
  const lines = [`onnx benchmark (${r.cpus} CPUs, load average ${r.loadAverage.map((l) => l.toFixed(2)).join(' ')})`];
  lines.push('runtime         single µs/row  batch-1000 µs/row  (cpu µs: single / batch)');
  for (const i of r.inference) {
    lines.push(
      `${i.runtime.padEnd(15)} ${i.singleUsPerRow.toFixed(2).padStart(13)}  ${i.batchUsPerRow.toFixed(3).padStart(17)}  (${i.singleCpuUsPerRow.toFixed(2)} / ${i.batchCpuUsPerRow.toFixed(3)})`,
    );
  }
  lines.push(`export parity on the golden rows: max |native - onnx| = ${r.exportMaxAbsDiff.toExponential(2)}`);
  lines.push('runtime         route                           req/s     p50 ms  p99 ms  failures');
  for (const h of r.http) {
    lines.push(
      `${h.runtime.padEnd(15)} ${h.route.padEnd(30)} ${h.reqPerSec.toFixed(0).padStart(7)} ${h.p50Ms.toFixed(2).padStart(9)} ${h.p99Ms.toFixed(2).padStart(7)} ${String(h.failures).padStart(9)}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

function flag(argv: string[], name: string): number | undefined {
  const i = argv.indexOf(name);
  return i >= 0 ? Number(argv[i + 1]) : undefined;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const argv = process.argv.slice(2);
  const result = await runOnnxBench({ durationSeconds: flag(argv, '--duration'), connections: flag(argv, '--connections') });
  process.stdout.write(formatOnnxBench(result));
  const failures = result.http.reduce((n, h) => n + h.failures, 0);
  if (failures > 0) process.exitCode = 1;
}
