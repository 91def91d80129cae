import { describe, it, expect, afterAll } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { ReleaseStore, replay, StoreError } from '../../src/store/release-store.js';
import { createRelease, step } from '../../src/release/engine.js';
import { buildSpec } from '../../src/release/spec.js';
import { ROOT } from '../support/processes.js';

const dirs: string[] = [];
function tmpFile(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bgserve-store-'));
  dirs.push(dir);
  return path.join(dir, 'releases.jsonl');
}
afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

function spec(id: string) {
  return buildSpec({ id, bundle: 'models/wine-quality/1.1.0', modelName: 'wine-quality', version: '1.1.0', sha256: 'abc', stableColor: 'blue' });
}

describe('release store', () => {
  it('replays releases and events in order after reopening', () => {
    const file = tmpFile();
    const store = ReleaseStore.open(file);
    const first = createRelease(spec('r1'), 1);
    store.save(first.state, first.events);
    const loaded = step(first.state, { now: 2, observation: { kind: 'load', color: 'green', ok: true, sha256: 'abc' } });
    store.save(loaded.state, loaded.events);
    const second = createRelease(spec('r2'), 3);
    store.save(second.state, second.events);
    store.close();

    const again = ReleaseStore.open(file);
    expect(again.recoveredBytes).toBe(0);
    expect(again.get('r1')).toEqual(loaded.state);
    expect(again.latest()?.spec.id).toBe('r2');
    expect(again.list().map((r) => r.spec.id)).toEqual(['r2', 'r1']);
    expect(again.events('r1').map((e) => e.type)).toEqual([...first.events, ...loaded.events].map((e) => e.type));
    again.close();
  });

  it('drops a torn last line, and later appends start on a fresh line', () => {
    const file = tmpFile();
    const store = ReleaseStore.open(file);
    const first = createRelease(spec('r1'), 1);
    store.save(first.state, first.events);
    store.close();
    const intact = fs.statSync(file).size;
    fs.appendFileSync(file, '{"kind":"release","state":{"spec":{"id":"r9"');

    const reopened = ReleaseStore.open(file);
    expect(reopened.recoveredBytes).toBeGreaterThan(0);
    expect(fs.statSync(file).size).toBe(intact);
    expect(reopened.get('r9')).toBeUndefined();
    const second = createRelease(spec('r2'), 2);
    reopened.save(second.state, second.events);
    reopened.close();
    expect(ReleaseStore.open(file).list().map((r) => r.spec.id)).toEqual(['r2', 'r1']);
  });

  it('refuses a log damaged before its last line', () => {
    expect(() => replay('{"kind":"event","event":{}}\nnot json\n{"kind":"event","event":{}}\n')).toThrow(StoreError);
  });

  it('survives kill -9 of a writer mid-stream: every record is intact or the torn tail is dropped', async () => {
    const file = tmpFile();
    const script = `
      import { ReleaseStore } from ${JSON.stringify(path.join(ROOT, 'src/store/release-store.ts'))};
      import { createRelease } from ${JSON.stringify(path.join(ROOT, 'src/release/engine.ts'))};
      import { buildSpec } from ${JSON.stringify(path.join(ROOT, 'src/release/spec.ts'))};
      const store = ReleaseStore.open(${JSON.stringify(file)});
      for (let i = 0; ; i++) {
        const r = createRelease(buildSpec({ id: 'r' + i, bundle: 'b', modelName: 'm', version: '1', sha256: 's', stableColor: 'blue' }), i);
        store.save(r.state, r.events);
        if (i === 20) process.stdout.write('ready\\n');
      }`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    await new Promise((r) => setTimeout(r, 150));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));

    const store = ReleaseStore.open(file);
    const ids = store.list(1_000_000).map((r) => r.spec.id);
    expect(ids.length).toBeGreaterThan(20);
    // Releases are contiguous from r0: nothing in the middle was lost.
    expect(new Set(ids)).toEqual(new Set(ids.map((_, i) => `r${i}`)));
    store.close();
  });
});
