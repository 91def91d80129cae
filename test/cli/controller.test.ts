import { describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { EXTERNAL_NGINX_LISTEN, EXTERNAL_NGINX_PATHS, runController, upstreamOf, type ControllerCliOptions } from '../../src/cli/controller.js';

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
