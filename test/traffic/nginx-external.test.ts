import { spawn } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { request } from 'undici';
import { startNginxDriver } from '../../src/traffic/nginx-driver.js';
import { freePort, stopProcess, waitForHttp } from '../support/processes.js';
import { startColorUpstream } from './fixtures.js';

describe('nginx driver (external nginx: config path and reload command given)', () => {
  it('takes over a running nginx, switches through its reload command and leaves it running', async () => {
    const prefix = await mkdtemp(path.join(tmpdir(), 'bgserve-nginx-ext-'));
    // An nginx started as root runs its workers as nobody: they must reach the live files.
    await chmod(prefix, 0o755);
    const blue = await startColorUpstream('blue');
    const green = await startColorUpstream('green');
    const port = await freePort();
    const conf = path.join(prefix, 'nginx.conf');
    // Its folders are the operator's: the driver creates only the live files' (it writes them).
    await mkdir(path.join(prefix, 'logs'));
    await mkdir(path.join(prefix, 'temp'));
    // What someone else runs: an nginx answering 418 until bgserve's configuration replaces this one.
    await writeFile(
      conf,
      `pid ${prefix}/nginx.pid; error_log ${prefix}/logs/error.log; events {} http { access_log off; server { listen 127.0.0.1:${port}; location / { return 418; } } }\n`,
    );
    const nginx = spawn('nginx', ['-p', prefix, '-c', conf, '-g', 'daemon off;'], { stdio: 'ignore' });
    try {
      await waitForHttp(`http://127.0.0.1:${port}/`, { status: 418 });
      const driver = await startNginxDriver({
        listen: { host: '127.0.0.1', port },
        upstreams: { blue: [{ host: '127.0.0.1', port: blue.port }], green: [{ host: '127.0.0.1', port: green.port }] },
        mode: {
          kind: 'external',
          configPath: conf,
          paths: {
            pid: `${prefix}/nginx.pid`,
            errorLog: `${prefix}/logs/error.log`,
            accessLog: null,
            tempDir: `${prefix}/temp`,
            liveDir: `${prefix}/live`,
          },
          testCommand: ['nginx', '-t', '-q', '-p', prefix, '-c', '{config}'],
          reloadCommand: ['nginx', '-s', 'reload', '-p', prefix, '-c', conf],
        },
      });
      const color = async () => {
        const res = await request(`http://127.0.0.1:${port}/predict`, {
          method: 'POST',
          body: '{}',
          headers: { 'content-type': 'application/json' },
        });
        return ((await res.body.json()) as { color: string }).color;
      };
      expect(await color()).toBe('blue');
      await driver.setWeights({ blue: 0, green: 100 });
      expect(await color()).toBe('green');
      expect(await readFile(conf, 'utf8')).toContain('upstream mlservice_green');
      await driver.close();
      expect(nginx.exitCode).toBeNull(); // not ours to stop
    } finally {
      await stopProcess(nginx);
      await blue.close();
      await green.close();
      await rm(prefix, { recursive: true, force: true });
    }
  });
});
