import { describe, expect, it } from 'vitest';
import { formatStatus } from '../../src/cli/traffic.js';
import type { StatusReport } from '../../src/control/traffic-routes.js';

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
