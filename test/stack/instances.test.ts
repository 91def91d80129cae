import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { startInstance } from '../../src/stack/instances.js';
import { freePort } from '../support/processes.js';
import { TSX_CLI } from '../traffic/scenarios.js';

describe('instance supervisor', () => {
  it('reports an instance that exits before it is ready, with its log', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'bgserve-inst-'));
    try {
      const instance = await startInstance(
        { color: 'blue', host: '127.0.0.1', port: await freePort(), bundle: path.join(dir, 'no-such-bundle'), logFile: path.join(dir, 'blue.log') },
        TSX_CLI,
      );
      await expect(instance.waitReady(30_000)).rejects.toThrow(/blue exited \(code 1\) before it was ready:[\s\S]*no-such-bundle/);
      expect(instance.info()).toMatchObject({ running: false, exitCode: 1 });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
