/**
 * The README's quick start, followed as written: every command of its shell blocks runs in order, through bash,
 * in a clean folder that holds only the clone's models/ and data/ (so `.bgserve` is a fresh state dir), and each
 * must end as its comment says: the exit code in `(exit N)` (else 0), "promoted" / "rolled back" / "refused:
 * checksum" in the output, the JSON answer shown under the curl. What a test must change, and nothing else:
 *
 * - `npx bgserve` is the CLI from source (as every CLI test runs it): npx would need the clone as cwd.
 * - ports: `npm start` gets free ports (`up --port ... --control-port ...`), `localhost:8080` the router's, and
 *   every command the control API's in BGSERVE_CONTROL_URL; `load` gets `--url`.
 * - `npm start` is `up` without the build step (the CLI runs from source); `load --duration 5m` is 3m, and it is
 *   stopped (SIGINT, as Ctrl-C) once the last command has run.
 * - `up` and `load` are the commands the README runs in their own terminals: they run in the background.
 *
 * Skipped, by rule (SKIPPED below), each for a reason: `npm ci` (this suite runs after it), `bash .ci/run` (it
 * runs this very suite), `docker compose ...` (needs a Docker engine: test/packaging covers Compose).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI_ENTRY, freeUpPorts, ROOT, type Started, stopProcess } from '../support/processes.js';
import { type DocCommand, shellCommands } from './readme-commands.js';

const SKIPPED: { rule: RegExp; why: string }[] = [
  { rule: /^npm ci$/, why: 'the dependencies are installed before any test runs' },
  { rule: /^bash \.ci\/run$/, why: 'it runs the whole suite, this test among them' },
  { rule: /^docker compose /, why: 'needs a Docker engine; the Docker suite (test/packaging) runs Compose' },
];
const LONG_RUNNING = /^npm start$|^npx bgserve (up|load)\b/;

const started: Started[] = [];
afterAll(async () => {
  await Promise.all(started.map((p) => stopProcess(p)));
});

/** One README command through bash, `npx bgserve` being the CLI from source; `exec` so the PID is the command's. */
function run(command: string, cwd: string, env: NodeJS.ProcessEnv): Started {
  const tsx = path.join(ROOT, 'node_modules/tsx/dist/loader.mjs');
  const shim = `npx() { if [ "$1" = bgserve ]; then shift; exec node --import '${tsx}' '${CLI_ENTRY}' "$@"; fi; command npx "$@"; }`;
  const child = spawn('bash', ['-c', `${shim}\n${command.startsWith('npx ') ? command : `exec ${command}`}`], {
    cwd,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (out += c.toString()));
  const proc = { child, output: () => out };
  started.push(proc);
  return proc;
}

/** The exit code; a command still running after timeoutMs is stopped and fails the test with its output. */
async function exited(proc: Started, timeoutMs = 90_000): Promise<number | null> {
  if (proc.child.exitCode !== null) return proc.child.exitCode;
  let timer: NodeJS.Timeout | undefined;
  const code = await Promise.race([
    new Promise<number | null>((resolve) => proc.child.once('exit', (c) => resolve(c))),
    new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeoutMs);
    }),
  ]);
  clearTimeout(timer);
  if (code === 'timeout') {
    await stopProcess(proc);
    throw new Error(`still running after ${timeoutMs} ms:\n${proc.output()}`);
  }
  return code;
}

async function until(proc: Started, text: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!proc.output().includes(text)) {
    if (Date.now() > deadline || proc.child.exitCode !== null) throw new Error(`no "${text}" from the command:\n${proc.output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** What a deploy's comment promises about its output. */
function promised(c: DocCommand): RegExp[] {
  const wants: RegExp[] = [];
  if (!c.command.startsWith('npx bgserve deploy ')) return wants;
  if (/\bpromoted\b/.test(c.comment)) wants.push(/SUCCEEDED/);
  if (/\brolled back\b/.test(c.comment)) wants.push(/ROLLED_BACK/);
  if (/refused: checksum/.test(c.comment)) wants.push(/checksum_mismatch/);
  return wants;
}

describe('the README quick start, run as written', () => {
  it('promotes a release, rolls it back, refuses one and rolls three back, every command ending as its comment says', async () => {
    // `a && b` runs a, then b: `npm ci && npm start` is the skipped `npm ci`, then `npm start`.
    const commands = shellCommands(await readFile(path.join(ROOT, 'README.md'), 'utf8')).flatMap((c) =>
      c.command.split(' && ').map((command) => ({ ...c, command })),
    );
    const skipped = commands.filter((c) => SKIPPED.some((s) => s.rule.test(c.command)));
    // Skipped by rule only: these three, nothing else.
    expect(skipped.map((c) => c.command.split(' ').slice(0, 2).join(' '))).toEqual(['npm ci', 'bash .ci/run', 'docker compose']);

    const cwd = await mkdtemp(path.join(tmpdir(), 'bgserve-readme-'));
    try {
      await symlink(path.join(ROOT, 'models'), path.join(cwd, 'models'));
      await symlink(path.join(ROOT, 'data'), path.join(cwd, 'data'));
      const ports = await freeUpPorts();
      const env = { BGSERVE_CONTROL_URL: `http://127.0.0.1:${ports.control}` };
      const router = `127.0.0.1:${ports.router}`;
      const upFlags = `--port ${ports.router} --blue-port ${ports.blue} --green-port ${ports.green} --control-port ${ports.control}`;
      const background: { command: DocCommand; proc: Started }[] = [];
      const ran: string[] = [];

      for (const c of commands) {
        const command = c.command;
        if (SKIPPED.some((s) => s.rule.test(command))) continue;
        ran.push(command);
        if (LONG_RUNNING.test(command)) {
          if (/^npm start$|^npx bgserve up\b/.test(command)) {
            const proc = run(`npx bgserve up ${upFlags}`, cwd, env);
            await until(proc, 'Ctrl-C stops everything', 90_000);
            expect(proc.output()).toContain('100% blue');
            background.push({ command: c, proc });
          } else {
            const shortened = command.replace('--duration 5m', '--duration 3m');
            expect(shortened).not.toBe(command);
            const proc = run(`${shortened} --url http://${router}`, cwd, env);
            await until(proc, 'load: ', 10_000);
            background.push({ command: c, proc });
          }
          continue;
        }
        const proc = run(command.replaceAll('localhost:8080', router), cwd, env);
        const code = await exited(proc).catch((err: Error) => {
          throw new Error(`README.md:${c.line}: ${command}: ${err.message}`);
        });
        const out = proc.output();
        const where = `README.md:${c.line}: ${command}\n${out}`;
        expect(code, where).toBe(Number(/\(exit (\d+)\)/.exec(c.comment)?.[1] ?? 0));
        for (const want of promised(c)) expect(out, where).toMatch(want);
        if (command.startsWith('curl ')) {
          const shown = JSON.parse(c.comment) as { prediction: number };
          const answer = JSON.parse(out) as { prediction: number };
          expect(answer).toMatchObject({ ...shown, prediction: expect.any(Number) });
          expect(answer.prediction.toFixed(2)).toBe(shown.prediction.toFixed(2));
        }
        if (command === 'npx bgserve rollback') expect(out, where).toMatch(/blue/);
        if (command === 'npx bgserve history') {
          // The status column, newest first.
          const statuses = [...out.matchAll(/ (succeeded|failed|rolled_back) +[\d.]+s /g)].map((m) => m[1]);
          expect(statuses, where).toEqual(['rolled_back', 'rolled_back', 'rolled_back', 'failed', 'rolled_back']);
        }
      }
      // The quick start as the README orders it, nothing dropped.
      expect(ran.filter((c) => c.includes('deploy'))).toHaveLength(5);
      expect(ran).toContain('npx bgserve status');

      const load = background.find((b) => b.command.command.includes('load'))?.proc;
      if (!load) throw new Error('the README runs no load');
      load.child.kill('SIGINT');
      expect(await exited(load)).toBe(0);
      expect(load.output()).toContain('load: done:');
      expect(load.output()).toMatch(/failed 0 /);
    } finally {
      await Promise.all(started.map((p) => stopProcess(p)));
      await rm(cwd, { recursive: true, force: true });
    }
  }, 300_000);
});
