/**
 * The demo a newcomer follows, with real processes: `up`, `demo-bundles` into the state dir (a bundle root),
 * `load` running while a corrupt bundle is refused (exit 2 with --wait), a shifted one is rolled back by the
 * live analysis, an erroring one (a real model that overflows on some wines) passes its smoke test and is rolled
 * back by the error-ratio check, and a good one is promoted; the load saw every answer by color and version, and
 * no failure (the router replays the erroring color's 500s on the stable one); a slow one (the same predictions,
 * milliseconds per request) is rolled back by the latency checks.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { GOOD_BUNDLE } from '../controller/bundles.js';
import { freePort, startCli, stopAll, stopProcess } from '../support/processes.js';
import { finished, startUp } from './local-up.js';

afterAll(stopAll);

describe('bgserve load and demo-bundles', () => {
  it('drives a refused, three rolled-back and a promoted release under load, reporting answers per color and version', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'bgserve-demo-'));
    try {
      const up = await startUp(dir);
      const made = await finished(startCli(['demo-bundles', path.join(dir, 'demo')]));
      expect(made.code).toBe(0);
      expect(made.out).toContain('1.0.1-corrupt');
      expect(made.out).toContain('1.0.1-shifted');
      expect(made.out).toContain('1.0.1-erroring');
      expect(made.out).toContain('1.0.1-slow');

      const load = startCli(['load', '--url', up.routerUrl, '--rate', '60', '--duration', '90s', '--every', '2s', '--fail-on-error']);

      const corrupt = await finished(startCli(['deploy', path.join(dir, 'demo/1.0.1-corrupt'), '--wait', ...up.cli]));
      expect(corrupt.out).toContain('checksum');
      expect(corrupt.code).toBe(2);

      const shifted = await finished(
        startCli([
          'deploy',
          path.join(dir, 'demo/1.0.1-shifted'),
          '--steps',
          '50',
          '--golden-margin',
          '2',
          '--analysis',
          '5s',
          '--wait',
          ...up.cli,
        ]),
      );
      expect(shifted.out).toContain('ROLLED_BACK');
      expect(shifted.code).toBe(2);

      const erroring = await finished(
        startCli(['deploy', path.join(dir, 'demo/1.0.1-erroring'), '--steps', '20', '--analysis', '5s', '--wait', ...up.cli]),
      );
      expect(erroring.out).toContain('smoke-passed');
      expect(erroring.out).toMatch(/error-ratio/);
      expect(erroring.out).toContain('ROLLED_BACK');
      expect(erroring.code).toBe(2);

      const slow = await finished(
        startCli(['deploy', path.join(dir, 'demo/1.0.1-slow'), '--steps', '20', '--analysis', '5s', '--wait', ...up.cli]),
      );
      expect(slow.out).toContain('smoke-passed');
      expect(slow.out).toMatch(/latency-p9[59][^\n]*fail|fail[^\n]*latency-p9[59]/i);
      expect(slow.out).toContain('ROLLED_BACK');
      expect(slow.code).toBe(2);

      const good = await finished(startCli(['deploy', GOOD_BUNDLE, '--analysis', '6s', '--wait', ...up.cli]));
      expect(good.out).toContain('SUCCEEDED');
      expect(good.code).toBe(0);

      // Stopped early (SIGINT, as Ctrl-C): it still prints its summary and exits on its own.
      load.child.kill('SIGINT');
      const report = await finished(load);
      expect(report.code).toBe(0);
      expect(report.out).toMatch(/load: +\d+\.\ds +sent \d+/);
      expect(report.out).toContain('load: done:');
      expect(report.out).toMatch(/failed 0 /);
      expect(report.out).toMatch(/^ {2}blue 1\.0\.0 +\d+$/m);
      expect(report.out).toMatch(/^ {2}green 1\.0\.1-shifted +\d+$/m);
      expect(report.out).toMatch(/^ {2}green 1\.0\.1-erroring +\d+$/m);
      expect(report.out).toMatch(/^ {2}green 1\.0\.1-slow +\d+$/m);
      expect(report.out).toMatch(/^ {2}green 1\.1\.0 +\d+$/m);
      await stopProcess(up.proc);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 200_000);

  it('is bounded in time and rate, and --fail-on-error exits 1 when requests fail', async () => {
    const dead = `http://127.0.0.1:${await freePort()}`;
    const started = Date.now();
    const failing = await finished(startCli(['load', '--url', dead, '--rate', '10', '--duration', '1s', '--fail-on-error']));
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(failing.code).toBe(1);
    expect(failing.out).toMatch(/sent 10 +ok 0 +failed 10/);
    expect(failing.out).toContain('ECONNREFUSED');

    const tolerated = await finished(startCli(['load', '--url', dead, '--rate', '10', '--duration', '1s']));
    expect(tolerated.code).toBe(0);

    const tooFast = await finished(startCli(['load', '--rate', '100000', '--duration', '1s']));
    expect(tooFast.code).not.toBe(0);
    expect(tooFast.out).toContain('--rate');
    const tooLong = await finished(startCli(['load', '--duration', '2h']));
    expect(tooLong.code).not.toBe(0);
    expect(tooLong.out).toContain('at most 60m');
  }, 60_000);
});
