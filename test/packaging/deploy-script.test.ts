/**
 * scripts/deploy-bluegreen.sh (what deploy.yml runs on the host) against a real bgserve controller: the local
 * stack (`bgserve up`) plays the compose stack, and a `docker` stand-in on PATH turns
 * `docker compose ... exec -T controller bgserve ARGS` into the real CLI against that stack. The stand-in only
 * records what has no engine to run on here (pull, up, inspect): the script's decisions (live and idle color,
 * .env image pins, the release and its exit status) all meet the real controller.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ROOT, CLI_ENTRY, freePort, startCli, stopAll, stopProcess, waitForHttp, type Started } from '../support/processes.js';
import { WINE_EXAMPLE } from '../../src/model/wine.js';

const IMAGE = 'ghcr.io/example/bgserve:sha-0123456789abcdef';

/** A `docker` for the script: compose exec of the controller runs the real CLI, the rest is recorded. */
function dockerStandIn(calls: string, controlUrl: string, token: string): string {
  return `#!/usr/bin/env node
const { appendFileSync } = require('node:fs');
const { spawnSync } = require('node:child_process');
const args = process.argv.slice(2);
appendFileSync(${JSON.stringify(calls)}, JSON.stringify(args) + '\\n');
if (args[0] === 'compose') {
  const rest = args.slice(1);
  while (rest[0] === '-f') rest.splice(0, 2);
  const [verb, ...more] = rest;
  if (verb === 'version') process.exit(0);
  if (verb === 'ps') { console.log('container-' + more.at(-1)); process.exit(0); }
  if (verb === 'exec') {
    const i = more.indexOf('bgserve');
    if (more[i - 1] !== 'controller') { console.error('exec outside the controller: ' + more.join(' ')); process.exit(125); }
    const r = spawnSync(process.execPath, ['--import', 'tsx', ${JSON.stringify(CLI_ENTRY)}, ...more.slice(i + 1)], {
      cwd: ${JSON.stringify(ROOT)},
      env: { ...process.env, BGSERVE_CONTROL_URL: ${JSON.stringify(controlUrl)}, BGSERVE_TOKEN: ${JSON.stringify(token)} },
      stdio: 'inherit',
    });
    process.exit(r.status ?? 1);
  }
  process.exit(0); // up, logs: nothing to run without an engine
}
if (args[0] === 'inspect') { console.log('healthy'); process.exit(0); }
process.exit(0); // pull
`;
}

interface ScriptRun {
  code: number;
  output: string;
}

async function runScript(cwd: string, env: NodeJS.ProcessEnv): Promise<ScriptRun> {
  return new Promise((resolve) => {
    execFile(
      'sh',
      [path.join(ROOT, 'scripts/deploy-bluegreen.sh')],
      { cwd, env: { ...process.env, ...env }, timeout: 120_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
        resolve({ code, output: stdout + stderr });
      },
    );
  });
}

/** Client load through the router while a release runs, so that its analysis has samples. */
function loadUntil(url: string, stop: { done: boolean }): Promise<{ sent: number; failed: number }> {
  const totals = { sent: 0, failed: 0 };
  const worker = async () => {
    while (!stop.done) {
      totals.sent++;
      try {
        const res = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(WINE_EXAMPLE),
        });
        await res.arrayBuffer();
        if (res.status !== 200) totals.failed++;
      } catch {
        totals.failed++;
      }
    }
  };
  return Promise.all([worker(), worker(), worker()]).then(() => totals);
}

describe('scripts/deploy-bluegreen.sh against a real controller', () => {
  let tmp: string;
  let stack: Started;
  let routerUrl: string;
  let env: NodeJS.ProcessEnv;
  let calls: string;
  let hostDir: string;

  beforeAll(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'bgserve-deploy-script-'));
    const [router, blue, green, control] = [await freePort(), await freePort(), await freePort(), await freePort()];
    const stateDir = path.join(tmp, 'state');
    stack = startCli([
      'up',
      '--port',
      String(router),
      '--blue-port',
      String(blue),
      '--green-port',
      String(green),
      '--control-port',
      String(control),
      '--state-dir',
      stateDir,
    ]);
    routerUrl = `http://127.0.0.1:${router}`;
    const controlUrl = `http://127.0.0.1:${control}`;
    await waitForHttp(`${controlUrl}/healthz`, { proc: stack, timeoutMs: 60_000 });
    const token = (await readFile(path.join(stateDir, 'token'), 'utf8')).trim();
    const bin = path.join(tmp, 'bin');
    await mkdir(bin);
    calls = path.join(tmp, 'docker-calls.jsonl');
    await writeFile(path.join(bin, 'docker'), dockerStandIn(calls, controlUrl, token));
    await chmod(path.join(bin, 'docker'), 0o755);
    hostDir = path.join(tmp, 'host');
    await mkdir(hostDir);
    env = { PATH: `${bin}:${process.env.PATH}`, IMAGE, HEALTH_TIMEOUT_S: '5' };
  }, 90_000);

  afterAll(async () => {
    if (stack) await stopProcess(stack, 10_000);
    await stopAll();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  const dockerCalls = async () =>
    (await readFile(calls, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as string[]);

  it('puts the image on the idle color, releases the bundle there and ends with it live', async () => {
    const stop = { done: false };
    const load = loadUntil(`${routerUrl}/predict`, stop);
    const run = await runScript(hostDir, { ...env, BUNDLE: 'models/wine-quality/1.1.0', DEPLOY_ARGS: '--analysis 5s' }).finally(
      () => (stop.done = true),
    );
    const totals = await load;
    expect(run.code, run.output).toBe(0);
    expect(run.output).toContain('live color: blue; putting');
    expect(run.output).toContain('promoted: green serves models/wine-quality/1.1.0');

    const pins = await readFile(path.join(hostDir, '.env'), 'utf8');
    expect(pins).toContain(`GREEN_IMAGE=${IMAGE}`);
    expect(pins).toContain(`BGSERVE_IMAGE=${IMAGE}`);
    expect(pins).not.toContain('BLUE_IMAGE');
    const composeVerbs = (await dockerCalls())
      .filter((c) => c[0] === 'compose')
      .map((c) =>
        c
          .filter((a, i, all) => a !== '-f' && all[i - 1] !== '-f')
          .slice(1)
          .join(' '),
      );
    expect(composeVerbs).toContain('up -d --no-build --no-deps mlservice_green');
    expect(composeVerbs).not.toContain('up -d --no-build --no-deps mlservice_blue');

    const status = (await (
      await fetch(`${routerUrl}/predict`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(WINE_EXAMPLE),
      })
    ).json()) as {
      color: string;
      model: { version: string };
    };
    expect(status).toMatchObject({ color: 'green', model: { version: '1.1.0' } });
    expect(totals.sent).toBeGreaterThan(50);
    expect(totals.failed).toBe(0);
  }, 120_000);

  it('fails (non-zero) when the release fails, leaving traffic where it was', async () => {
    const run = await runScript(hostDir, { ...env, IMAGE: `${IMAGE}-bad`, BUNDLE: 'models/wine-quality/does-not-exist' });
    expect(run.code, run.output).not.toBe(0);
    expect(run.output).toContain('live color: green; putting');
    const res = await fetch(`${routerUrl}/predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(WINE_EXAMPLE),
    });
    expect(((await res.json()) as { color: string }).color).toBe('green');
    // The idle color got the new image; the controller stays on the last good one.
    const pins = await readFile(path.join(hostDir, '.env'), 'utf8');
    expect(pins).toContain(`BLUE_IMAGE=${IMAGE}-bad`);
    expect(pins).toContain(`BGSERVE_IMAGE=${IMAGE}\n`);
  }, 120_000);
});
