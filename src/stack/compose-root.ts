/**
 * The composition root of the local stack: the one place a traffic driver is chosen. It starts both
 * instances, the router (embedded or a private nginx) and the control API, and stops them in reverse order.
 */
import path from 'node:path';
import { COLORS, DEFAULT_BUNDLE, DEFAULT_STATE_DIR, PORTS, type Color } from '../config/defaults.js';
import { ensureTokenFile } from '../control/auth.js';
import { startControlServer, type ControlPlugin, type ControlServer } from '../control/server.js';
import { startEmbeddedRouter } from '../traffic/embedded-router.js';
import { NginxDriver, startNginxDriver } from '../traffic/nginx-driver.js';
import type { DriverKind, TrafficDriver, Upstreams } from '../traffic/types.js';
import { InstancePair, instanceSpecs, type CliCommand, type ExitInfo } from './instances.js';

export interface LocalStackOptions {
  router: DriverKind;
  host: string;
  port: number;
  bluePort: number;
  greenPort: number;
  controlPort: number;
  bundle: string;
  stateDir: string;
  /** How to run `bgserve serve` (default: this process's own command line). */
  cli?: CliCommand;
  /** More flags for both instances' `serve`. */
  instanceArgs?: string[];
  /** Control API plugins under /api (release routes...). */
  controlPlugins?: ControlPlugin[];
  publicControlPlugins?: ControlPlugin[];
  onInstanceExit?: (color: Color, exit: ExitInfo) => void;
}

export const LOCAL_STACK_DEFAULTS: LocalStackOptions = {
  router: 'embedded',
  host: '127.0.0.1',
  port: PORTS.router,
  bluePort: PORTS.blue,
  greenPort: PORTS.green,
  controlPort: PORTS.control,
  bundle: DEFAULT_BUNDLE,
  stateDir: DEFAULT_STATE_DIR,
};

export interface LocalStack {
  traffic: TrafficDriver;
  instances: InstancePair;
  control: ControlServer;
  controlUrl: string;
  tokenFile: string;
  stateDir: string;
  /** Stops the control API, the router, then the instances (drained). Safe to call twice. */
  stop(): Promise<void>;
  /** Synchronous last resort (process exit): SIGKILL to the children still running. */
  killNow(): void;
}

export function stateFiles(stateDir: string) {
  const dir = path.resolve(stateDir);
  return {
    dir,
    token: path.join(dir, 'token'),
    adminToken: path.join(dir, 'admin-token'),
    logs: path.join(dir, 'logs'),
    nginxPrefix: path.join(dir, 'nginx'),
  };
}

export async function startLocalStack(options: Partial<LocalStackOptions> = {}): Promise<LocalStack> {
  const opts = { ...LOCAL_STACK_DEFAULTS, ...options };
  const files = stateFiles(opts.stateDir);
  const token = await ensureTokenFile(files.token);
  await ensureTokenFile(files.adminToken);
  const ports: Record<Color, number> = { blue: opts.bluePort, green: opts.greenPort };
  const upstreams = Object.fromEntries(COLORS.map((c) => [c, { host: opts.host, port: ports[c] }])) as Upstreams;

  const instances = await InstancePair.start(
    instanceSpecs({
      host: opts.host,
      ports,
      bundle: opts.bundle,
      logDir: files.logs,
      adminTokenFile: files.adminToken,
      extraArgs: opts.instanceArgs,
    }),
    { cli: opts.cli, onUnexpectedExit: opts.onInstanceExit },
  );

  let traffic: TrafficDriver | undefined;
  try {
    traffic =
      opts.router === 'nginx'
        ? await startNginxDriver({ listen: { host: opts.host, port: opts.port }, upstreams, mode: { kind: 'managed', prefix: files.nginxPrefix } })
        : await startEmbeddedRouter({ host: opts.host, port: opts.port, upstreams });
    const control = await startControlServer({
      host: opts.host,
      port: opts.controlPort,
      token,
      traffic,
      colors: { blue: { url: instances.instances.blue.url }, green: { url: instances.instances.green.url } },
      stack: instances,
      plugins: opts.controlPlugins,
      publicPlugins: opts.publicControlPlugins,
    });
    const router = traffic;
    let stopping: Promise<void> | null = null;
    return {
      traffic: router,
      instances,
      control,
      controlUrl: control.url,
      tokenFile: files.token,
      stateDir: files.dir,
      stop: () =>
        (stopping ??= (async () => {
          await control.app.close();
          await router.close();
          await instances.stop();
        })()),
      killNow: () => {
        if (router instanceof NginxDriver) router.killNow();
        instances.killNow();
      },
    };
  } catch (err) {
    await traffic?.close();
    await instances.stop();
    throw err;
  }
}
