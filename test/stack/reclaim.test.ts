/**
 * `bgserve up` after a crash: the decision per recorded process (pure), the /proc helpers it rests on, and the
 * real thing: kill -9 of `up` (embedded and nginx router), `up` again on the same state dir with no manual
 * cleanup, and a foreign listener on a color port.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import type { StatusReport } from '../../src/control/traffic-routes.js';
import { WINE_EXAMPLE } from '../../src/model/wine.js';
import { identify, liveness, portHolders, stopProcessByPid } from '../../src/stack/proc.js';
import { assertPortsFree, judge, PortInUseError, type Probe, type WantedRouter } from '../../src/stack/reclaim.js';
import { readStackRecordSync, stackRecordPath, type RecordedProcess } from '../../src/stack/stack-record.js';
import { MANAGED_NGINX } from '../../src/traffic/nginx-entry.js';
import { freePort, ROOT, startCli, stopAll, stopProcess, type Started, upArgv } from '../support/processes.js';
import { startLoad } from '../controller/stack.js';
import { findPrometheus } from '../../src/monitoring/local-prometheus.js';

const others: ChildProcess[] = [];
/** Every PID any run here started: none may survive the tests. */
const seen = new Set<number>();

afterAll(async () => {
  await stopAll();
  await Promise.all(others.map((c) => stopProcess(c)));
  for (const pid of seen) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone, as it should be
    }
  }
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return (liveSync(pid) ?? 'R') !== 'Z';
  } catch {
    return false;
  }
}

/** State letter from /proc (a zombie is dead for our purposes). */
function liveSync(pid: number): string | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return text.slice(text.lastIndexOf(')') + 2).split(' ')[0];
  } catch {
    return undefined;
  }
}

async function gone(pids: number[], timeoutMs = 20_000): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && pids.some(alive)) await new Promise((r) => setTimeout(r, 100));
  return pids.filter(alive);
}

async function exited(proc: Started, timeoutMs = 60_000): Promise<number | null> {
  if (proc.child.exitCode !== null || proc.child.signalCode !== null) return proc.child.exitCode;
  return Promise.race([
    new Promise<number | null>((resolve) => proc.child.once('exit', (code) => resolve(code))),
    new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error(`still running after ${timeoutMs} ms:\n${proc.output()}`)), timeoutMs),
    ),
  ]);
}

function sleeper(): ChildProcess {
  const child = spawn('sleep', ['60'], { stdio: 'ignore' });
  others.push(child);
  return child;
}

async function listener(port: number): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    ['-e', `require('net').createServer().listen(${port}, '127.0.0.1', () => console.log('listening'))`],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  others.push(child);
  await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
  return child;
}

const base: RecordedProcess = {
  role: 'blue',
  pid: 4242,
  startTime: 100,
  bootId: 'b',
  host: '127.0.0.1',
  port: 8001,
  argv: ['node', 'main.js', 'serve', '--color', 'blue'],
  stopSignal: 'SIGTERM',
  startedAt: '2025-01-01T00:00:00.000Z',
};
const wanted = { argv: base.argv, host: base.host, port: base.port };
const serving = { pid: 4242, color: 'blue', state: 'serving' };

describe('judge: what to do with a recorded process', () => {
  const cases: [string, RecordedProcess, Probe, ReturnType<typeof judge>['action'], RegExp?][] = [
    ['exited', base, { liveness: 'gone', health: null }, 'leave', /exited/],
    ['same instance, same command, healthy', base, { liveness: 'same', health: serving }, 'adopt'],
    ['no /proc, but /health names its pid and color', base, { liveness: 'unknown', health: serving }, 'adopt'],
    ['no /proc and no proof', base, { liveness: 'unknown', health: null }, 'leave', /cannot be verified/],
    ['another process answers on its port', base, { liveness: 'unknown', health: { ...serving, pid: 7 } }, 'leave', /cannot be verified/],
    [
      'started with other options',
      { ...base, argv: [...base.argv, '--drain-delay-ms', '0'] },
      { liveness: 'same', health: serving },
      'stop',
      /other options/,
    ],
    ['recorded on another port', { ...base, port: 9001 }, { liveness: 'same', health: serving }, 'stop', /other options/],
    ['alive but not answering', base, { liveness: 'same', health: null }, 'stop', /does not answer \/health/],
    ['draining', base, { liveness: 'same', health: { ...serving, state: 'draining' } }, 'stop', /draining/],
    [
      'the managed nginx, this `up` runs the embedded router',
      { ...base, role: 'nginx', stopSignal: 'SIGQUIT' },
      { liveness: 'same' },
      'stop',
      /previous/,
    ],
    ['Prometheus, PID reused', { ...base, role: 'prometheus' }, { liveness: 'gone' }, 'leave', /exited/],
    [
      'holds an admin token that is no longer the current one',
      base,
      { liveness: 'same', health: serving, tokenAccepted: false },
      'stop',
      /refuses the current admin token/,
    ],
    ['accepts the current admin token', base, { liveness: 'same', health: serving, tokenAccepted: true }, 'adopt'],
    ['token check without a clear answer', base, { liveness: 'same', health: serving, tokenAccepted: null }, 'adopt'],
  ];
  it.each(cases)('%s', (_name, entry, probe, action, reason) => {
    const verdict = judge(entry, probe, entry.role === 'blue' ? wanted : undefined);
    expect(verdict.action).toBe(action);
    if (reason) expect('reason' in verdict ? verdict.reason : '').toMatch(reason);
  });

  const routerEntry: RecordedProcess = {
    ...base,
    role: 'router',
    port: 8080,
    argv: ['node', 'router-main.js', 'router', '--port', '8080'],
    controlPort: 40000,
  };
  const wantedRouter: WantedRouter = { role: 'router', argv: routerEntry.argv, host: '127.0.0.1', port: 8080 };
  const nginxEntry: RecordedProcess = {
    ...base,
    role: 'nginx',
    port: 8080,
    argv: ['nginx: master process nginx -p /s/nginx -c /s/nginx/nginx.conf'],
    stopSignal: 'SIGQUIT',
  };
  const wantedNginx: WantedRouter = { role: 'nginx', host: '127.0.0.1', port: 8080, process: MANAGED_NGINX.what };
  const routerCases: [string, RecordedProcess, Probe, WantedRouter | undefined, ReturnType<typeof judge>['action'], RegExp?][] = [
    [
      'router process, same command, answers its control endpoint',
      routerEntry,
      { liveness: 'same', control: { pid: 4242 } },
      wantedRouter,
      'adopt',
    ],
    [
      'router process, no /proc, but its control endpoint names its pid',
      routerEntry,
      { liveness: 'unknown', control: { pid: 4242 } },
      wantedRouter,
      'adopt',
    ],
    [
      'router process not answering with the router token',
      routerEntry,
      { liveness: 'same', control: null },
      wantedRouter,
      'stop',
      /does not answer its control endpoint/,
    ],
    [
      'router process started for other ports',
      routerEntry,
      { liveness: 'same', control: { pid: 4242 } },
      { ...wantedRouter, argv: [...wantedRouter.argv, '--blue', 'x:1'] },
      'stop',
      /other options/,
    ],
    ['router process, this `up` runs nginx', routerEntry, { liveness: 'same', control: { pid: 4242 } }, undefined, 'stop', /previous/],
    ['managed nginx master on the same address', nginxEntry, { liveness: 'same', recognised: true }, wantedNginx, 'adopt'],
    [
      'managed nginx on another port',
      nginxEntry,
      { liveness: 'same', recognised: true },
      { ...wantedNginx, port: 9090 },
      'stop',
      /other options/,
    ],
    [
      'PID now names something else than the nginx master',
      nginxEntry,
      { liveness: 'same', recognised: false },
      wantedNginx,
      'stop',
      /not the master/,
    ],
    ['nginx that cannot be verified', nginxEntry, { liveness: 'unknown', recognised: true }, wantedNginx, 'leave', /cannot be verified/],
  ];
  it.each(routerCases)('%s', (_name, entry, probe, want, action, reason) => {
    const verdict = judge(entry, probe, want);
    expect(verdict.action).toBe(action);
    if (reason) expect('reason' in verdict ? verdict.reason : '').toMatch(reason);
  });
});

describe('process identity and ports (/proc)', () => {
  it('tells the recorded process from a reused PID', async () => {
    const me = await identify(process.pid);
    expect(me.startTime).toEqual(expect.any(Number));
    expect(await liveness(me)).toBe('same');
    expect(await liveness({ ...me, startTime: me.startTime! + 1 })).toBe('gone');
    expect(await liveness({ ...me, bootId: 'another-boot' })).toBe('gone');
  });

  it('stops a process by PID only when it is the recorded one', async () => {
    const child = sleeper();
    const pid = child.pid!;
    const identity = await identify(pid);
    expect(await stopProcessByPid({ ...identity, startTime: identity.startTime! - 1 }, 'SIGTERM', 1_000)).toBe(false);
    expect(alive(pid)).toBe(true);
    const ended = new Promise((r) => child.once('exit', (_code, signal) => r(signal)));
    expect(await stopProcessByPid(identity, 'SIGTERM', 5_000)).toBe(true);
    expect(await ended).toBe('SIGTERM');
  });

  it('names the process holding a port, and leaves it running', async () => {
    const port = await freePort();
    const holder = await listener(port);
    expect(await portHolders(port)).toEqual([{ pid: holder.pid, command: expect.stringContaining('createServer') }]);
    const failure = await assertPortsFree([{ what: 'blue instance', flag: '--blue-port', host: '127.0.0.1', port }]).catch(
      (err: unknown) => err,
    );
    expect(failure).toBeInstanceOf(PortInUseError);
    expect((failure as Error).message).toMatch(
      new RegExp(`port ${port} \\(blue instance\\) on 127\\.0\\.0\\.1 is in use by pid ${holder.pid} \\(.*node.*\\).*--blue-port`),
    );
    expect(alive(holder.pid!)).toBe(true);
    await expect(assertPortsFree([{ what: 'router', flag: '--port', host: '127.0.0.1', port: await freePort() }])).resolves.toBeUndefined();
  });
});

async function ports() {
  return {
    router: await freePort(),
    blue: await freePort(),
    green: await freePort(),
    control: await freePort(),
    prometheus: await freePort(),
  };
}

/** The embedded runs add a real Prometheus (when installed): a killed `up` leaves it running too. */
const withPrometheus = (await findPrometheus()) !== undefined;

function upArgs(p: Awaited<ReturnType<typeof ports>>, dir: string, router: string, more: string[] = []): string[] {
  const prometheus = router === 'embedded' && withPrometheus ? ['--prometheus', '--prometheus-port', String(p.prometheus)] : [];
  return upArgv(p, dir, ['--router', router, ...prometheus, ...more]);
}

/** The banner's last line comes after everything is started and recorded. */
async function upAndRunning(proc: Started, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!proc.output().includes('Ctrl-C stops everything')) {
    if (proc.child.exitCode !== null || Date.now() > deadline) throw new Error(`bgserve up did not come up:\n${proc.output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function predict(routerPort: number): Promise<{ status: number; body: { color?: string } }> {
  const res = await request(`http://127.0.0.1:${routerPort}/predict`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(WINE_EXAMPLE),
  });
  return { status: res.statusCode, body: (await res.body.json()) as { color?: string } };
}

async function status(controlPort: number, dir: string): Promise<StatusReport> {
  const cli = startCli(['status', '--json', '--control-url', `http://127.0.0.1:${controlPort}`, '--state-dir', dir]);
  expect(await exited(cli)).toBe(0);
  return JSON.parse(cli.output()) as StatusReport;
}

/** PIDs in the state dir's stack.json, by role. */
function recorded(dir: string): Record<string, number> {
  const record = readStackRecordSync(stackRecordPath(dir));
  const pids = Object.fromEntries(Object.entries(record?.processes ?? {}).map(([role, p]) => [role, p!.pid]));
  for (const pid of Object.values(pids)) seen.add(pid);
  return pids;
}

describe.each(['embedded', 'nginx'])('bgserve up --router %s after kill -9', (router) => {
  it('comes back on the same state dir with nothing stopped by hand; afterwards nothing of either run remains', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'bgserve-reclaim-'));
    try {
      const p = await ports();
      const first = startCli(upArgs(p, dir, router));
      await upAndRunning(first);
      const before = recorded(dir);
      expect(Object.keys(before).sort()).toEqual(
        router === 'nginx'
          ? ['blue', 'green', 'nginx']
          : withPrometheus
            ? ['blue', 'green', 'prometheus', 'router']
            : ['blue', 'green', 'router'],
      );
      expect(readStackRecordSync(stackRecordPath(dir))?.owner.pid).toBe(first.child.pid);

      if (router === 'embedded') {
        // While the first `up` runs, a second one on its state dir is refused and touches nothing.
        const second = startCli(upArgs(await ports(), dir, router));
        expect(await exited(second)).toBe(1);
        expect(second.output()).toContain(`another bgserve up (pid ${first.child.pid}) is running on ${dir}`);
        expect(Object.values(before).every(alive)).toBe(true);
      }

      if (router === 'nginx') {
        // A release before the crash: green serves 1.1.0 with all the traffic (a little load lets it be judged).
        const load = await startLoad(`http://127.0.0.1:${p.router}`, 2, 60_000);
        const deploy = startCli(
          ['deploy', path.join(ROOT, 'models/wine-quality/1.1.0'), '--analysis', '1s', '--wait', '--state-dir', dir],
          { BGSERVE_CONTROL_URL: `http://127.0.0.1:${p.control}` },
        );
        const code = await exited(deploy, 90_000);
        await load.stop();
        expect(code, deploy.output()).toBe(0);
      }

      first.child.kill('SIGKILL');
      await exited(first);
      // What kill -9 leaves: the detached instances (and the managed nginx) keep running.
      expect(Object.values(before).filter(alive)).toEqual(Object.values(before));
      if (router === 'nginx') {
        // As if `up` died between starting nginx and recording it: its pid file under the prefix still finds it.
        const record = readStackRecordSync(stackRecordPath(dir))!;
        delete record.processes.nginx;
        writeFileSync(stackRecordPath(dir), JSON.stringify(record));
      }

      // embedded: same options, so both instances are adopted. nginx: the start-up bundle named by its absolute
      // path is another command line, so they are replaced (and green's release model has to be reloaded).
      const more = router === 'nginx' ? ['--bundle', path.join(ROOT, 'models/wine-quality/1.0.0')] : [];
      const again = startCli(upArgs(p, dir, router, more));
      await upAndRunning(again);
      const after = recorded(dir);
      const report = await status(p.control, dir);
      if (router === 'embedded') {
        expect([after.blue, after.green]).toEqual([before.blue, before.green]);
        if (withPrometheus) {
          expect(again.output()).toContain(`stopped the previous prometheus (pid ${before.prometheus})`);
          expect(after.prometheus).not.toBe(before.prometheus);
          expect((await fetch(`http://127.0.0.1:${p.prometheus}/-/ready`)).status).toBe(200);
        }
        // The embedded router runs in a process of its own, which outlived `up` and is adopted too.
        expect(after.router).toBe(before.router);
        expect(again.output()).toContain(`adopted router (pid ${before.router}`);
        expect(again.output()).toContain(`adopted blue (pid ${before.blue}`);
        expect(again.output()).toContain(`adopted green (pid ${before.green}`);
        expect(again.output()).toMatch(/blue .* pid \d+ \(adopted/);
        expect(report.colors.blue.model?.version).toBe('1.0.0');
        expect((await predict(p.router)).body.color).toBe('blue');
      } else {
        for (const role of ['blue', 'green', 'nginx']) expect(after[role]).not.toBe(before[role]);
        expect(again.output()).toContain(`stopped the previous blue (pid ${before.blue}): started with other options`);
        expect(again.output()).toContain(`stopped managed nginx (pid ${before.nginx}): its prefix is ${path.join(dir, 'nginx')}`);
        expect(await gone(Object.values(before))).toEqual([]);
        // The release log reconciles: traffic back on green, its release's model reloaded on the fresh instance.
        expect(again.output()).toMatch(/reloaded 1\.1\.0 on green \(it served 1\.0\.0\)/);
        expect(report.weights).toEqual({ blue: 0, green: 100 });
        expect(report.colors.green.model?.version).toBe('1.1.0');
        expect((await predict(p.router)).body.color).toBe('green');
      }
      expect(report.colors.blue.process?.pid).toBe(after.blue);
      expect(report.colors.green.healthy).toBe(true);
      expect((await predict(p.router)).status).toBe(200);

      again.child.kill('SIGTERM');
      expect(await exited(again)).toBe(0);
      expect(await gone([...Object.values(before), ...Object.values(after)])).toEqual([]);
      expect(existsSync(stackRecordPath(dir))).toBe(false);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 180_000);
});

describe('bgserve up with a foreign listener on a color port', () => {
  it('fails with a message naming the port and its holder, and leaves the holder running', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'bgserve-reclaim-'));
    try {
      const p = await ports();
      const holder = await listener(p.green);
      const up = startCli(upArgs(p, dir, 'embedded'));
      expect(await exited(up)).toBe(1);
      expect(up.output()).toMatch(
        new RegExp(
          `port ${p.green} \\(green instance\\) on 127\\.0\\.0\\.1 is in use by pid ${holder.pid} \\(.*\\), which is not part of this bgserve stack.*--green-port`,
        ),
      );
      expect(alive(holder.pid!)).toBe(true);
      expect(existsSync(stackRecordPath(dir))).toBe(false);
      await expect(request(`http://127.0.0.1:${p.blue}/health`)).rejects.toThrow();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
