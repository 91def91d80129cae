/**
 * `up --replicas N`'s bookkeeping (issue 13): replicas on consecutive ports per color, each under its own
 * stack.json role (`blue`, `blue-2`...), overlapping ranges refused naming the flag, and a recorded replica
 * judged for adoption as an instance of its color.
 */
import { describe, expect, it } from 'vitest';
import { poolSpecs, serveArgv, specRole } from '../../src/stack/instances.js';
import { judge } from '../../src/stack/reclaim.js';
import { instanceRoles, replicaRole, roleColor, type RecordedProcess } from '../../src/stack/stack-record.js';

const base = { host: '127.0.0.1', bundle: 'models/wine-quality/1.0.0', logDir: '/tmp/logs' };

describe('replica roles and ports', () => {
  it('names the first replica by its color (as before replicas) and the others color-2, color-3', () => {
    expect([0, 1, 2].map((i) => replicaRole('green', i))).toEqual(['green', 'green-2', 'green-3']);
    expect(instanceRoles({ blue: 2, green: 1 })).toEqual(['blue', 'blue-2', 'green']);
    expect(['blue', 'green-3', 'blue-1', 'blue-x', 'router', 'prometheus', 'nginx-2'].map(roleColor)).toEqual([
      'blue',
      'green',
      null,
      null,
      null,
      null,
      null,
    ]);
  });

  it('puts each color on consecutive ports from its own, with a log per replica', () => {
    const pools = poolSpecs({ ...base, ports: { blue: 9001, green: 9004 }, replicas: 3 });
    expect(pools.blue.map((s) => s.port)).toEqual([9001, 9002, 9003]);
    expect(pools.green.map((s) => s.port)).toEqual([9004, 9005, 9006]);
    expect(pools.green.map(specRole)).toEqual(['green', 'green-2', 'green-3']);
    expect(pools.blue.map((s) => s.logFile)).toEqual(['/tmp/logs/blue.log', '/tmp/logs/blue-2.log', '/tmp/logs/blue-3.log']);
    // One replica: the very spec (and command line) `up` used before replicas.
    const one = poolSpecs({ ...base, ports: { blue: 9001, green: 9002 }, replicas: 1 });
    expect(serveArgv(one.blue[0], { command: 'node', args: ['bgserve'] })).not.toContain('--replicas');
    expect(one.blue[0].logFile).toBe('/tmp/logs/blue.log');
  });

  it('refuses ranges that overlap, naming the port to choose', () => {
    expect(() => poolSpecs({ ...base, ports: { blue: 9001, green: 9002 }, replicas: 3 })).toThrow(
      /--replicas 3 puts blue on ports 9001-9003, which overlaps green from 9002: choose --green-port 9004 or more/,
    );
    expect(() => poolSpecs({ ...base, ports: { blue: 9010, green: 9008 }, replicas: 3 })).toThrow(/choose --blue-port 9011/);
  });

  it('adopts a recorded replica that answers /health as its color with its PID', () => {
    const entry: RecordedProcess = {
      role: 'green-2',
      pid: 4242,
      startTime: 1,
      bootId: 'b',
      host: '127.0.0.1',
      port: 9005,
      argv: ['node', 'bgserve', 'serve'],
      stopSignal: 'SIGTERM',
      startedAt: '2026-12-02T00:00:00Z',
    };
    const wanted = { argv: entry.argv, host: entry.host, port: entry.port };
    expect(judge(entry, { liveness: 'same', health: { pid: 4242, color: 'green', state: 'serving' } }, wanted)).toEqual({
      action: 'adopt',
    });
    expect(judge(entry, { liveness: 'same', health: { pid: 4242, color: 'blue', state: 'serving' } }, wanted)).toMatchObject({
      action: 'stop',
    });
  });
});
