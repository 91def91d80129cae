import { describe, it, expect, afterAll } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { ReleaseStore, replay } from '../../src/store/release-store.js';
import { createRelease, step } from '../../src/release/engine.js';
import { buildSpec } from '../../src/release/spec.js';
import { ROOT } from '../support/processes.js';

const dirs: string[] = [];
function tmpFile(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bgserve-store-'));
  dirs.push(dir);
  return path.join(dir, 'releases.jsonl');
}
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function spec(id: string) {
  return buildSpec({
    id,
    bundle: 'models/wine-quality/1.1.0',
    modelName: 'wine-quality',
    version: '1.1.0',
    sha256: 'abc',
    stableColor: 'blue',
  });
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

    const warnings: string[] = [];
    const reopened = ReleaseStore.open(file, { onWarning: (m) => warnings.push(m) });
    expect(reopened.recoveredBytes).toBeGreaterThan(0);
    expect(reopened.damage).toEqual([]);
    expect(warnings).toEqual([expect.stringContaining(`${file}: cut a torn last line`)]);
    expect(fs.statSync(file).size).toBe(intact);
    expect(reopened.get('r9')).toBeUndefined();
    const second = createRelease(spec('r2'), 2);
    reopened.save(second.state, second.events);
    reopened.close();
    expect(
      ReleaseStore.open(file)
        .list()
        .map((r) => r.spec.id),
    ).toEqual(['r2', 'r1']);
  });

  describe('a damaged log', () => {
    /** r1 through loading and smoke, then r2 started: 8 lines, each a whole engine step's record. */
    function healthyLog(): { file: string; lines: string[]; r1Loaded: ReturnType<typeof step>; r2: ReturnType<typeof createRelease> } {
      const file = tmpFile();
      const store = ReleaseStore.open(file);
      const first = createRelease(spec('r1'), 1);
      store.save(first.state, first.events);
      const r1Loaded = step(first.state, { now: 2, observation: { kind: 'load', color: 'green', ok: true, sha256: 'abc' } });
      store.save(r1Loaded.state, r1Loaded.events);
      const r2 = createRelease(spec('r2'), 3);
      store.save(r2.state, r2.events);
      store.close();
      return { file, lines: fs.readFileSync(file, 'utf8').split('\n').slice(0, -1), r1Loaded, r2 };
    }

    function reopen(file: string): { store: ReleaseStore; warnings: string[] } {
      const warnings: string[] = [];
      return { store: ReleaseStore.open(file, { onWarning: (m) => warnings.push(m) }), warnings };
    }

    it('skips an unparsable middle line, names file and line, and opens on the rest', () => {
      const { file, lines, r1Loaded, r2 } = healthyLog();
      const kept = [...lines];
      kept.splice(2, 0, '{"kind":"release","sta\u0000garbage');
      fs.writeFileSync(file, `${kept.join('\n')}\n`);
      const { store, warnings } = reopen(file);
      expect(store.damage).toEqual([{ line: 3, problem: expect.stringMatching(/^not valid JSON/) }]);
      expect(warnings).toEqual([expect.stringContaining(`${file}:3: skipped a damaged record`)]);
      expect(store.get('r1')).toEqual(r1Loaded.state);
      expect(store.latest()).toEqual(r2.state);
      // The damaged line stays for inspection; appends go on after it.
      store.save({ ...r2.state, updatedAt: 9 });
      store.close();
      expect(fs.readFileSync(file, 'utf8')).toContain('garbage');
      expect(ReleaseStore.open(file).latest()?.updatedAt).toBe(9);
    });

    it('skips records of the wrong shape or an unknown kind, each with its line', () => {
      const { file, lines, r1Loaded, r2 } = healthyLog();
      const bad = [
        '{"kind":"release","state":null}',
        '{"kind":"event","event":null}',
        '{"kind":"checkpoint","at":5}',
        '{"kind":"release","state":{"spec":{"id":"r3"},"status":"running"}}',
        '{"kind":"event","event":{"at":1,"releaseId":"r1","type":"exploded","phase":"done","reason":"?"}}',
        '[1,2,3]',
      ];
      // Spread through the log, none of them last.
      const mixed = [lines[0], bad[0], lines[1], bad[1], bad[2], ...lines.slice(2, -1), bad[3], bad[4], bad[5], lines[lines.length - 1]];
      fs.writeFileSync(file, `${mixed.join('\n')}\n`);
      const { store, warnings } = reopen(file);
      expect(store.damage.map((d) => d.line)).toEqual([2, 4, 5, mixed.length - 3, mixed.length - 2, mixed.length - 1]);
      expect(store.damage.map((d) => d.problem)).toEqual([
        expect.stringMatching(/^state /),
        expect.stringMatching(/^event /),
        'unknown record kind "checkpoint"',
        expect.stringMatching(/^state lacks /),
        expect.stringMatching(/^event\.type /),
        'not a JSON object',
      ]);
      expect(warnings).toHaveLength(6);
      expect(warnings[0]).toContain(`${file}:2:`);
      expect(store.get('r3')).toBeUndefined();
      expect(store.get('r1')).toEqual(r1Loaded.state);
      expect(store.latest()).toEqual(r2.state);
      // Every event read back has the shape callers rely on.
      expect(store.events().every((e) => typeof e.type === 'string' && typeof e.releaseId === 'string')).toBe(true);
      expect(store.events('r1')).toHaveLength(lines.filter((l) => l.includes('"kind":"event"') && l.includes('"r1"')).length);
      store.close();
    });

    it('a damaged last release record leaves that release on its previous consistent state', () => {
      const { file, lines, r1Loaded } = healthyLog();
      const broken = JSON.parse(lines.find((l) => l.includes('"kind":"release"') && l.includes('"r2"')) as string);
      broken.state.status = 'exploded';
      const kept = lines.filter((l) => !(l.includes('"kind":"release"') && l.includes('"r2"')));
      fs.writeFileSync(file, [...kept, JSON.stringify(broken), ''].join('\n'));
      const { store } = reopen(file);
      expect(store.damage).toEqual([{ line: kept.length + 1, problem: expect.stringMatching(/^state\.status /) }]);
      expect(store.get('r2')).toBeUndefined();
      expect(store.latest()).toEqual(r1Loaded.state);
      store.close();
    });

    it('replay() reports the damage instead of throwing', () => {
      const out = replay('{"kind":"event","event":{}}\nnot json\n\n{"kind":"event","event":{}}\n');
      expect(out.records).toEqual([]);
      expect(out.damage.map((d) => d.line)).toEqual([1, 2, 4]);
      expect(out.droppedBytes).toBe(0);
    });
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
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
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
