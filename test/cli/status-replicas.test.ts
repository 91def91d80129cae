/** `bgserve status` over colors of several replicas (issue 13): one line per replica, and replicas that disagree said. */
import { describe, expect, it } from 'vitest';
import { formatStatus } from '../../src/cli/traffic.js';
import type { ColorStatus, ReplicaStatus, StatusReport } from '../../src/control/traffic-routes.js';

const replica = (port: number, version: string, over: Partial<ReplicaStatus> = {}): ReplicaStatus => ({
  address: `127.0.0.1:${port}`,
  url: `http://127.0.0.1:${port}`,
  model: { name: 'wine-quality', version },
  ready: true,
  healthy: true,
  rps: 12.5,
  process: { pid: port - 9000, running: true, exitCode: null, signal: null },
  ...over,
});

const color = (weight: number, replicas: ReplicaStatus[]): ColorStatus => ({
  url: replicas[0].url,
  weight,
  healthy: true,
  lastError: null,
  ok: true,
  state: 'serving',
  model: replicas[0].model,
  error: null,
  process: null,
  replicas,
});

const report: StatusReport = {
  router: { kind: 'embedded', url: 'http://127.0.0.1:8080' },
  weights: { blue: 100, green: 0 },
  active: 'blue',
  mirror: { target: null, percent: 0 },
  sticky: null,
  generation: 1,
  colors: {
    blue: color(100, [replica(9001, '1.0.0')]),
    green: color(0, [
      replica(9004, '1.1.0'),
      replica(9005, '1.1.0', { ready: false, healthy: false, rps: null }),
      replica(9006, '1.0.0', { rps: 0 }),
    ]),
  },
};

describe('formatStatus with replicas', () => {
  it('prints each replica of a color of several, with its version, readiness and req/s', () => {
    const text = formatStatus(report);
    expect(text).toMatch(/^ {2}127\.0\.0\.1:9004\s+1\.1\.0\s+ready\s+12\.5 req\/s\s+pid 4$/m);
    expect(text).toMatch(/^ {2}127\.0\.0\.1:9005\s+1\.1\.0\s+NOT READY, out of rotation\s+- req\/s\s+pid 5$/m);
    expect(text).toMatch(/^ {2}127\.0\.0\.1:9006\s+1\.0\.0\s+ready\s+0 req\/s\s+pid 6$/m);
    expect(text).toContain('green: replicas serve different versions (1.1.0, 1.0.0)');
    // A color of one instance keeps its single line.
    expect(text).not.toMatch(/^ {2}127\.0\.0\.1:9001/m);
  });
});
