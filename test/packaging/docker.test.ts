/**
 * The image and the original four-file Compose stack on a real Docker engine (Debian's docker.io, a private
 * daemon this suite starts and stops: test/packaging/docker-engine.ts). Base images are offline stand-ins
 * under the official names (test/fixtures/docker/), so the project's Dockerfile and compose files run as
 * users run them. Runs in CI (.ci/run installs the engine); fails there, and warns loudly elsewhere, when no
 * engine can run.
 *
 *  1. build: the Dockerfile with BuildKit and with the classic builder (daemon on the host network, builds
 *     with --network host); both images non-root, their HEALTHCHECK healthy; size reported.
 *  2. stack: `docker-compose -f ... up -d` with every service but grafana (no package here), on a daemon in
 *     its own network namespace (published ports private to the test); requests, Prometheus, and releases
 *     under load through :80, then `down -v`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, cp, mkdir, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { ROOT } from '../support/processes.js';
import { WINE_EXAMPLE } from '../../src/model/wine.js';
import { deriveBundle } from '../controller/bundles.js';
import { FILES } from './compose-files.js';
import {
  ENGINE_PATHS,
  docker,
  dockerEnv,
  engineUnavailable,
  forwardPorts,
  runCommand,
  startEngine,
  type Engine,
  type Forwarder,
  type RunResult,
} from './docker-engine.js';

const unavailable = engineUnavailable();
if (unavailable !== null) {
  if (process.env.CI) throw new Error(`the Docker suite must run in CI, but ${unavailable}`);
  console.warn(`\n!!! test/packaging/docker.test.ts SKIPPED: ${unavailable}. The image and the Compose stack are NOT tested here. !!!\n`);
}

const PROJECT = 'bgservetest';
const IMAGE = 'bgserve:local';
const CLASSIC_IMAGE = 'bgserve:classic';
/** What scripts/deploy-bluegreen.sh releases: another image (a new layer on top of the first). */
const NEXT_IMAGE = 'bgserve:next';
/** The compose project's network, and a container outside the project that takes an address on it. */
const NETWORK = `${PROJECT}_default`;
const PLACEHOLDER = 'bgserve-test-placeholder';
const PLACEHOLDER_2 = 'bgserve-test-placeholder-2';
const PUBLISHED = { nginx: 80, blue: 8001, green: 8002, control: 8090, prometheus: 9090 };
const MB = 1024 * 1024;

/** Figures for the README, printed at the end of the file. */
const figures: Record<string, string> = {};
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

async function timed<T>(name: string, fn: () => Promise<T>): Promise<T> {
  const started = Date.now();
  try {
    return await fn();
  } finally {
    figures[name] = seconds(Date.now() - started);
  }
}

function must(r: RunResult, what: string): string {
  if (r.code !== 0) throw new Error(`${what} exited ${r.code}:\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs: number, last: () => string = () => ''): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out (${timeoutMs} ms) waiting for ${what}\n${last()}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function healthOf(container: string): Promise<string> {
  return docker(['inspect', '-f', '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}', container]);
}

describe.skipIf(unavailable !== null)('Docker image, built on a real engine', () => {
  let engine: Engine | undefined;
  const checks: string[] = [];

  beforeAll(async () => {
    engine = await startEngine('host');
    // Base images: built once per data root, a few inspects afterwards.
    await timed('stand-in base images', async () =>
      must(
        await runCommand('sh', [path.join(ROOT, 'test/fixtures/docker/build-stand-ins.sh')], { timeoutMs: 600_000 }),
        'build-stand-ins.sh',
      ),
    );
  }, 900_000);

  afterAll(async () => {
    for (const name of checks) await docker(['rm', '-f', name]).catch(() => undefined);
    console.log(`Docker figures: ${JSON.stringify(figures)}`);
    await engine?.stop();
  }, 120_000);

  it('builds with BuildKit and with the classic builder, offline (no syntax frontend, no cache mount)', async () => {
    const dockerfile = await readFile(path.join(ROOT, 'Dockerfile'), 'utf8');
    expect(dockerfile).not.toMatch(/^#\s*syntax=/m);
    expect(dockerfile).not.toMatch(/^RUN\s+--mount/m);
    // Side by side: each builder has its own cache; the network is the machine's (the daemon has no bridge).
    const build = (image: string, buildkit: '0' | '1') =>
      timed(`build ${buildkit === '1' ? 'BuildKit' : 'classic'}`, async () =>
        must(
          await runCommand('docker', ['build', '--network', 'host', '-t', image, '.'], {
            cwd: ROOT,
            env: dockerEnv({ DOCKER_BUILDKIT: buildkit }),
            timeoutMs: 600_000,
          }),
          `DOCKER_BUILDKIT=${buildkit} docker build`,
        ),
      );
    const [buildkitLog, classicLog] = await Promise.all([build(IMAGE, '1'), build(CLASSIC_IMAGE, '0')]);
    expect(classicLog).toContain(`Successfully tagged ${CLASSIC_IMAGE}`);
    expect(buildkitLog + classicLog).not.toContain('EBADENGINE');
    // The image deploy-bluegreen.sh moves the idle color to: built here, where the daemon has a way out.
    await docker(['build', '-t', NEXT_IMAGE, '-'], {
      input: `FROM ${IMAGE}\nLABEL org.opencontainers.image.version=next\n`,
      env: dockerEnv({ DOCKER_BUILDKIT: '1' }),
    });
    for (const image of [IMAGE, CLASSIC_IMAGE, NEXT_IMAGE])
      expect(await docker(['image', 'inspect', '-f', '{{.Id}}', image])).toMatch(/^sha256:/);
  }, 900_000);

  it('runs on Node 24 as the unprivileged node user, from both builders', async () => {
    for (const image of [IMAGE, CLASSIC_IMAGE]) {
      expect(await docker(['image', 'inspect', '-f', '{{.Config.User}}', image])).toBe('node');
      const out = await docker(['run', '--rm', '--network', 'none', '--entrypoint', 'sh', image, '-c', 'id -u; node --version']);
      const [uid, version] = out.split('\n');
      expect(uid).toBe('1000');
      expect(version).toMatch(/^v24\./);
    }
  }, 120_000);

  it('turns healthy by its own HEALTHCHECK, from both builders', async () => {
    const started = Date.now();
    await Promise.all(
      [IMAGE, CLASSIC_IMAGE].map(async (image, i) => {
        const name = `bgserve-healthcheck-${i}`;
        checks.push(name);
        await docker(['rm', '-f', name]).catch(() => undefined);
        // No network at all: the check runs inside the container, against its own loopback.
        await docker(['run', '-d', '--name', name, '--network', 'none', image]);
        await waitFor(`${image} healthy`, async () => ((await healthOf(name)) === 'healthy' ? true : undefined), 90_000);
        const probes = await docker(['inspect', '-f', '{{range .State.Health.Log}}{{.ExitCode}} {{end}}', name]);
        expect(probes.trim().split(' ').at(-1)).toBe('0');
      }),
    );
    figures['image healthy after run'] = seconds(Date.now() - started);
  }, 120_000);

  it('is of a reasonable size (reported)', async () => {
    const bytes = Number(await docker(['image', 'inspect', '-f', '{{.Size}}', IMAGE]));
    figures['image size'] = `${Math.round(bytes / MB)} MB`;
    expect(bytes).toBeGreaterThan(100 * MB);
    expect(bytes).toBeLessThan(500 * MB);
  });
});

/** Docker's API on the suite's socket (no CLI start-up: used where milliseconds count). */
function dockerApi(method: string, apiPath: string, body?: unknown): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { socketPath: ENGINE_PATHS.socket, method, path: apiPath, headers: { 'content-type': 'application/json' } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

/**
 * Connects `placeholder` to the project network the moment `container` leaves it (its network `disconnect`
 * event: the address is free from then on), so that it takes that address.
 */
function takeAddressOnLeave(container: string, placeholder: string): { done: Promise<void>; stop: () => void } {
  const events = spawn(
    'docker',
    ['events', '--filter', 'type=network', '--filter', 'event=disconnect', '--format', '{{.Actor.Attributes.container}}'],
    {
      env: dockerEnv(),
      stdio: ['ignore', 'pipe', 'ignore'],
    },
  );
  const done = new Promise<void>((resolve, reject) => {
    let buffered = '';
    const onData = (chunk: Buffer) => {
      buffered += chunk.toString();
      if (!buffered.split('\n').includes(container)) return;
      events.stdout.off('data', onData);
      dockerApi('POST', `/networks/${NETWORK}/connect`, { Container: placeholder })
        .then((code) => (code === 200 ? resolve() : reject(new Error(`network connect: HTTP ${code}`))), reject)
        .finally(() => events.kill('SIGTERM'));
    };
    events.stdout.on('data', onData);
  });
  return { done, stop: () => events.kill('SIGTERM') };
}

interface Totals {
  sent: number;
  failed: number;
  errors: string[];
  colors: Record<string, number>;
}

async function predictAt(base: string): Promise<{ color: string; model: { version: string } }> {
  const res = await fetch(`${base}/predict`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(WINE_EXAMPLE),
  });
  expect(res.status).toBe(200);
  return (await res.json()) as { color: string; model: { version: string } };
}

/** Bounded continuous load on `target` (nginx's /predict) while `fn` runs: 3 clients, every answer counted. */
async function underLoadAt<T>(target: string, fn: () => Promise<T>): Promise<{ result: T; totals: Totals }> {
  const totals: Totals = { sent: 0, failed: 0, errors: [], colors: {} };
  let stop = false;
  const worker = async () => {
    while (!stop) {
      // Paced (at most ~100 requests/s per client): enough for every analysis window, and the machine is shared.
      await new Promise((r) => setTimeout(r, 10));
      totals.sent++;
      try {
        const res = await fetch(target, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(WINE_EXAMPLE),
        });
        const body = await res.text();
        if (res.status !== 200) {
          totals.failed++;
          if (totals.errors.length < 5) totals.errors.push(`${res.status} ${body.slice(0, 200)}`);
        } else {
          const color = (JSON.parse(body) as { color: string }).color;
          totals.colors[color] = (totals.colors[color] ?? 0) + 1;
        }
      } catch (err) {
        totals.failed++;
        if (totals.errors.length < 5) totals.errors.push(String((err as Error).cause ?? err));
      }
    }
  };
  const load = Promise.all([worker(), worker(), worker()]);
  try {
    return { result: await fn(), totals };
  } finally {
    stop = true;
    await load;
  }
}

/** The deploy host's directory, as deploy.yml copies it there: compose files, deploy/, models/, the script. */
async function deployHostDir(): Promise<string> {
  const hostDir = await mkdtemp(path.join(os.tmpdir(), 'bgserve-compose-host-'));
  for (const entry of [...FILES, 'deploy/nginx', 'deploy/prometheus', 'deploy/grafana', 'models', 'scripts/deploy-bluegreen.sh']) {
    await mkdir(path.dirname(path.join(hostDir, entry)), { recursive: true });
    await cp(path.join(ROOT, entry), path.join(hostDir, entry), { recursive: true });
  }
  // The containers' users (node, nobody) read the bind mounts.
  await chmod(hostDir, 0o755);
  return hostDir;
}

/** A Compose describe's end: `down -v`, then the forwarder, the engine and the host directory, whatever started. */
async function tearDownStack(o: {
  engine?: Engine;
  ports?: Forwarder;
  hostDir?: string;
  compose: (args: string[]) => Promise<RunResult>;
}): Promise<void> {
  if (o.engine && o.hostDir) {
    const down = await o.compose(['down', '-v', '--remove-orphans']);
    if (down.code !== 0) console.error(`down -v failed: ${down.stderr}`);
  }
  await o.ports?.close();
  console.log(`Docker figures: ${JSON.stringify(figures)}`);
  await o.engine?.stop();
  if (o.hostDir) await rm(o.hostDir, { recursive: true, force: true });
}

describe.skipIf(unavailable !== null)('the four-file Compose stack on a real engine', () => {
  let engine: Engine | undefined;
  let ports: Forwarder | undefined;
  let hostDir: string;
  let services: string[];
  const env = () => dockerEnv({ COMPOSE_PROJECT_NAME: PROJECT });
  const url = (name: keyof typeof PUBLISHED, p = '') => `http://127.0.0.1:${ports!.port(PUBLISHED[name])}${p}`;

  const compose = (args: string[], timeoutMs = 180_000) =>
    runCommand('docker-compose', [...FILES.flatMap((f) => ['-f', f]), ...args], { cwd: hostDir, env: env(), timeoutMs });
  /** The CLI in the controller's container, as the README and deploy-bluegreen.sh run it. */
  const bgserve = (...args: string[]) => compose(['exec', '-T', 'controller', 'bgserve', ...args], 300_000);
  const containerOf = async (service: string) => (await compose(['ps', '-q', service])).stdout.trim();
  const addressOf = async (container: string) =>
    docker(['inspect', '-f', '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}', container]);

  const predict = (base = url('nginx')) => predictAt(base);
  const underLoad = <T>(fn: () => Promise<T>) => underLoadAt(url('nginx', '/predict'), fn);

  async function allHealthy(timeoutMs: number): Promise<void> {
    await waitFor(
      'every service healthy',
      async () => {
        const states = await Promise.all(services.map(async (s) => healthOf(await containerOf(s))));
        // Prometheus has no healthcheck in the compose file: running is its best.
        return states.every((st) => st === 'healthy' || st === 'running') ? true : undefined;
      },
      timeoutMs,
      () => 'see `docker-compose ps`',
    );
  }

  interface StatusReport {
    active: string;
    router: { kind: string };
    colors: Record<string, { ok: boolean }>;
  }
  async function status(): Promise<StatusReport> {
    return JSON.parse(must(await bgserve('status', '--json'), 'bgserve status')) as StatusReport;
  }

  beforeAll(async () => {
    hostDir = await deployHostDir();
    await deriveBundle(path.join(hostDir, 'models/wine-quality'), { version: '1.0.1-shifted', shift: 1.5 });

    engine = await startEngine('netns');
    // A stack left by a run that died half-way would come back with the daemon: start clean.
    for (const name of [PLACEHOLDER, PLACEHOLDER_2]) await docker(['rm', '-f', name]).catch(() => undefined);
    await compose(['down', '-v', '--remove-orphans']);
    ports = await forwardPorts(engine, Object.values(PUBLISHED));
    services = must(await compose(['config', '--services']), 'config --services')
      .trim()
      .split('\n')
      .filter((s) => s !== 'grafana');
    expect(services.sort()).toEqual(['controller', 'mlservice_blue', 'mlservice_green', 'nginx', 'prometheus']);
  }, 300_000);

  afterAll(async () => {
    if (engine && hostDir) for (const name of [PLACEHOLDER, PLACEHOLDER_2]) await docker(['rm', '-f', name]).catch(() => undefined);
    await tearDownStack({ engine, ports, hostDir, compose });
  }, 180_000);

  it('starts with the original four-file command (grafana left out): every service healthy', async () => {
    const started = Date.now();
    must(await compose(['up', '-d', ...services]), 'docker-compose up -d');
    figures['up -d returned'] = seconds(Date.now() - started);
    await allHealthy(120_000);
    figures['up -d to all healthy'] = seconds(Date.now() - started);
  }, 180_000);

  it('answers the original example on :80, :8001 and :8002', async () => {
    expect(await predict(url('nginx'))).toMatchObject({ color: 'blue', model: { version: '1.0.0' } });
    expect(await predict(url('blue'))).toMatchObject({ color: 'blue' });
    expect(await predict(url('green'))).toMatchObject({ color: 'green' });
  });

  it('has Prometheus scraping every target and its rules loaded', async () => {
    const rulesDir = path.join(ROOT, 'deploy/prometheus/rules');
    await waitFor(
      'every Prometheus target up',
      async () => {
        const body = (await (await fetch(url('prometheus', '/api/v1/targets'))).json()) as {
          data: { activeTargets: Array<{ health: string; scrapeUrl: string }> };
        };
        const targets = body.data.activeTargets;
        return targets.length === 3 && targets.every((t) => t.health === 'up') ? targets : undefined;
      },
      60_000,
    );
    const rules = (await (await fetch(url('prometheus', '/api/v1/rules'))).json()) as {
      data: { groups: Array<{ file: string; rules: unknown[] }> };
    };
    const files = new Set(rules.data.groups.map((g) => path.basename(g.file)));
    const expected = (await readdir(rulesDir)).filter((f) => f.endsWith('.yml'));
    expect(expected.length).toBeGreaterThan(0);
    expect([...files].sort()).toEqual(expected.sort());
    expect(rules.data.groups.every((g) => g.rules.length > 0)).toBe(true);
  }, 90_000);

  it('answers `bgserve status` through the controller (nginx router, both colors ok)', async () => {
    expect(await status()).toMatchObject({
      active: 'blue',
      router: { kind: 'nginx' },
      colors: { blue: { ok: true }, green: { ok: true } },
    });
  }, 60_000);

  it('switches to green under load with no failed request', async () => {
    const { result, totals } = await timed('switch green under load', () => underLoad(() => bgserve('switch', 'green')));
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect((await predict()).color).toBe('green');
    console.log(`switch under load: ${JSON.stringify(totals)}\n${result.stdout}`);
    expect(totals.failed, totals.errors.join('\n')).toBe(0);
    expect(totals.sent).toBeGreaterThan(20);
  }, 120_000);

  it('releases models/wine-quality/1.1.0 (deploy --wait) under load: promoted, 0 failed', async () => {
    const { result, totals } = await timed('deploy 1.1.0 --wait under load', () =>
      underLoad(() => bgserve('deploy', 'models/wine-quality/1.1.0', '--wait', '--analysis', '5s')),
    );
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toContain('SUCCEEDED');
    expect(await predict()).toMatchObject({ color: 'blue', model: { version: '1.1.0' } });
    console.log(`deploy under load: ${JSON.stringify(totals)}`);
    expect(totals.failed, totals.errors.join('\n')).toBe(0);
    expect(totals.sent).toBeGreaterThan(100);
  }, 240_000);

  it('rolls back a bad bundle (predictions shifted) under load', async () => {
    const { result, totals } = await underLoad(() => bgserve('deploy', 'models/wine-quality/1.0.1-shifted', '--wait', '--analysis', '5s'));
    expect(result.code, result.stdout + result.stderr).toBe(2);
    const release = JSON.parse(must(await bgserve('release', '--json'), 'bgserve release')) as {
      release: { status: string; spec: { version: string } };
    };
    expect(release.release).toMatchObject({ status: expect.stringMatching(/^(rolled_back|failed)$/), spec: { version: '1.0.1-shifted' } });
    expect(await predict()).toMatchObject({ color: 'blue', model: { version: '1.1.0' } });
    console.log(`bad bundle under load: ${JSON.stringify(totals)}`);
    expect(totals.failed, totals.errors.join('\n')).toBe(0);
  }, 240_000);

  it('loses no request when the live color is killed (docker kill), and follows it to its new address', async () => {
    const blue = await containerOf('mlservice_blue');
    const before = await addressOf(blue);
    const { totals } = await underLoad(async () => {
      await docker(['kill', blue]);
      // While blue is down another container takes its address, as happens on any host where containers
      // come and go (Docker hands out the lowest free address): blue comes back elsewhere.
      await docker(['run', '-d', '--name', PLACEHOLDER, '--network', NETWORK, 'debian:bookworm-slim', 'sleep', '900']);
      expect(await addressOf(PLACEHOLDER)).toBe(before);
      // A killed container counts as stopped by hand (no restart: unless-stopped): load goes on through nginx's
      // backup (green) for a while, then the operator brings blue back, as it was.
      await new Promise((r) => setTimeout(r, 2_000));
      must(await compose(['up', '-d', '--no-deps', 'mlservice_blue']), 'docker-compose up -d mlservice_blue');
      expect(await containerOf('mlservice_blue')).toBe(blue);
      await waitFor('blue started and healthy', async () => ((await healthOf(blue)) === 'healthy' ? true : undefined), 120_000);
    });
    const after = await addressOf(blue);
    console.log(`docker kill under load: ${JSON.stringify(totals)}; blue ${before} -> ${after}`);
    expect(after).not.toBe(before);
    expect(totals.failed, totals.errors.join('\n')).toBe(0);
    expect(totals.colors.green ?? 0).toBeGreaterThan(0);
    // Live traffic is blue's again: nginx follows blue to its new address (a stale nginx would try the
    // placeholder, be refused, and answer from its backup, green).
    await waitFor('answers from blue again', async () => ((await predict()).color === 'blue' ? true : undefined), 30_000);
    for (let i = 0; i < 10; i++) expect((await predict()).color).toBe('blue');
  }, 240_000);

  it('reconciles a release caught mid-way by `docker-compose restart controller`, under load', async () => {
    const { result, totals } = await underLoad(async () => {
      const started = JSON.parse(must(await bgserve('deploy', 'models/wine-quality/1.1.0', '--analysis', '60s', '--json'), 'deploy')) as {
        release: { spec: { id: string } };
      };
      const id = started.release.spec.id;
      await waitFor(
        'the release in its post-switch analysis',
        async () => {
          const view = JSON.parse((await bgserve('release', id, '--json')).stdout) as { release: { phase: string } };
          return view.release.phase === 'post-switch' ? true : undefined;
        },
        90_000,
      );
      must(await compose(['restart', 'controller']), 'docker-compose restart controller');
      await waitFor(
        'controller healthy',
        async () => ((await healthOf(await containerOf('controller'))) === 'healthy' ? true : undefined),
        90_000,
      );
      return JSON.parse(must(await bgserve('release', id, '--json'), 'bgserve release')) as {
        release: { status: string };
        events: Array<{ type: string; reason: string }>;
      };
    });
    expect(result.release.status).toBe('rolled_back');
    expect(result.events.map((e) => e.type)).toContain('reconciled');
    expect((await status()).active).toBe('blue');
    expect(totals.failed, totals.errors.join('\n')).toBe(0);
  }, 300_000);

  it('runs scripts/deploy-bluegreen.sh for real: new image on the idle color, recreated, switched, answering', async () => {
    const idle = 'green';
    const oldContainer = await containerOf(`mlservice_${idle}`);
    const oldAddress = await addressOf(oldContainer);
    // Docker hands a recreated container the lowest free address, often the one it just left. On a busy host
    // another container may take it first: a placeholder does, the moment the old green leaves the network,
    // so the new green gets another address — one a stale nginx would never send to.
    await docker(['rm', '-f', PLACEHOLDER_2]).catch(() => undefined);
    await docker(['run', '-d', '--name', PLACEHOLDER_2, 'debian:bookworm-slim', 'sleep', '900']);
    const takeover = takeAddressOnLeave(oldContainer, PLACEHOLDER_2);
    // `docker events` subscribes asynchronously: give it a moment before the script runs.
    await new Promise((r) => setTimeout(r, 1_000));
    const { result, totals } = await timed('deploy-bluegreen.sh under load', () =>
      underLoad(() =>
        runCommand('sh', ['scripts/deploy-bluegreen.sh'], {
          cwd: hostDir,
          env: dockerEnv({
            COMPOSE_PROJECT_NAME: PROJECT,
            IMAGE: NEXT_IMAGE,
            BUNDLE: 'models/wine-quality/1.1.0',
            DEPLOY_ARGS: '--analysis 5s',
          }),
          timeoutMs: 300_000,
        }),
      ),
    ).finally(() => takeover.stop());
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.stderr).toContain(`live color: blue; putting ${NEXT_IMAGE} on ${idle}`);
    const newContainer = await containerOf(`mlservice_${idle}`);
    const newAddress = await addressOf(newContainer);
    console.log(
      `deploy-bluegreen.sh: ${idle} ${oldContainer.slice(0, 12)} ${oldAddress} -> ${newContainer.slice(0, 12)} ${newAddress}; load ${JSON.stringify(totals)}`,
    );
    expect(newContainer).not.toBe(oldContainer);
    await takeover.done;
    expect(await docker(['inspect', '-f', `{{(index .NetworkSettings.Networks "${NETWORK}").IPAddress}}`, PLACEHOLDER_2])).toBe(oldAddress);
    // Off the network again, so that `down` can remove it.
    for (const name of [PLACEHOLDER, PLACEHOLDER_2]) await docker(['rm', '-f', name]);
    // A stale nginx would send green's traffic and the preview to the old address, where nothing listens.
    expect(newAddress).not.toBe(oldAddress);
    expect(await docker(['inspect', '-f', '{{.Config.Image}}', newContainer])).toBe(NEXT_IMAGE);
    // Every answer now comes from the recreated container (the old one is gone; a stale nginx would answer blue).
    for (let i = 0; i < 10; i++) expect(await predict()).toMatchObject({ color: idle, model: { version: '1.1.0' } });
    expect(await readFile(path.join(hostDir, '.env'), 'utf8')).toContain(`GREEN_IMAGE=${NEXT_IMAGE}`);
    expect(totals.failed, totals.errors.join('\n')).toBe(0);
  }, 420_000);

  it('`down -v` leaves no container, network or volume behind', async () => {
    must(await compose(['down', '-v']), 'docker-compose down -v');
    const label = `label=com.docker.compose.project=${PROJECT}`;
    expect(await docker(['ps', '-a', '-q', '--filter', label])).toBe('');
    expect(await docker(['network', 'ls', '-q', '--filter', label])).toBe('');
    expect(await docker(['volume', 'ls', '-q', '--filter', label])).toBe('');
    expect(existsSync(hostDir)).toBe(true);
  }, 120_000);
});

/**
 * Compose scale-out (issue 13): the four files with each color scaled to 3 containers. The only change to the
 * command is a host port range per color (one fixed host port cannot be bound by a second container); the
 * controller discovers each color's containers from Docker's DNS, nginx keeps the service names and spreads
 * requests over their A records.
 */
describe.skipIf(unavailable !== null)('the four-file Compose stack scaled to 3 replicas per color', () => {
  let engine: Engine | undefined;
  let ports: Forwarder | undefined;
  let hostDir: string;
  let services: string[];
  // The documented scale-out: host port ranges instead of 8001 and 8002 (docs/scaling.md, "Compose").
  const env = () => dockerEnv({ COMPOSE_PROJECT_NAME: PROJECT, BLUE_HOST_PORT: '8011-8019', GREEN_HOST_PORT: '8021-8029' });
  const compose = (args: string[], timeoutMs = 180_000) =>
    runCommand('docker-compose', [...FILES.flatMap((f) => ['-f', f]), ...args], { cwd: hostDir, env: env(), timeoutMs });
  const bgserve = (...args: string[]) => compose(['exec', '-T', 'controller', 'bgserve', ...args], 300_000);
  const containersOf = async (service: string) =>
    must(await compose(['ps', '-q', service]), 'ps -q')
      .trim()
      .split('\n')
      .filter(Boolean);
  const nginx = (p = '') => `http://127.0.0.1:${ports!.port(PUBLISHED.nginx)}${p}`;
  const scale = (n: number) =>
    compose(['up', '-d', '--scale', `mlservice_blue=${n}`, '--scale', `mlservice_green=${n}`, ...services], 300_000);

  interface ReplicaView {
    address: string;
    ready: boolean;
    model: { version: string } | null;
  }
  const replicas = async () =>
    (JSON.parse(must(await bgserve('status', '--json'), 'bgserve status')) as { colors: Record<string, { replicas: ReplicaView[] }> })
      .colors;
  /** Each container's own /health, from inside it: what it serves, whoever routes to it. */
  const servedVersion = async (container: string) =>
    (
      JSON.parse(
        await docker([
          'exec',
          container,
          'node',
          '-e',
          "fetch('http://127.0.0.1:8000/health').then((r) => r.text()).then((t) => process.stdout.write(t))",
        ]),
      ) as { model: { version: string } }
    ).model.version;

  beforeAll(async () => {
    hostDir = await deployHostDir();
    engine = await startEngine('netns');
    await compose(['down', '-v', '--remove-orphans']);
    ports = await forwardPorts(engine, [PUBLISHED.nginx, PUBLISHED.prometheus]);
    services = must(await compose(['config', '--services']), 'config --services')
      .trim()
      .split('\n')
      .filter((s) => s !== 'grafana');
  }, 300_000);

  afterAll(() => tearDownStack({ engine, ports, hostDir, compose }), 180_000);

  it('scales both colors to 3: status shows 3 replicas each, a release lands on all 3 green ones under load (0 failed), scales back', async () => {
    const started = Date.now();
    must(await scale(3), 'docker-compose up -d --scale mlservice_blue=3 --scale mlservice_green=3');
    const containers = { blue: await containersOf('mlservice_blue'), green: await containersOf('mlservice_green') };
    expect(containers.blue).toHaveLength(3);
    expect(containers.green).toHaveLength(3);
    // Each replica on a port of its color's range (8011-8019, 8021-8029), none on another's.
    const hostPorts = await Promise.all(
      [...containers.blue, ...containers.green].map(async (c) => Number((await docker(['port', c, '8000/tcp'])).split(':').at(-1))),
    );
    expect(new Set(hostPorts).size).toBe(6);
    await waitFor(
      'every container healthy',
      async () => {
        const all = await Promise.all(services.flatMap((s) => (s === 'prometheus' ? [] : [s])).map((s) => containersOf(s)));
        const states = await Promise.all(all.flat().map((c) => healthOf(c)));
        return states.every((st) => st === 'healthy') ? true : undefined;
      },
      240_000,
    );
    // Discovery resolves the service names every 5 s: every container is a ready replica of its color.
    const view = await waitFor(
      'status showing 3 ready replicas per color',
      async () => {
        const colors = await replicas();
        return ['blue', 'green'].every((c) => colors[c].replicas.length === 3 && colors[c].replicas.every((r) => r.ready))
          ? colors
          : undefined;
      },
      60_000,
    );
    figures['scale 3+3 to every replica in status'] = seconds(Date.now() - started);
    console.log(`scaled status: ${JSON.stringify(view)}`);
    // Prometheus finds every replica through the service names' A records (a static target would reach one per scrape).
    const prometheus = `http://127.0.0.1:${ports!.port(PUBLISHED.prometheus)}/api/v1/targets`;
    await waitFor(
      'Prometheus scraping 3 replicas per color',
      async () => {
        const body = (await (await fetch(prometheus)).json()) as {
          data: { activeTargets: Array<{ health: string; labels: Record<string, string> }> };
        };
        const up = body.data.activeTargets.filter((t) => t.labels.job === 'bgserve-instances' && t.health === 'up');
        const colors = up.map((t) => t.labels.color);
        return colors.filter((c) => c === 'blue').length === 3 && colors.filter((c) => c === 'green').length === 3 ? true : undefined;
      },
      60_000,
    );

    const { result, totals } = await timed('deploy 1.1.0 --wait on 3 replicas under load', () =>
      underLoadAt(nginx('/predict'), () => bgserve('deploy', 'models/wine-quality/1.1.0', '--wait', '--analysis', '5s')),
    );
    console.log(`scaled deploy under load: ${JSON.stringify(totals)}\n${result.stdout}`);
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toContain('SUCCEEDED');
    expect(totals.failed, totals.errors.join('\n')).toBe(0);
    expect(totals.sent).toBeGreaterThan(100);
    expect(await Promise.all(containers.green.map(servedVersion))).toEqual(['1.1.0', '1.1.0', '1.1.0']);
    expect(await predictAt(nginx())).toMatchObject({ color: 'green', model: { version: '1.1.0' } });
    const after = await replicas();
    expect(after.green.replicas.map((r) => r.model?.version)).toEqual(['1.1.0', '1.1.0', '1.1.0']);

    must(await scale(1), 'docker-compose up -d --scale mlservice_blue=1 --scale mlservice_green=1');
    expect(await containersOf('mlservice_green')).toHaveLength(1);
    await waitFor(
      'status showing 1 replica per color',
      async () => {
        const colors = await replicas();
        return ['blue', 'green'].every((c) => colors[c].replicas.length === 1) ? true : undefined;
      },
      60_000,
    );
    for (let i = 0; i < 10; i++) expect(await predictAt(nginx())).toMatchObject({ color: 'green', model: { version: '1.1.0' } });
  }, 900_000);
});
