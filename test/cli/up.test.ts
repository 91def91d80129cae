/**
 * `up` says what it resumes: a first start prints no "resumed" paragraph and commands that work as shown
 * (`npx bgserve ...`); a restart after a promoted release prints the weights, each color's model and the
 * release it reconciled; `--fresh` archives the release log (kept, renamed) and serves 100% blue on the
 * default bundle.
 */
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { request } from 'undici';
import { afterAll, describe, expect, it } from 'vitest';
import { WINE_EXAMPLE } from '../../src/model/wine.js';
import { GOOD_BUNDLE } from '../controller/bundles.js';
import { startCli, stopAll, stopProcess } from '../support/processes.js';
import { finished, startUp, type UpHandle } from './local-up.js';

afterAll(stopAll);

async function predict(up: UpHandle): Promise<{ color: string; model: { version: string } }> {
  const res = await request(`${up.routerUrl}/predict`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(WINE_EXAMPLE),
  });
  return (await res.body.json()) as { color: string; model: { version: string } };
}

describe('bgserve up: restored state and --fresh', () => {
  it('prints what a restart resumed, and --fresh starts 100% blue with the release log archived', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'bgserve-up-state-'));
    try {
      const first = await startUp(dir);
      expect(first.proc.output()).toContain('Try `npx bgserve status`');
      expect(first.proc.output()).not.toContain('resumed the state');
      const deployed = await finished(startCli(['deploy', GOOD_BUNDLE, ...first.cli]));
      expect(deployed.code).toBe(0);
      const promoted = await finished(startCli(['promote', ...first.cli]));
      expect(promoted.code).toBe(0);
      const releaseId = /release +(r-\S+)/.exec(promoted.out)?.[1];
      expect(releaseId).toBeDefined();
      await stopProcess(first.proc);

      const second = await startUp(dir);
      const out = second.proc.output();
      expect(out).toContain(`resumed the state in ${dir}`);
      expect(out).toMatch(/weights {2}blue 0% {2}green 100%/);
      expect(out).toContain('green wine-quality 1.1.0');
      expect(out).toContain(`last     release ${releaseId}: wine-quality 1.1.0 -> green, succeeded`);
      expect(await predict(second)).toMatchObject({ color: 'green', model: { version: '1.1.0' } });
      const log = await readFile(path.join(dir, 'releases.jsonl'), 'utf8');
      await stopProcess(second.proc);

      const fresh = await startUp(dir, ['--fresh']);
      const freshOut = fresh.proc.output();
      expect(freshOut).not.toContain('resumed the state');
      const archived = (await readdir(dir)).filter((f) => /^releases\.\d{8}T\d{6}Z\.jsonl$/.test(f));
      expect(archived).toHaveLength(1);
      expect(freshOut).toContain(`archived to ${path.join(dir, archived[0])}`);
      expect(await readFile(path.join(dir, archived[0]), 'utf8')).toBe(log);
      expect(freshOut).toContain('weights: 100% blue');
      expect(await predict(fresh)).toMatchObject({ color: 'blue', model: { version: '1.0.0' } });
      const history = await finished(startCli(['history', ...fresh.cli]));
      expect(history.out).toContain('no releases yet');
      await stopProcess(fresh.proc);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 180_000);
});
