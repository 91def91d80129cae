/**
 * The image without an engine: replays the Dockerfile natively in a clean temporary directory — its COPY
 * lines decide what goes in, its RUN lines run as written (the production install offline, from the npm
 * cache `npm ci` filled) — then starts the ENTRYPOINT + CMD with the default bundle on a loopback port and
 * checks the HEALTHCHECK, /health and /predict. The one liberty: the build stage's full `npm ci` is stood in
 * for by the checkout's node_modules (installed by `npm ci` from the same lockfile), to stay within a minute.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readFile, readdir, rm, stat, symlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ROOT, freePort, stopProcess, waitForHttp, type Started } from '../support/processes.js';
import { WINE_EXAMPLE } from '../../src/model/wine.js';
import { dockerignorePatterns, expandVars, isIgnored, parseDockerfile, type Instruction, type Stage } from './dockerfile.js';

const run = promisify(execFile);

const dockerfile = parseDockerfile(await readFile(path.join(ROOT, 'Dockerfile'), 'utf8'));
const ignorePatterns = dockerignorePatterns(await readFile(path.join(ROOT, '.dockerignore'), 'utf8'));
const dockerArch = process.arch === 'arm64' ? 'arm64' : 'amd64';
const NPM_CACHE = (await run('npm', ['config', 'get', 'cache'])).stdout.trim();

/** What a replayed stage leaves behind: its filesystem root and the settings the image keeps. */
interface Replayed {
  root: string;
  workdir: string;
  env: Record<string, string>;
  user?: string;
  healthcheck?: string[];
  entrypoint: string[];
  cmd: string[];
}

function inStage(root: string, workdir: string, p: string): string {
  return path.isAbsolute(p) ? path.join(root, p) : path.join(root, workdir, p);
}

/** The environment a process in the replayed image sees: image paths in PATH point into the replay root. */
function processEnv(r: Replayed): NodeJS.ProcessEnv {
  const mappedPath = (r.env.PATH ?? process.env.PATH ?? '')
    .split(':')
    .map((entry) => (entry.startsWith('/') && existsSync(path.join(r.root, entry)) ? path.join(r.root, entry) : entry))
    .join(':');
  return { ...process.env, ...r.env, PATH: mappedPath };
}

async function copyInto(source: string, dest: string, destIsDir: boolean): Promise<void> {
  const info = await stat(source);
  if (info.isDirectory()) {
    // Docker copies a directory's contents, not the directory itself.
    await mkdir(dest, { recursive: true });
    await cp(source, dest, { recursive: true, verbatimSymlinks: true });
  } else {
    const target = destIsDir ? path.join(dest, path.basename(source)) : dest;
    await mkdir(path.dirname(target), { recursive: true });
    await cp(source, target);
  }
}

async function replayStage(
  stage: Stage,
  root: string,
  stages: Map<string, Promise<Replayed>>,
  opts: { isBuildStage: boolean },
): Promise<Replayed> {
  const vars: Record<string, string | undefined> = Object.fromEntries(dockerfile.globalArgs);
  const r: Replayed = { root, workdir: '/', env: {}, entrypoint: [], cmd: [] };
  const sub = (text: string) => expandVars(text, { ...process.env, ...vars, ...r.env });
  for (const ins of stage.instructions as Instruction[]) {
    switch (ins.kind) {
      case 'ARG':
        vars[ins.name] = ins.name === 'TARGETARCH' ? dockerArch : ins.value;
        break;
      case 'ENV':
        for (const [key, value] of ins.vars) r.env[key] = sub(value);
        break;
      case 'WORKDIR':
        r.workdir = path.posix.resolve(r.workdir, sub(ins.dir));
        await mkdir(path.join(root, r.workdir), { recursive: true });
        break;
      case 'COPY': {
        const dest = inStage(root, r.workdir, sub(ins.dest));
        const destIsDir = ins.dest.endsWith('/') || ins.sources.length > 1;
        for (const source of ins.sources.map(sub)) {
          let from: string;
          if (ins.from) {
            // Waits for that stage only here, so stages replay side by side as BuildKit builds them.
            const other = await stages.get(ins.from);
            if (!other) throw new Error(`COPY --from=${ins.from}: no such stage replayed`);
            from = path.join(other.root, source);
          } else {
            const rel = path.posix.normalize(source).replace(/\/$/, '');
            expect(isIgnored(rel, ignorePatterns), `.dockerignore excludes COPY source ${rel}`).toBe(false);
            from = path.join(ROOT, rel);
          }
          expect(existsSync(from), `COPY source ${source} exists`).toBe(true);
          await copyInto(from, dest, destIsDir);
        }
        break;
      }
      case 'RUN': {
        const cwd = path.join(root, r.workdir);
        if (opts.isBuildStage && /^npm ci\b/.test(ins.command)) {
          await symlink(path.join(ROOT, 'node_modules'), path.join(cwd, 'node_modules'), 'dir');
          break;
        }
        // HOME is the replay's own (a RUN may clean up "$HOME/.npm", as the image's does); npm still installs
        // offline from this machine's cache, named explicitly.
        const env = {
          ...processEnv(r),
          ...Object.fromEntries(Object.entries(vars).filter(([, v]) => v !== undefined)),
          HOME: path.join(root, 'home'),
          npm_config_cache: NPM_CACHE,
          npm_config_offline: 'true',
        };
        await mkdir(env.HOME, { recursive: true });
        await run('sh', ['-ec', ins.command], { cwd, env, maxBuffer: 16 * 1024 * 1024 });
        break;
      }
      case 'USER':
        r.user = ins.user;
        break;
      case 'EXPOSE':
        break;
      case 'HEALTHCHECK':
        r.healthcheck = ins.command;
        break;
      case 'ENTRYPOINT':
        r.entrypoint = ins.command;
        break;
      case 'CMD':
        r.cmd = ins.command;
        break;
    }
  }
  return r;
}

/** The CMD with its listening port and interface moved to a free loopback port. */
function onLoopback(args: string[], port: number): string[] {
  return args.map((arg, i) => {
    if (args[i - 1] === '--port') return String(port);
    if (args[i - 1] === '--host') return '127.0.0.1';
    return arg;
  });
}

describe('Docker image, replayed natively', () => {
  let tmp: string;
  let image: Replayed;
  let port: number;
  let instance: Started | undefined;

  beforeAll(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'bgserve-image-'));
    const stages = new Map<string, Promise<Replayed>>();
    const last = dockerfile.stages.at(-1)!;
    const replays = dockerfile.stages.map((stage, i) => {
      const replay = replayStage(stage, path.join(tmp, stage.name ?? `stage-${i}`), stages, { isBuildStage: stage !== last });
      if (stage.name) stages.set(stage.name, replay);
      return replay;
    });
    // Every stage must replay cleanly, the final one is the image.
    [image] = (await Promise.all(replays)).slice(-1);
    port = await freePort();
    const [command, ...args] = [...image.entrypoint, ...onLoopback(image.cmd, port)];
    const child = spawn(command, args, {
      cwd: path.join(image.root, image.workdir),
      env: processEnv(image),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    instance = { child, output: () => out };
    await waitForHttp(`http://127.0.0.1:${port}/health`, { proc: instance, timeoutMs: 30_000 });
  }, 150_000);

  afterAll(async () => {
    if (instance) await stopProcess(instance);
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('runs as a non-root user with the CLI as entrypoint and the default bundle as command', () => {
    expect(image.user).toBeDefined();
    expect(['root', '0']).not.toContain(image.user);
    expect(image.entrypoint).toEqual(['bgserve']);
    expect(image.cmd.slice(0, 3)).toEqual(['serve', '--bundle', 'models/wine-quality/1.0.0']);
    expect(image.env.ONNXRUNTIME_NODE_INSTALL).toBe('skip');
  });

  it('holds production dependencies only, with onnxruntime binaries for this platform alone', async () => {
    const app = path.join(image.root, image.workdir);
    for (const devOnly of ['typescript', 'vitest', 'tsx', 'kubernetes-models']) {
      expect(existsSync(path.join(app, 'node_modules', devOnly)), `${devOnly} is not in the image`).toBe(false);
    }
    expect(existsSync(path.join(app, 'node_modules', 'fastify'))).toBe(true);
    const ortBin = path.join(app, 'node_modules/onnxruntime-node/bin');
    const platforms: string[] = [];
    for (const napi of await readdir(ortBin)) {
      for (const os_ of await readdir(path.join(ortBin, napi))) {
        for (const arch of await readdir(path.join(ortBin, napi, os_))) platforms.push(`${os_}/${arch}`);
      }
    }
    expect(platforms).toEqual([`linux/${process.arch === 'arm64' ? 'arm64' : 'x64'}`]);
    // The pruned package still loads its native binding.
    const { stdout } = await run(
      process.execPath,
      ['-e', "import('onnxruntime-node').then((m) => console.log(typeof m.InferenceSession.create))"],
      { cwd: app },
    );
    expect(stdout.trim()).toBe('function');
  });

  it('passes its HEALTHCHECK', async () => {
    expect(image.healthcheck).toBeDefined();
    const [command, ...args] = image.healthcheck!.map((a) => a.replace('127.0.0.1:8000', `127.0.0.1:${port}`));
    expect(args.join(' ')).toContain('/health');
    await expect(run(command, args, { env: processEnv(image), timeout: 10_000 })).resolves.toBeDefined();
  });

  it('answers /health and the original /predict example with the default bundle', async () => {
    const health = await fetch(`http://127.0.0.1:${port}/health`);
    expect(health.status).toBe(200);
    const body = (await health.json()) as Record<string, unknown>;
    expect(JSON.stringify(body)).toContain('1.0.0');

    const res = await fetch(`http://127.0.0.1:${port}/predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(WINE_EXAMPLE),
    });
    expect(res.status).toBe(200);
    const prediction = (await res.json()) as { prediction: number };
    expect(typeof prediction.prediction).toBe('number');
    expect(prediction.prediction).toBeGreaterThanOrEqual(3);
    expect(prediction.prediction).toBeLessThanOrEqual(8);
  });
});
