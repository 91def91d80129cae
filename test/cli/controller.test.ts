import { describe, expect, it } from 'vitest';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { GOOD_BUNDLE } from '../controller/bundles.js';
import { writeRelease } from '../stack/release-log.js';
import { freePort, startCli, stopProcess, waitForHttp, type Started } from '../support/processes.js';
import { runController, upstreamOf, type ControllerCliOptions } from '../../src/cli/controller.js';
import { EXTERNAL_NGINX_LISTEN, EXTERNAL_NGINX_PATHS } from '../../src/traffic/nginx-entry.js';

describe('bgserve controller options', () => {
  it('takes instance URLs as router upstreams', () => {
    expect(upstreamOf('http://mlservice_blue:8000')).toEqual({ host: 'mlservice_blue', port: 8000 });
    expect(upstreamOf('http://bgserve-green')).toEqual({ host: 'bgserve-green', port: 80 });
    expect(() => upstreamOf('https://blue:8000')).toThrow(/over http/);
    expect(() => upstreamOf('blue:8000')).toThrow(/over http|not a URL/);
  });

  it('refuses --router nginx without the files and URL it drives nginx through, naming them', async () => {
    const stateDir = await mkdtemp(path.join(os.tmpdir(), 'bgserve-controller-'));
    try {
      const opts: ControllerCliOptions = {
        host: '127.0.0.1',
        port: 0,
        router: 'nginx',
        routerPort: 0,
        blueUrl: 'http://127.0.0.1:1',
        greenUrl: 'http://127.0.0.1:2',
        stateDir,
        nginxConfig: path.join(stateDir, 'nginx.conf'),
        nginxListen: EXTERNAL_NGINX_LISTEN,
        nginxPid: EXTERNAL_NGINX_PATHS.pid,
        nginxErrorLog: EXTERNAL_NGINX_PATHS.errorLog,
        nginxTempDir: EXTERNAL_NGINX_PATHS.tempDir,
        nginxTestCommand: 'true',
        nginxReloadCommand: 'true',
      };
      await expect(runController(opts)).rejects.toThrow('--router nginx needs --nginx-live-dir, --nginx-check-url');
      await expect(runController({ ...opts, router: 'haproxy' })).rejects.toThrow('--router must be embedded or nginx');
    } finally {
      await rm(stateDir, { recursive: true, force: true });
    }
  });
});

/**
 * `bgserve controller` starts its router on the traffic the release log says, before any request (issue 10,
 * item 4): here the log says 1.1.0 was promoted to green, and the controller's reconcile is held up (green's
 * /health answers after 1.5 s), so any request the router answered on its own default (all on blue) would show.
 */
describe('bgserve controller on a state dir whose release log promoted green', () => {
  it('routes the very first requests to green, before the reconcile', async () => {
    const stateDir = await mkdtemp(path.join(os.tmpdir(), 'bgserve-controller-'));
    const servers: http.Server[] = [];
    let controller: Started | undefined;
    try {
      const release = await writeRelease(stateDir, GOOD_BUNDLE, { stableColor: 'blue', status: 'succeeded' });
      await writeFile(path.join(stateDir, 'admin-token'), 'controller-test-admin-token\n', { mode: 0o600 });
      const instance = async (color: 'blue' | 'green', healthDelayMs: number): Promise<string> => {
        const model = {
          name: 'wine-quality',
          version: color === 'green' ? '1.1.0' : '1.0.0',
          sha256: color === 'green' ? release.spec.sha256 : 'old',
          format: 'forest',
        };
        const server = http.createServer((req, res) => {
          const answer = (body: unknown) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
          req.resume();
          if (req.url === '/health') setTimeout(() => answer({ status: 'ok', color, model }), healthDelayMs);
          else if (req.url === '/ready') answer({ ready: true });
          else answer({ prediction: 5, color, model });
        });
        servers.push(server);
        await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
        return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      };
      const [blueUrl, greenUrl] = [await instance('blue', 0), await instance('green', 1_500)];
      const [controlPort, routerPort] = [await freePort(), await freePort()];
      controller = startCli([
        'controller',
        '--blue-url',
        blueUrl,
        '--green-url',
        greenUrl,
        '--port',
        String(controlPort),
        '--router-port',
        String(routerPort),
        '--state-dir',
        stateDir,
      ]);
      const colors: string[] = [];
      const deadline = Date.now() + 30_000;
      while (colors.length < 20 && Date.now() < deadline) {
        if (controller.child.exitCode !== null) throw new Error(controller.output());
        try {
          const res = await fetch(`http://127.0.0.1:${routerPort}/predict`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: '{}',
          });
          colors.push(((await res.json()) as { color: string }).color);
        } catch {
          await new Promise((r) => setTimeout(r, 10));
        }
      }
      expect(colors).toEqual(Array(20).fill('green'));
      await waitForHttp(`http://127.0.0.1:${controlPort}/healthz`, { proc: controller });
      expect(await stopProcess(controller)).toBe(0);
    } finally {
      if (controller) await stopProcess(controller);
      for (const s of servers) s.close();
      await rm(stateDir, { recursive: true, force: true });
    }
  }, 60_000);
});
