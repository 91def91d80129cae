import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { commandArgv, identify } from '../../src/stack/proc.js';
import { readStackRecord, StackRecorder, stackRecordPath } from '../../src/stack/stack-record.js';

const dirs: string[] = [];
afterAll(async () => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

async function stateDir(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'bgserve-record-'));
  dirs.push(dir);
  return dir;
}

describe('stack.json', () => {
  it('is owned by this process, follows what is added, and is gone after a clean stop', async () => {
    const dir = await stateDir();
    const file = stackRecordPath(dir);
    expect(file).toBe(path.join(dir, 'stack.json'));
    const recorder = await StackRecorder.open(file);
    const written = await readStackRecord(file);
    expect(written?.owner).toMatchObject({ ...(await identify(process.pid)), argv: process.argv });
    expect(written?.processes).toEqual({});

    // Concurrent adds (both colors spawn together) both land: writes are serialized, each file whole.
    await Promise.all([
      recorder.add({
        role: 'blue',
        pid: process.pid,
        host: '127.0.0.1',
        port: 8001,
        argv: ['serve', '--color', 'blue'],
        stopSignal: 'SIGTERM',
      }),
      recorder.add({ role: 'nginx', pid: process.pid, host: '127.0.0.1', port: 8080, stopSignal: 'SIGQUIT' }),
    ]);
    const both = await readStackRecord(file);
    expect(both?.processes.blue).toMatchObject({
      pid: process.pid,
      port: 8001,
      argv: ['serve', '--color', 'blue'],
      startTime: expect.any(Number),
    });
    // Without argv, the command line comes from /proc.
    expect(both?.processes.nginx?.argv).toEqual(await commandArgv(process.pid));
    expect(await readdir(dir)).toEqual(['stack.json']);

    await recorder.remove();
    expect(existsSync(file)).toBe(false);
    // A late write after the stop does not bring it back.
    await recorder.add({ role: 'green', pid: process.pid, host: '127.0.0.1', port: 8002, argv: [], stopSignal: 'SIGTERM' });
    expect(existsSync(file)).toBe(false);
  });

  it('is absent (null) in a fresh state dir, and refused with a clear message when it is not a record', async () => {
    const dir = await stateDir();
    const file = stackRecordPath(dir);
    expect(await readStackRecord(file)).toBeNull();
    await writeFile(file, '{"version": 1, "owner": {"pid": 12');
    await expect(readStackRecord(file)).rejects.toThrow(`${file} is not a bgserve stack record (version 1)`);
    await writeFile(file, '{"version": 2}');
    await expect(readStackRecord(file)).rejects.toThrow(/not a bgserve stack record/);
  });
});
