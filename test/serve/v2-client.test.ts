/**
 * A V2 client written from the Open Inference Protocol's REST examples (KServe / Triton style request JSON),
 * against real listening instances (the CLI's `serve`, loopback, free port): the native bundle and its ONNX export.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import path from 'node:path';
import { exportOnnxBundle } from '../../src/model/onnx/export.js';
import { WINE_EXAMPLE, WINE_FEATURES } from '../../src/model/wine.js';
import { freePort, ROOT, startCli, stopProcess, waitForHttp, type Started } from '../support/processes.js';
import { tempDir } from '../model/onnx-support.js';

/** The spec's request: {id, inputs: [{name, shape, datatype, data}], outputs: [{name}]}; data row-major. */
interface InferRequest {
  id?: string;
  inputs: { name: string; shape: number[]; datatype: string; data: number[] | number[][] }[];
  outputs?: { name: string }[];
}

/** Minimal client: GETs for health and metadata, POST infer, errors as the spec's {"error": string}. */
class V2Client {
  constructor(private readonly base: string) {}
  async live(): Promise<boolean> {
    return (await fetch(`${this.base}/v2/health/live`)).status === 200;
  }
  async ready(model?: string): Promise<boolean> {
    return (await fetch(model ? `${this.base}/v2/models/${model}/ready` : `${this.base}/v2/health/ready`)).status === 200;
  }
  async metadata(
    model: string,
  ): Promise<{ name: string; versions: string[]; platform: string; inputs: { name: string; datatype: string; shape: number[] }[] }> {
    return (await fetch(`${this.base}/v2/models/${model}`)).json() as never;
  }
  async infer(model: string, req: InferRequest, version?: string): Promise<{ status: number; body: Record<string, unknown> }> {
    const url = `${this.base}/v2/models/${model}${version ? `/versions/${version}` : ''}/infer`;
    const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(req) });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  }
}

const instances: { runtime: string; proc: Started; client: V2Client; base: string }[] = [];

beforeAll(async () => {
  const onnx = await exportOnnxBundle(path.join(ROOT, 'models/wine-quality/1.0.0'), {
    outDir: path.join(tempDir(), 'onnx'),
    version: '1.0.0-onnx',
  });
  for (const [runtime, bundle] of [
    ['native-forest', 'models/wine-quality/1.0.0'],
    ['onnx', onnx.dir],
  ] as const) {
    const port = await freePort();
    const proc = startCli(['serve', '--bundle', bundle, '--port', String(port), '--drain-delay-ms', '0', '--log-level', 'warn']);
    const base = `http://127.0.0.1:${port}`;
    instances.push({ runtime, proc, client: new V2Client(base), base });
    await waitForHttp(`${base}/v2/health/ready`, { proc, timeoutMs: 60_000 });
  }
}, 120_000);

afterAll(async () => {
  for (const i of instances) await stopProcess(i.proc);
});

const rows = [WINE_FEATURES.map((f) => WINE_EXAMPLE[f]), [11.2, 0.28, 0.56, 1.9, 0.075, 17, 60, 0.998, 3.16, 0.58, 9.8]];

describe.each(['native-forest', 'onnx'])('V2 client against a %s instance', (runtime) => {
  const inst = () => instances.find((i) => i.runtime === runtime)!;

  it('health and metadata, as a KServe client checks them before inferring', async () => {
    const { client } = inst();
    expect(await client.live()).toBe(true);
    expect(await client.ready()).toBe(true);
    expect(await client.ready('wine-quality')).toBe(true);
    const meta = await client.metadata('wine-quality');
    expect(meta.platform).toBe(runtime === 'onnx' ? 'onnxruntime_onnx' : 'bgserve_native_forest');
    expect(meta.inputs[0].shape).toEqual([-1, 11]);
  });

  it("the spec's example request shape (id, one FP32 tensor, outputs named) gives /predict's answers", async () => {
    const { client, base } = inst();
    // As in the protocol's example: {"id": "42", "inputs": [{"name": "input0", "shape": [2, 2], "datatype": "UINT32", "data": [1, 2, 3, 4]}], "outputs": [{"name": "output0"}]}
    const req: InferRequest = {
      id: '42',
      inputs: [{ name: 'input0', shape: [2, 11], datatype: 'FP32', data: rows.flat() }],
      outputs: [{ name: 'predict' }],
    };
    const { status, body } = await client.infer('wine-quality', req);
    expect(status).toBe(200);
    const want: number[] = [];
    for (const r of rows) {
      const res = await fetch(`${base}/predict`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(Object.fromEntries(WINE_FEATURES.map((f, j) => [f, r[j]]))),
      });
      want.push(((await res.json()) as { prediction: number }).prediction);
    }
    expect(body).toEqual({
      model_name: 'wine-quality',
      model_version: runtime === 'onnx' ? '1.0.0-onnx' : '1.0.0',
      id: '42',
      outputs: [{ name: 'predict', shape: [2, 1], datatype: 'FP32', data: want.map(Math.fround) }],
    });
  });

  it('a named-tensor request (one [N] FP64 tensor per feature) and the error shape of the spec', async () => {
    const { client } = inst();
    const req: InferRequest = {
      inputs: WINE_FEATURES.map((f, j) => ({ name: f, shape: [2], datatype: 'FP64', data: rows.map((r) => r[j]) })),
    };
    const ok = await client.infer('wine-quality', req);
    expect(ok.status).toBe(200);
    expect((ok.body.outputs as { shape: number[] }[])[0].shape).toEqual([2]);
    const bad = await client.infer('wine-quality', {
      inputs: [{ name: 'input0', shape: [2, 10], datatype: 'FP32', data: rows.map((r) => r.slice(1)) }],
    });
    expect(bad).toEqual({
      status: 400,
      body: { error: `input 'input0': shape [2, 10] must be [N, 11] (columns: ${WINE_FEATURES.join(', ')})` },
    });
    const missing = await client.infer('wine-quality', req, '0.0.0');
    expect(missing.status).toBe(404);
  });
});
