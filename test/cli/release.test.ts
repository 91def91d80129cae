/** `bgserve deploy --wait` over a real local stack: it must never hang a script on a release that waits for a person. */
import { describe, it, expect, afterAll } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startCli, stopAll, stopProcess, waitForHttp, ROOT, freeUpPorts, upArgv } from '../support/processes.js';

const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bgserve-cli-release-'));

afterAll(async () => {
  await stopAll();
  fs.rmSync(stateDir, { recursive: true, force: true });
});

describe('bgserve deploy --wait', () => {
  it('exits 3 with the reason when a release without traffic pauses, and `abort` then ends it with traffic back on the stable color', async () => {
    const ports = await freeUpPorts();
    const up = startCli(upArgv(ports, stateDir));
    try {
      await waitForHttp(`http://127.0.0.1:${ports.control}/healthz`, { proc: up, timeoutMs: 60_000 });
      const env = { BGSERVE_CONTROL_URL: `http://127.0.0.1:${ports.control}` };
      // No client sends traffic: the post-switch analysis stays inconclusive and the release pauses.
      const deploy = startCli(
        [
          'deploy',
          path.join(ROOT, 'models/wine-quality/1.1.0'),
          '--analysis',
          '1s',
          '--inconclusive-grace',
          '1s',
          '--wait',
          '--state-dir',
          stateDir,
        ],
        env,
      );
      const code = await new Promise((resolve) => deploy.child.once('exit', resolve));
      expect(code, deploy.output()).toBe(3);
      expect(deploy.output()).toMatch(/analysis-inconclusive/);
      expect(deploy.output()).toMatch(/status +PAUSED/);

      const abort = startCli(['abort', '--json', '--state-dir', stateDir], env);
      expect(await new Promise((resolve) => abort.child.once('exit', resolve)), abort.output()).toBe(0);
      expect(JSON.parse(abort.output()).release.status).toBe('aborted');
      const status = startCli(['status', '--json', '--state-dir', stateDir], env);
      expect(await new Promise((resolve) => status.child.once('exit', resolve)), status.output()).toBe(0);
      expect(JSON.parse(status.output()).weights).toEqual({ blue: 100, green: 0 });
    } finally {
      expect(await stopProcess(up, 20_000)).toBe(0);
    }
  });
});
