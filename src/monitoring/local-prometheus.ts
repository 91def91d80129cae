/**
 * Starts a real Prometheus (the one installed on the machine) for the local stack: loopback scrape targets,
 * the repository's rules, a private data directory. Used by `bgserve up --prometheus` and by tests.
 */
import { spawn } from 'node:child_process';
import { access, constants, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { COLORS, type Color } from '../config/defaults.js';
import { renderLocalPrometheusConfig, type ScrapeTargets } from './prometheus-config.js';

export interface LocalPrometheusOptions {
  port: number;
  targets: ScrapeTargets;
  /** Holds the generated config and the TSDB; the caller owns it (and removes it if temporary). */
  dataDir: string;
  /** Default '2s'; also the rule evaluation interval. */
  scrapeInterval?: string;
  ruleFiles?: string[];
  /** Default 'prometheus' on PATH. */
  binary?: string;
  /** How long to wait for /-/ready, default 20s. */
  readyTimeoutMs?: number;
}

export interface LocalPrometheus {
  url: string;
  pid: number;
  dataDir: string;
  /** SIGTERM, then SIGKILL after 5s; resolves once the process has exited. */
  stop(): Promise<void>;
  /** Synchronous last resort (process exit): SIGKILL. */
  killNow(): void;
}

/** The Prometheus executable on PATH, if there is one. */
export async function findPrometheus(name = 'prometheus'): Promise<string | undefined> {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir === '') continue;
    const candidate = path.join(dir, name);
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

export async function startLocalPrometheus(options: LocalPrometheusOptions): Promise<LocalPrometheus> {
  const binary = options.binary ?? (await findPrometheus());
  if (binary === undefined) throw new Error('prometheus is not installed (not found on PATH); on Debian: apt-get install prometheus');
  await mkdir(options.dataDir, { recursive: true });
  const configFile = path.join(options.dataDir, 'prometheus.yml');
  await writeFile(
    configFile,
    renderLocalPrometheusConfig({
      targets: options.targets,
      ...(options.scrapeInterval !== undefined && { scrapeInterval: options.scrapeInterval }),
      ...(options.ruleFiles !== undefined && { ruleFiles: options.ruleFiles }),
    }),
  );
  const address = `127.0.0.1:${options.port}`;
  const child = spawn(
    binary,
    [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${path.join(options.dataDir, 'tsdb')}`,
      `--web.listen-address=${address}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  const append = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-20_000);
  };
  child.stdout.on('data', append);
  child.stderr.on('data', append);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const spawnError = new Promise<never>((_, reject) => child.once('error', reject));

  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  };

  const url = `http://${address}`;
  try {
    await Promise.race([waitReady(url, configFile, options.readyTimeoutMs ?? 20_000, () => child.exitCode), spawnError]);
  } catch (err) {
    await stop();
    throw new Error(`prometheus did not start on ${address}: ${(err as Error).message}\n${output}`);
  }
  const killNow = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  return { url, pid: child.pid ?? -1, dataDir: options.dataDir, stop, killNow };
}

/**
 * Waits until the Prometheus answering on `url` is ready and is ours: another one already on the port would
 * answer /-/ready too, while ours fails to bind and exits.
 */
async function waitReady(url: string, configFile: string, timeoutMs: number, exitCode: () => number | null): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    const code = exitCode();
    if (code !== null) throw new Error(`exited with code ${code}`);
    try {
      const res = await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(1_000) });
      if (res.status === 200) {
        const flags = await fetch(`${url}/api/v1/status/flags`, { signal: AbortSignal.timeout(1_000) });
        const body = (await flags.json()) as { data?: Record<string, string> };
        if (body.data?.['config.file'] === configFile) return;
        last = `another Prometheus answers on ${url} (config ${body.data?.['config.file']})`;
      } else {
        last = `status ${res.status}`;
      }
    } catch (err) {
      last = String(err);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`not ready after ${timeoutMs}ms (${last})`);
}

export interface StackPrometheusOptions {
  /** Base URLs of the instances (each replica of a color) and of the control API, e.g. http://127.0.0.1:8001 */
  instances: Record<Color, string | readonly string[]>;
  control: string;
  /** Prometheus listens on 127.0.0.1 at this port. */
  port: number;
  dataDir: string;
  /** Where to say that Prometheus is not installed. */
  warn: (message: string) => void;
}

/**
 * The Prometheus of `bgserve up --prometheus`: scrapes the stack's instances and control API every 2s.
 * Resolves undefined (after a warning) when Prometheus is not installed; fails when it cannot start.
 */
export async function startStackPrometheus(opts: StackPrometheusOptions): Promise<LocalPrometheus | undefined> {
  const binary = await findPrometheus();
  if (binary === undefined) {
    opts.warn('--prometheus: prometheus is not installed (Debian/Ubuntu: apt-get install prometheus); continuing without it');
    return undefined;
  }
  const hostPort = (url: string) => new URL(url).host;
  return startLocalPrometheus({
    binary,
    port: opts.port,
    dataDir: opts.dataDir,
    targets: {
      instances: COLORS.flatMap((color) => [opts.instances[color]].flat().map((url) => ({ color, address: hostPort(url) }))),
      control: hostPort(opts.control),
    },
  });
}

export function prometheusBannerLine(prometheus: LocalPrometheus): string {
  return `  prometheus ${prometheus.url}   (scrapes both colors and the control API every 2s; data in ${prometheus.dataDir})`;
}
