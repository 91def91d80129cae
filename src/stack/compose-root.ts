/**
 * The composition root of the local stack: the one place a traffic driver is chosen. It starts both
 * instances, the router (embedded or a private nginx) and the control API, and stops them in reverse order.
 * What it starts is recorded in <state-dir>/stack.json; a start after a crash reclaims the leftovers first
 * (reclaim.ts: instances adopted, the rest stopped) and fails clearly on a port held by anything else.
 */
import path from 'node:path';
import { COLORS, DEFAULT_BUNDLE, DEFAULT_STATE_DIR, PORTS, type Color } from '../config/defaults.js';
import { ensureTokenFile } from '../control/auth.js';
import { startControlServer, type ControlPlugin, type ControlServer } from '../control/server.js';
import { startEmbeddedRouter } from '../traffic/embedded-router.js';
import { NginxDriver, startNginxDriver } from '../traffic/nginx-driver.js';
import type { DriverKind, TrafficDriver, Upstreams } from '../traffic/types.js';
import { adoptInstance, currentCli, InstancePair, instanceSpecs, serveArgv, type CliCommand, type ExitInfo, type InstanceProcess, type InstanceSpec } from './instances.js';
import { assertPortsFree, reclaimStack, type PortUse, type WantedInstance } from './reclaim.js';
import { StackRecorder, stackRecordPath } from './stack-record.js';

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
  /** What the start-up did with a previous run's leftovers (adopted, stopped). */
  log?: (message: string) => void;
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
  /** <state-dir>/stack.json: add what else is started with the stack (e.g. Prometheus). */
  record: StackRecorder;
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
    stackRecord: stackRecordPath(dir),
  };
}

/**
 * Takes over what a crashed `up` left on this state dir (reclaim.ts), records this run in stack.json, and has
 * both instances running: adopted or started. The previous router is left to the caller to stop.
 */
async function startInstances(
  opts: LocalStackOptions,
  specs: Record<Color, InstanceSpec>,
): Promise<{ instances: InstancePair; record: StackRecorder; stopPreviousRouter: () => Promise<void> }> {
  const files = stateFiles(opts.stateDir);
  const cli = opts.cli ?? currentCli();
  const wanted = {} as Record<Color, WantedInstance>;
  for (const c of COLORS) wanted[c] = { argv: serveArgv(specs[c], cli), host: opts.host, port: specs[c].port };
  const reclaimed = await reclaimStack({ file: files.stackRecord, wanted, nginxPrefix: files.nginxPrefix, log: opts.log });
  const adopted: Partial<Record<Color, InstanceProcess>> = {};
  for (const c of COLORS) {
    const entry = reclaimed.adopted[c];
    if (entry) adopted[c] = adoptInstance(specs[c], entry, opts.onInstanceExit);
  }
  const binds: PortUse[] = [
    ...COLORS.filter((c) => !adopted[c]).map((c) => ({ what: `${c} instance`, flag: `--${c}-port`, host: opts.host, port: specs[c].port })),
    { what: 'control API', flag: '--control-port', host: opts.host, port: opts.controlPort },
  ];
  const record = await StackRecorder.open(files.stackRecord, COLORS.flatMap((c) => reclaimed.adopted[c] ?? []));
  try {
    await assertPortsFree(binds);
    const instances = await InstancePair.start(specs, {
      cli,
      adopted,
      onUnexpectedExit: opts.onInstanceExit,
      onSpawn: (i) => record.add({ role: i.color, pid: i.pid ?? -1, host: i.spec.host, port: i.spec.port, argv: i.argv, stopSignal: 'SIGTERM' }),
    });
    return { instances, record, stopPreviousRouter: reclaimed.stopRouter };
  } catch (err) {
    await Promise.all(Object.values(adopted).map((i) => i.stop()));
    await reclaimed.stopRouter();
    await record.remove();
    throw err;
  }
}

export async function startLocalStack(options: Partial<LocalStackOptions> = {}): Promise<LocalStack> {
  const opts = { ...LOCAL_STACK_DEFAULTS, ...options };
  const files = stateFiles(opts.stateDir);
  const token = await ensureTokenFile(files.token);
  await ensureTokenFile(files.adminToken);
  const ports: Record<Color, number> = { blue: opts.bluePort, green: opts.greenPort };
  const upstreams = Object.fromEntries(COLORS.map((c) => [c, { host: opts.host, port: ports[c] }])) as Upstreams;

  const specs = instanceSpecs({
    host: opts.host,
    ports,
    bundle: opts.bundle,
    logDir: files.logs,
    adminTokenFile: files.adminToken,
    extraArgs: opts.instanceArgs,
  });
  const { instances, record, stopPreviousRouter } = await startInstances(opts, specs);

  let traffic: TrafficDriver | undefined;
  try {
    await stopPreviousRouter();
    await assertPortsFree([{ what: `router (${opts.router})`, flag: '--port', host: opts.host, port: opts.port }]);
    traffic =
      opts.router === 'nginx'
        ? await startNginxDriver({ listen: { host: opts.host, port: opts.port }, upstreams, mode: { kind: 'managed', prefix: files.nginxPrefix } })
        : await startEmbeddedRouter({ host: opts.host, port: opts.port, upstreams });
    if (traffic instanceof NginxDriver && traffic.pid) {
      await record.add({ role: 'nginx', pid: traffic.pid, host: opts.host, port: opts.port, stopSignal: 'SIGQUIT' });
    }
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
      record,
      stop: () =>
        (stopping ??= (async () => {
          await control.app.close();
          await router.close();
          await instances.stop();
          await record.remove();
        })()),
      killNow: () => {
        if (router instanceof NginxDriver) router.killNow();
        instances.killNow();
        record.removeSync();
      },
    };
  } catch (err) {
    await traffic?.close();
    await instances.stop();
    await record.remove();
    throw err;
  }
}
