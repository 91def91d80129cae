/**
 * `bgserve controller`: the control API, the release engine and a traffic driver over instances it does not
 * start — the compose deployment (docker-compose.nginx.yml: nginx in its own container, external mode) and
 * Kubernetes (deploy/k8s: the embedded router in the controller pod). `bgserve up` is the same parts with
 * the instances started locally.
 */
import path from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { COLORS, DEFAULT_STATE_DIR, PORTS, PREVIEW_TOKEN_FILE, type Color } from '../config/defaults.js';
import { ensureTokenFile } from '../control/auth.js';
import { releasePlugin } from '../control/release-routes.js';
import { startControlServer } from '../control/server.js';
import { liveStatsPlugin, statusPagePlugin } from '../control/status-page.js';
import { startEmbeddedRouter } from '../traffic/embedded-router.js';
import type { NginxPaths } from '../traffic/nginx-config.js';
import { startNginxDriver } from '../traffic/nginx-driver.js';
import type { TrafficDriver, Upstream, Upstreams } from '../traffic/types.js';
import { startupTraffic } from '../controller/local.js';
import { RELEASE_LOG_FILE } from '../release/defaults.js';
import { ReleaseStore } from '../store/release-store.js';

type StartupTraffic = ReturnType<typeof startupTraffic>;
import { port } from './option-parsers.js';

/**
 * Where the official nginx image keeps its files, as the nginx process sees them (the controller only writes
 * the configuration and the live files). No access log: router metrics come from the instances there.
 */
export const EXTERNAL_NGINX_PATHS: Omit<NginxPaths, 'liveDir'> = {
  pid: '/var/run/nginx.pid',
  errorLog: '/dev/stderr',
  accessLog: null,
  tempDir: '/var/cache/nginx',
};
export const EXTERNAL_NGINX_LISTEN: Upstream = { host: '0.0.0.0', port: 80 };

export interface ControllerCliOptions {
  host: string;
  port: number;
  router: string;
  routerHost?: string;
  routerPort: number;
  blueUrl: string;
  greenUrl: string;
  stateDir: string;
  adminTokenFile?: string;
  prometheusUrl?: string;
  nginxConfig?: string;
  nginxLiveDir?: string;
  nginxCheckUrl?: string;
  nginxListen: Upstream;
  nginxPid: string;
  nginxErrorLog: string;
  nginxTempDir: string;
  nginxTestCommand: string;
  nginxReloadCommand: string;
}

function hostPort(value: string): Upstream {
  const match = /^(.+):(\d+)$/.exec(value);
  if (!match) throw new InvalidArgumentError('expected host:port');
  return { host: match[1], port: port(match[2]) };
}

/** http://host:port of an instance, as the router's upstream. */
export function upstreamOf(url: string): Upstream {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new InvalidArgumentError(`not a URL: ${url}`);
  }
  if (parsed.protocol !== 'http:') throw new InvalidArgumentError(`instances are reached over http: ${url}`);
  return { host: parsed.hostname, port: parsed.port === '' ? 80 : Number(parsed.port) };
}

const words = (command: string) => command.trim().split(/\s+/);

async function startTraffic(opts: ControllerCliOptions, upstreams: Upstreams, previewToken: string, initial: StartupTraffic): Promise<TrafficDriver> {
  if (opts.router === 'embedded') return startEmbeddedRouter({ host: opts.routerHost ?? opts.host, port: opts.routerPort, upstreams, previewToken, initial });
  if (opts.router !== 'nginx') throw new InvalidArgumentError('--router must be embedded or nginx');
  const missing = (['nginxConfig', 'nginxLiveDir', 'nginxCheckUrl'] as const).filter((k) => opts[k] === undefined);
  if (missing.length > 0) {
    throw new InvalidArgumentError(`--router nginx needs ${missing.map((k) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`).join(', ')}`);
  }
  return startNginxDriver({
    listen: opts.nginxListen,
    upstreams,
    // Rendered into the configuration nginx loads: until then (compose's seed), nginx refuses preview requests.
    previewToken,
    initial,
    checkUrl: opts.nginxCheckUrl,
    mode: {
      kind: 'external',
      configPath: path.resolve(opts.nginxConfig!),
      // As the nginx process sees them (its own container), so not resolved against this process's cwd.
      paths: { pid: opts.nginxPid, errorLog: opts.nginxErrorLog, accessLog: null, tempDir: opts.nginxTempDir, liveDir: path.resolve(opts.nginxLiveDir!) },
      testCommand: words(opts.nginxTestCommand),
      reloadCommand: words(opts.nginxReloadCommand),
    },
  });
}

export async function runController(opts: ControllerCliOptions): Promise<void> {
  const stateDir = path.resolve(opts.stateDir);
  const token = await ensureTokenFile(path.join(stateDir, 'token'));
  const previewToken = await ensureTokenFile(path.join(stateDir, PREVIEW_TOKEN_FILE));
  const urls: Record<Color, string> = { blue: opts.blueUrl.replace(/\/+$/, ''), green: opts.greenUrl.replace(/\/+$/, '') };
  const upstreams = Object.fromEntries(COLORS.map((c) => [c, upstreamOf(urls[c])])) as Upstreams;
  const log = (message: string, fields?: Record<string, unknown>) =>
    process.stdout.write(`bgserve: ${message}${fields ? ` ${JSON.stringify(fields)}` : ''}\n`);

  // The router starts on what the release log says (the reconcile below then agrees), not on all-blue.
  const store = ReleaseStore.open(path.join(stateDir, RELEASE_LOG_FILE), { onWarning: (message) => log(message) });
  let traffic: TrafficDriver;
  try {
    traffic = await startTraffic(opts, upstreams, previewToken, startupTraffic(store.latest()));
  } catch (err) {
    store.close();
    throw err;
  }
  const releases = releasePlugin({
    store,
    stateDir,
    adminTokenFile: path.resolve(opts.adminTokenFile ?? path.join(stateDir, 'admin-token')),
    ...(opts.prometheusUrl ? { prometheusUrl: opts.prometheusUrl } : {}),
    log,
  });
  let control: Awaited<ReturnType<typeof startControlServer>>;
  try {
    // The same plugins as `bgserve up`: release routes, live stats and the status page.
    control = await startControlServer({
      host: opts.host,
      port: opts.port,
      token,
      traffic,
      colors: { blue: { url: urls.blue }, green: { url: urls.green } },
      plugins: [releases, liveStatsPlugin()],
      publicPlugins: [statusPagePlugin],
    });
  } catch (err) {
    await traffic.close();
    throw err;
  }
  log('controller is up', { control: control.url, router: traffic.url, kind: traffic.kind, blue: urls.blue, green: urls.green });

  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  await control.app.close();
  await traffic.close();
}

export function registerController(program: Command): void {
  program
    .command('controller')
    .description('Run the control API, release engine and router over instances started elsewhere (compose, Kubernetes)')
    .requiredOption('--blue-url <url>', 'the blue instance, e.g. http://mlservice_blue:8000')
    .requiredOption('--green-url <url>', 'the green instance, e.g. http://mlservice_green:8000')
    .option('--host <host>', 'address the control API (and the embedded router) listen on', '127.0.0.1')
    .option('--port <port>', 'control API port', port, PORTS.control)
    .option('--router <kind>', 'embedded (in this process) | nginx (an nginx run elsewhere, driven through files)', 'embedded')
    .option('--router-host <host>', 'embedded router address (default: --host)')
    .option('--router-port <port>', 'embedded router port', port, PORTS.router)
    .option('--state-dir <dir>', 'token, release log and admin token', DEFAULT_STATE_DIR)
    .option('--admin-token-file <file>', "the instances' admin token (default: <state-dir>/admin-token)")
    .option('--prometheus-url <url>', 'judge releases with PromQL on this Prometheus (default: scrape the instances)')
    .option('--nginx-config <file>', 'nginx: where to write the configuration the nginx side applies')
    .option('--nginx-live-dir <dir>', 'nginx: live weight files, at the same path in the nginx container')
    .option('--nginx-check-url <url>', 'nginx: where this process reaches nginx to see a change in effect')
    .option('--nginx-listen <host:port>', 'nginx: address nginx listens on', hostPort, EXTERNAL_NGINX_LISTEN)
    .option('--nginx-pid <file>', "nginx: its pid file, as nginx sees it", EXTERNAL_NGINX_PATHS.pid)
    .option('--nginx-error-log <file>', 'nginx: its error log, as nginx sees it', EXTERNAL_NGINX_PATHS.errorLog)
    .option('--nginx-temp-dir <dir>', "nginx: its body and proxy temp files' directory (must exist)", EXTERNAL_NGINX_PATHS.tempDir)
    .option('--nginx-test-command <cmd>', 'nginx: checks a candidate file ({config}); "true" when the nginx side checks', 'true')
    .option('--nginx-reload-command <cmd>', 'nginx: makes nginx load the file; "true" when the nginx side watches it', 'true')
    .action(async (o: ControllerCliOptions) => {
      await runController(o);
      process.exit(0);
    });
}
