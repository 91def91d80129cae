/**
 * The composition root of the local stack: the one place a traffic driver is chosen. It starts both
 * instances, the router (embedded or a private nginx) and the control API, and stops them in reverse order.
 * What it starts is recorded in <state-dir>/stack.json; a start after a crash reclaims the leftovers first
 * (reclaim.ts: instances and the router adopted, the rest stopped) and fails clearly on a port held by anything
 * else. The embedded router runs in a process of its own (`bgserve router`), so that, like the instances and the
 * managed nginx, it outlives a crash of `up`: a restart adopts it and traffic never stops. Every router starts
 * on the traffic the release log says (startupTraffic), before any request.
 */
import path from 'node:path';
import { COLORS, DEFAULT_BUNDLE, DEFAULT_STATE_DIR, PORTS, PREVIEW_TOKEN_FILE, type Color } from '../config/defaults.js';
import { ensureTokenFile } from '../control/auth.js';
import { startControlServer, type ControlPlugin, type ControlServer } from '../control/server.js';
import { startupTraffic } from '../controller/local.js';
import { RELEASE_LOG_FILE } from '../release/defaults.js';
import { ReleaseStore } from '../store/release-store.js';
import { NginxDriver, startNginxDriver } from '../traffic/nginx-driver.js';
import { RemoteRouter } from '../traffic/remote-router.js';
import type { DriverKind, MirrorConfig, TrafficDriver, Upstreams, Weights } from '../traffic/types.js';
import { adoptedHandle, adoptInstance, currentCli, InstancePair, instanceSpecs, serveArgv, stackBundleRoots, type CliCommand, type ExitInfo, type InstanceProcess, type InstanceSpec } from './instances.js';
import { stopProcessByPid } from './proc.js';
import { assertPortsFree, reclaimStack, type PortUse, type WantedInstance, type WantedRouter } from './reclaim.js';
import { adoptRouterProcess, routerArgv, startRouterProcess, type RouterProcess, type RouterSpec } from './router-process.js';
import { StackRecorder, stackRecordPath, type RecordedProcess } from './stack-record.js';

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
  /** Folders the instances may load bundles from, besides models/ and the state dir (`up --bundle-root`). */
  bundleRoots?: string[];
  /** Control API plugins under /api (release routes...). */
  controlPlugins?: ControlPlugin[];
  publicControlPlugins?: ControlPlugin[];
  onInstanceExit?: (color: Color, exit: ExitInfo) => void;
  /** What the start-up did with a previous run's leftovers (adopted, stopped). */
  log?: (message: string) => void;
  /**
   * The traffic the router starts on, as the release log says (startupTraffic); null: the log has no release.
   * Default: read from the release log in the state dir.
   */
  initialTraffic?: StartupTraffic | null;
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
    /** The routers' preview route credential (the release engine's smoke checks send it). */
    previewToken: path.join(dir, PREVIEW_TOKEN_FILE),
    /** The router process's control endpoint token. */
    routerToken: path.join(dir, 'router-token'),
    routerReady: path.join(dir, 'router.json'),
    logs: path.join(dir, 'logs'),
    nginxPrefix: path.join(dir, 'nginx'),
    stackRecord: stackRecordPath(dir),
  };
}

/**
 * Takes over what a crashed `up` left on this state dir (reclaim.ts), records this run in stack.json, and has
 * both instances running: adopted or started. The previous router is returned to adopt, or left to the caller
 * to stop.
 */
async function startInstances(
  opts: LocalStackOptions,
  specs: Record<Color, InstanceSpec>,
  wantedRouter: WantedRouter,
  tokens: { admin: string; router: string },
): Promise<{ instances: InstancePair; record: StackRecorder; previousRouter?: RecordedProcess; stopPreviousRouter: () => Promise<void> }> {
  const files = stateFiles(opts.stateDir);
  const cli = opts.cli ?? currentCli();
  const wanted = {} as Record<Color, WantedInstance>;
  for (const c of COLORS) wanted[c] = { argv: serveArgv(specs[c], cli), host: opts.host, port: specs[c].port };
  const reclaimed = await reclaimStack({
    file: files.stackRecord,
    wanted,
    router: wantedRouter,
    adminToken: tokens.admin,
    routerToken: tokens.router,
    nginxPrefix: files.nginxPrefix,
    log: opts.log,
  });
  const adopted: Partial<Record<Color, InstanceProcess>> = {};
  for (const c of COLORS) {
    const entry = reclaimed.adopted[c];
    if (entry) adopted[c] = adoptInstance(specs[c], entry, opts.onInstanceExit);
  }
  const binds: PortUse[] = [
    ...COLORS.filter((c) => !adopted[c]).map((c) => ({ what: `${c} instance`, flag: `--${c}-port`, host: opts.host, port: specs[c].port })),
    { what: 'control API', flag: '--control-port', host: opts.host, port: opts.controlPort },
  ];
  const record = await StackRecorder.open(files.stackRecord, [...COLORS.flatMap((c) => reclaimed.adopted[c] ?? []), ...(reclaimed.router ? [reclaimed.router] : [])]);
  try {
    await assertPortsFree(binds);
    const instances = await InstancePair.start(specs, {
      cli,
      adopted,
      onUnexpectedExit: opts.onInstanceExit,
      onSpawn: (i) => record.add({ role: i.color, pid: i.pid ?? -1, host: i.spec.host, port: i.spec.port, argv: i.argv, stopSignal: 'SIGTERM' }),
    });
    return { instances, record, previousRouter: reclaimed.router, stopPreviousRouter: reclaimed.stopRouter };
  } catch (err) {
    await Promise.all(Object.values(adopted).map((i) => i.stop()));
    await reclaimed.stopRouter();
    if (reclaimed.router) await stopProcessByPid(reclaimed.router, reclaimed.router.stopSignal, 5_000);
    await record.remove();
    throw err;
  }
}

export async function startLocalStack(options: Partial<LocalStackOptions> = {}): Promise<LocalStack> {
  const opts = { ...LOCAL_STACK_DEFAULTS, ...options };
  const files = stateFiles(opts.stateDir);
  const token = await ensureTokenFile(files.token);
  const tokens = { admin: await ensureTokenFile(files.adminToken), router: await ensureTokenFile(files.routerToken) };
  const previewToken = await ensureTokenFile(files.previewToken);
  const initial = opts.initialTraffic === undefined ? readStartupTraffic(files.dir, opts.log) : (opts.initialTraffic ?? undefined);
  const ports: Record<Color, number> = { blue: opts.bluePort, green: opts.greenPort };
  const upstreams = Object.fromEntries(COLORS.map((c) => [c, { host: opts.host, port: ports[c] }])) as Upstreams;

  const specs = instanceSpecs({
    host: opts.host,
    ports,
    bundle: opts.bundle,
    logDir: files.logs,
    adminTokenFile: files.adminToken,
    bundleRoots: stackBundleRoots(files.dir, opts.bundleRoots),
    extraArgs: opts.instanceArgs,
  });
  const cli = opts.cli ?? currentCli();
  const routerSpec: RouterSpec = {
    host: opts.host,
    port: opts.port,
    upstreams,
    controlTokenFile: files.routerToken,
    readyFile: files.routerReady,
    previewTokenFile: files.previewToken,
    logFile: path.join(files.logs, 'router.log'),
  };
  const wantedRouter: WantedRouter =
    opts.router === 'nginx' ? { role: 'nginx', host: opts.host, port: opts.port } : { role: 'router', argv: routerArgv(routerSpec, cli), host: opts.host, port: opts.port };
  const { instances, record, previousRouter, stopPreviousRouter } = await startInstances(opts, specs, wantedRouter, tokens);

  let traffic: TrafficDriver | undefined;
  let routerProcess: RouterProcess | undefined;
  try {
    await stopPreviousRouter();
    if (!previousRouter) await assertPortsFree([{ what: `router (${opts.router})`, flag: '--port', host: opts.host, port: opts.port }]);
    if (opts.router === 'nginx') {
      const adopt = previousRouter ? adoptedHandle(previousRouter) : undefined;
      traffic = await startNginxDriver({ listen: { host: opts.host, port: opts.port }, upstreams, initial, previewToken, mode: { kind: 'managed', prefix: files.nginxPrefix, adopt } });
      if (traffic instanceof NginxDriver && traffic.pid && !adopt) {
        await record.add({ role: 'nginx', pid: traffic.pid, host: opts.host, port: opts.port, stopSignal: 'SIGQUIT' });
      }
    } else {
      const started = await embeddedRouter({ spec: routerSpec, previous: previousRouter, initial, token: tokens.router, cli, record, log: opts.log });
      routerProcess = started.process;
      traffic = started.driver;
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
        routerProcess?.killNow();
        instances.killNow();
        record.removeSync();
      },
    };
  } catch (err) {
    await traffic?.close();
    await routerProcess?.stop();
    await instances.stop();
    await record.remove();
    throw err;
  }
}

type StartupTraffic = { weights: Weights; mirror: MirrorConfig };

/** The release log's startup traffic; a log that cannot be read has no say (the controller reports it). */
function readStartupTraffic(stateDir: string, log?: (message: string) => void): StartupTraffic | undefined {
  let store: ReleaseStore | undefined;
  try {
    store = ReleaseStore.open(path.join(stateDir, RELEASE_LOG_FILE));
    return startupTraffic(store.latest());
  } catch (err) {
    log?.(`could not read the release log for the router's starting weights: ${(err as Error).message}`);
    return undefined;
  } finally {
    store?.close();
  }
}

/**
 * The embedded router's process: the previous run's, adopted and set to `initial` (it never stopped serving),
 * or a new one started on `initial`. Recorded in stack.json as soon as it is spawned.
 */
async function embeddedRouter(o: {
  spec: RouterSpec;
  previous?: RecordedProcess;
  initial?: StartupTraffic;
  token: string;
  cli: CliCommand;
  record: StackRecorder;
  log?: (message: string) => void;
}): Promise<{ process: RouterProcess; driver: RemoteRouter }> {
  const url = `http://${o.spec.host}:${o.spec.port}`;
  const connect = (proc: RouterProcess) =>
    RemoteRouter.connect({ url, controlUrl: `http://127.0.0.1:${proc.controlPort}`, token: o.token, onClose: () => proc.stop() });
  if (o.previous?.controlPort) {
    const proc = adoptRouterProcess({ ...o.previous, controlPort: o.previous.controlPort });
    try {
      const driver = await connect(proc);
      // The killed `up` may have died between a release step and its traffic change: the log is the truth.
      const state = driver.state();
      if (o.initial && JSON.stringify(state.mirror) !== JSON.stringify(o.initial.mirror)) await driver.setMirror(o.initial.mirror);
      if (o.initial && JSON.stringify(state.weights) !== JSON.stringify(o.initial.weights)) await driver.setWeights(o.initial.weights);
      return { process: proc, driver };
    } catch (err) {
      o.log?.(`the adopted router (pid ${proc.pid}) stopped answering its control endpoint (${(err as Error).message}): replacing it`);
      await proc.stop();
    }
  }
  const entry = { role: 'router' as const, host: o.spec.host, port: o.spec.port, stopSignal: 'SIGTERM' as const };
  const proc = await startRouterProcess(o.spec, o.initial ?? {}, o.cli, (pid, argv) => o.record.add({ ...entry, pid, argv }));
  try {
    await o.record.add({ ...entry, pid: proc.pid ?? -1, argv: proc.argv, controlPort: proc.controlPort });
    return { process: proc, driver: await connect(proc) };
  } catch (err) {
    await proc.stop();
    throw err;
  }
}
