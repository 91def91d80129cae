import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { instanceSpecs, serveArgv, stackBundleRoots, startInstance } from '../../src/stack/instances.js';
import { freePort } from '../support/processes.js';
import { TSX_CLI } from '../traffic/scenarios.js';

describe('instance supervisor', () => {
  it('reports an instance that exits before it is ready, with its log', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'bgserve-inst-'));
    try {
      const instance = await startInstance(
        {
          color: 'blue',
          host: '127.0.0.1',
          port: await freePort(),
          bundle: path.join(dir, 'no-such-bundle'),
          logFile: path.join(dir, 'blue.log'),
        },
        TSX_CLI,
      );
      await expect(instance.waitReady(30_000)).rejects.toThrow(/blue exited \(code 1\) before it was ready:[\s\S]*no-such-bundle/);
      expect(instance.info()).toMatchObject({ running: false, exitCode: 1 });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('instance command line: bundle roots', () => {
  it("a stack's instances may load from models/, the state dir and the roots the user adds, each once", () => {
    expect(stackBundleRoots('.bgserve', ['extra', '/abs/bundles', 'models'], '/srv/app')).toEqual([
      '/srv/app/models',
      '/srv/app/.bgserve',
      '/srv/app/extra',
      '/abs/bundles',
    ]);
  });

  it('serve gets one --bundle-root per root, before the extra arguments', () => {
    const specs = instanceSpecs({
      host: '127.0.0.1',
      ports: { blue: 8001, green: 8002 },
      bundle: 'models/wine-quality/1.0.0',
      logDir: '/state/logs',
      bundleRoots: ['/srv/app/models', '/state'],
      extraArgs: ['--log-level', 'warn'],
    });
    const argv = serveArgv(specs.green, { command: 'node', args: ['cli.js'] });
    expect(argv).toEqual([
      'node',
      'cli.js',
      'serve',
      '--bundle',
      'models/wine-quality/1.0.0',
      '--port',
      '8002',
      '--host',
      '127.0.0.1',
      '--color',
      'green',
      '--bundle-root',
      '/srv/app/models',
      '--bundle-root',
      '/state',
      '--log-level',
      'warn',
    ]);
  });
});
