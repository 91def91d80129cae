import { describe, expect, it } from 'vitest';
import { formatStatus } from '../../src/cli/traffic.js';
import { formatReleaseSummary } from '../../src/cli/release.js';
import type { StatusReport } from '../../src/control/traffic-routes.js';
import { releaseTraffic } from '../../src/control/traffic-guard.js';
import { createRelease, step } from '../../src/release/engine.js';
import { buildSpec } from '../../src/release/spec.js';

const report: StatusReport = {
  router: { kind: 'nginx', url: 'http://127.0.0.1:8080' },
  weights: { blue: 0, green: 100 },
  active: 'green',
  mirror: { target: 'blue', percent: 20 },
  sticky: { header: 'x-user' },
  generation: 4,
  colors: {
    blue: {
      url: 'http://127.0.0.1:8001',
      weight: 0,
      healthy: false,
      lastError: 'GET /ready failed: ECONNREFUSED connect ECONNREFUSED 127.0.0.1:8001',
      ok: false,
      state: null,
      model: null,
      error: 'ECONNREFUSED',
      process: { pid: 41, running: false, exitCode: null, signal: 'SIGKILL' },
    },
    green: {
      url: 'http://127.0.0.1:8002',
      weight: 100,
      healthy: true,
      lastError: null,
      ok: true,
      state: 'serving',
      model: { name: 'wine-quality', version: '1.1.0' },
      error: null,
      process: { pid: 42, running: true, exitCode: null, signal: null },
    },
  },
};

describe('bgserve status output', () => {
  it('shows the split, the mirror, one line per color and what is wrong', () => {
    const text = formatStatus(report);
    expect(text).toMatch(/^router\s+nginx at http:\/\/127.0.0.1:8080 \(config generation 4\)$/m);
    expect(text).toMatch(/^weights\s+blue 0%\s+green 100%\s+\(all on green\)$/m);
    expect(text).toMatch(/^mirror\s+20% copied to blue \(answers discarded\)$/m);
    expect(text).toMatch(/^sticky\s+by header x-user$/m);
    expect(text).toMatch(/^blue\s+0%\s+UNHEALTHY\s+exited\s+-\s+41\s+http:\/\/127.0.0.1:8001$/m);
    expect(text).toMatch(/^green\s+100%\s+healthy\s+serving\s+wine-quality 1.1.0\s+42\s+http:\/\/127.0.0.1:8002$/m);
    expect(text).toContain('blue: process exited (signal SIGKILL)');
    expect(text).toContain('blue: router saw GET /ready failed');
  });
});

describe('bgserve status and a release', () => {
  const spec = buildSpec({ id: 'r-1', bundle: 'b', modelName: 'wine-quality', version: '1.1.0', sha256: 's', stableColor: 'blue' });
  const started = createRelease(spec, 1);
  // Promoted once its checks passed: succeeded, all traffic meant for green.
  const loaded = step(started.state, { now: 2, observation: { kind: 'load', color: 'green', ok: true, sha256: 's' } });
  const smoked = step(loaded.state, {
    now: 3,
    observation: {
      kind: 'smoke',
      color: 'green',
      result: { ok: true, failures: [], rows: 0, rmse: null, agreement: null, meanAbsDelta: null },
    },
  });
  const succeeded = step(smoked.state, { now: 4, command: 'promote' }).state;
  const traffic = (blue: number) => ({
    weights: { blue, green: 100 - blue },
    mirror: { target: null, percent: 0 },
    sticky: null,
    generation: 1,
  });

  it('never lets a success stand unqualified while the router disagrees with it', () => {
    expect(succeeded.status).toBe('succeeded');
    const moved = releaseTraffic(succeeded, traffic(30));
    expect(moved).toMatchObject({ agrees: false, desired: { weights: { blue: 0, green: 100 } } });
    const text = formatStatus({ ...report, weights: { blue: 30, green: 70 }, active: null, releaseTraffic: moved });
    expect(text).toMatch(
      /^traffic\s+DISAGREES: live blue 30 \/ green 70, but release r-1 \(succeeded\) wants blue 0 \/ green 100: traffic was moved outside the release$/m,
    );
    expect(formatReleaseSummary(succeeded, moved)).toMatch(
      /^status\s+SUCCEEDED \(done\): .*\[BUT live traffic disagrees with it: live blue 30/m,
    );

    const agreeing = releaseTraffic(succeeded, traffic(0));
    expect(agreeing).toMatchObject({ agrees: true, message: null });
    expect(formatStatus({ ...report, releaseTraffic: agreeing })).not.toMatch(/DISAGREES/);
    expect(formatReleaseSummary(succeeded, agreeing)).not.toMatch(/BUT/);
  });

  it('names a mirror the release did not ask for', () => {
    const mirrored = releaseTraffic(succeeded, { ...traffic(0), mirror: { target: 'blue', percent: 20 } });
    expect(mirrored.agrees).toBe(false);
    expect(mirrored.message).toContain(
      'live blue 0 / green 100, mirror 20% to blue, but release r-1 (succeeded) wants blue 0 / green 100, no mirror',
    );
  });

  it('lists the damaged lines of the release log, the first five and a count of the rest', () => {
    const damage = Array.from({ length: 7 }, (_, i) => ({
      line: i + 3,
      problem: i === 0 ? 'not valid JSON: {"ki' : 'state must be object',
    }));
    const text = formatStatus({ ...report, releaseLog: { file: '/srv/state/releases.jsonl', damage } });
    expect(text).toMatch(/^log\s+7 damaged records skipped in \/srv\/state\/releases.jsonl$/m);
    expect(text).toMatch(/^\s+line 3: not valid JSON: \{"ki$/m);
    expect(text).toMatch(/^\s+line 7: state must be object$/m);
    expect(text).not.toMatch(/line 8:/);
    expect(text).toMatch(/^\s+\.\.\. and 2 more$/m);
    expect(formatStatus({ ...report, releaseLog: { file: '/x', damage: [] } })).not.toMatch(/^log/m);
  });
});
