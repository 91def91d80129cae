/**
 * The processes of `bgserve up`'s stack: both instances and the router, placed as its driver entry says
 * (traffic/registry.ts: a router process of its own, or in this process with a process the driver manages).
 * What it starts is recorded in <state-dir>/stack.json; a start after a crash reclaims the leftovers first
 * (reclaim.ts: instances and the router adopted, the rest stopped) and fails clearly on a port held by anything
 * else. A router in a process of its own (`bgserve router`) outlives a crash of `up`, like the instances and a
 * managed nginx: a restart adopts it and traffic never stops. Every router starts on the traffic the release
 * log says, before any request. The composition root (app/root.ts) chooses the driver and adds the control API.
 */
import path from 'node:path';
import { COLORS, PREVIEW_TOKEN_FILE, type Color } from '../config/defaults.js';
import type { InitialTraffic, ManagedProcess, TrafficDriverEntry } from '../traffic/registry.js';
import { connectRouterProcess } from '../traffic/drivers.js';
import type { TrafficDriver, Upstreams } from '../traffic/types.js';
import {
  adoptedHandle,
  adoptInstance,
  currentCli,
  InstancePair,
  poolSpecs,
  serveArgv,
  specRole,
  stackBundleRoots,
  type CliCommand,
  type ExitInfo,
  type InstanceProcess,
  type InstanceSpec,
} from './instances.js';
import { stopProcessByPid } from './proc.js';
import { assertPortsFree, reclaimStack, type PortUse, type WantedInstance, type WantedRouter } from './reclaim.js';
import {
  adoptRouterProcess,
  ROUTER_PROCESS_ROLE,
  routerArgv,
  startRouterProcess,
  type RouterProcess,
  type RouterSpec,
} from './router-process.js';
import { StackRecorder, stackRecordPath, type RecordedProcess } from './stack-record.js';

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
    stackRecord: stackRecordPath(dir),
    /** A driver's own folder (a managed nginx's prefix: <state-dir>/nginx). */
    driverDir: (name: string) => path.join(dir, name),
  };
}

export interface StackProcessesOptions {
  /** The router's driver entry (from the registry). */
  driver: TrafficDriverEntry;
  /** Every process a registered driver manages: a previous run's is found whichever router this one runs. */
  managed: readonly ManagedProcess[];
  host: string;
  port: number;
  bluePort: number;
  greenPort: number;
  /** Instances per color (default 1), on consecutive ports from the color's port. */
  replicas?: number;
  bundle: string;
  stateDir: string;
  tokens: { admin: string; router: string; preview: string };
  /** The traffic the router starts on (the release log's say); none: a new router starts all on blue. */
  initial?: InitialTraffic;
  /** Ports bound after these processes start (the control API): checked free before anything starts. */
  laterBinds?: PortUse[];
  /** How to run `bgserve serve` (default: this process's own command line). */
  cli?: CliCommand;
  /** More flags for both instances' `serve`. */
  instanceArgs?: string[];
  /** Folders the instances may load bundles from, besides models/ and the state dir (`up --bundle-root`). */
  bundleRoots?: string[];
  onInstanceExit?: (color: Color, exit: ExitInfo) => void;
  /** A replica of a color of several was started again and answers /ready (`url`), or was given up on. */
  onReplicaRestart?: (event: { color: Color; url: string; ready: boolean; message: string }) => void;
  /** What the start-up did with a previous run's leftovers (adopted, stopped). */
  log?: (message: string) => void;
}

export interface StackProcesses {
  traffic: TrafficDriver;
  instances: InstancePair;
  /** <state-dir>/stack.json: add what else is started with the stack (e.g. Prometheus). */
  record: StackRecorder;
  /** Stops the router, then the instances (drained), and removes stack.json. */
  stop(): Promise<void>;
  /** Synchronous last resort (process exit): SIGKILL to the children still running. */
  killNow(): void;
}

/** The router this `up` would run, as reclaim compares it with a recorded one. */
function wantedRouter(o: StackProcessesOptions, spec: RouterSpec, cli: CliCommand): WantedRouter | undefined {
  const local = o.driver.local;
  if (local.run === 'router-process') return { role: ROUTER_PROCESS_ROLE, argv: routerArgv(spec, cli), host: o.host, port: o.port };
  return local.process ? { role: local.process.role, host: o.host, port: o.port, process: local.process.what } : undefined;
}

/**
 * Takes over what a crashed `up` left on this state dir (reclaim.ts), records this run in stack.json, and has
 * both instances running: adopted or started. The previous router is returned to adopt, or left to the caller
 * to stop.
 */
async function startInstances(
  opts: StackProcessesOptions,
  pools: Record<Color, InstanceSpec[]>,
  router: WantedRouter | undefined,
): Promise<{ instances: InstancePair; record: StackRecorder; previousRouter?: RecordedProcess; stopPreviousRouter: () => Promise<void> }> {
  const files = stateFiles(opts.stateDir);
  const cli = opts.cli ?? currentCli();
  const specs = COLORS.flatMap((c) => pools[c]);
  const wanted: Record<string, WantedInstance> = {};
  for (const spec of specs) wanted[specRole(spec)] = { argv: serveArgv(spec, cli), host: opts.host, port: spec.port };
  const reclaimed = await reclaimStack({
    file: files.stackRecord,
    wanted,
    router,
    adminToken: opts.tokens.admin,
    routerToken: opts.tokens.router,
    managed: opts.managed.map((p) => ({ process: p, dir: files.driverDir(p.role) })),
    log: opts.log,
  });
  const adopted: Record<string, InstanceProcess> = {};
  for (const spec of specs) {
    const entry = reclaimed.adopted[specRole(spec)];
    if (entry) adopted[specRole(spec)] = adoptInstance(spec, entry, opts.onInstanceExit);
  }
  const binds: PortUse[] = [
    ...specs
      .filter((spec) => !adopted[specRole(spec)])
      .map((spec) => ({
        what: `${specRole(spec)} instance`,
        flag: `--${spec.color}-port${pools[spec.color].length > 1 ? ' (or --replicas)' : ''}`,
        host: opts.host,
        port: spec.port,
      })),
    ...(opts.laterBinds ?? []),
  ];
  const record = await StackRecorder.open(files.stackRecord, [
    ...specs.flatMap((spec) => reclaimed.adopted[specRole(spec)] ?? []),
    ...(reclaimed.router ? [reclaimed.router] : []),
  ]);
  const onSpawn = (i: InstanceProcess) =>
    record.add({ role: specRole(i.spec), pid: i.pid ?? -1, host: i.spec.host, port: i.spec.port, argv: i.argv, stopSignal: 'SIGTERM' });
  const restarted = opts.onReplicaRestart;
  try {
    await assertPortsFree(binds);
    const instances = await InstancePair.start(pools, {
      cli,
      adopted,
      onUnexpectedExit: opts.onInstanceExit,
      onSpawn,
      restart: {
        onSpawn,
        onReady: (i) => restarted?.({ color: i.color, url: i.url, ready: true, message: `${specRole(i.spec)} restarted (pid ${i.pid})` }),
        onGiveUp: (i, why) => restarted?.({ color: i.color, url: i.url, ready: false, message: why }),
      },
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

export async function startStackProcesses(opts: StackProcessesOptions): Promise<StackProcesses> {
  const files = stateFiles(opts.stateDir);
  const ports: Record<Color, number> = { blue: opts.bluePort, green: opts.greenPort };
  const pools = poolSpecs({
    replicas: opts.replicas ?? 1,
    host: opts.host,
    ports,
    bundle: opts.bundle,
    logDir: files.logs,
    adminTokenFile: files.adminToken,
    bundleRoots: stackBundleRoots(files.dir, opts.bundleRoots),
    extraArgs: opts.instanceArgs,
  });
  const upstreams = Object.fromEntries(COLORS.map((c) => [c, pools[c].map((spec) => ({ host: spec.host, port: spec.port }))])) as Upstreams;
  const cli = opts.cli ?? currentCli();
  const routerSpec: RouterSpec = {
    kind: opts.driver.kind,
    host: opts.host,
    port: opts.port,
    upstreams,
    controlTokenFile: files.routerToken,
    readyFile: files.routerReady,
    previewTokenFile: files.previewToken,
    logFile: path.join(files.logs, 'router.log'),
  };
  const { instances, record, previousRouter, stopPreviousRouter } = await startInstances(opts, pools, wantedRouter(opts, routerSpec, cli));

  let traffic: TrafficDriver | undefined;
  let routerProcess: RouterProcess | undefined;
  try {
    await stopPreviousRouter();
    if (!previousRouter)
      await assertPortsFree([{ what: `router (${opts.driver.kind})`, flag: '--port', host: opts.host, port: opts.port }]);
    const local = opts.driver.local;
    if (local.run === 'router-process') {
      const started = await routerInProcess({
        spec: routerSpec,
        previous: previousRouter,
        initial: opts.initial,
        token: opts.tokens.router,
        cli,
        record,
        log: opts.log,
      });
      routerProcess = started.process;
      traffic = started.driver;
    } else {
      traffic = await local.start({
        listen: { host: opts.host, port: opts.port },
        upstreams,
        previewToken: opts.tokens.preview,
        initial: opts.initial,
        dir: files.driverDir(local.process?.role ?? opts.driver.kind),
        adopt: previousRouter ? adoptedHandle(previousRouter) : undefined,
      });
      const own = traffic.process;
      if (local.process && own && !own.adopted) {
        await record.add({ role: local.process.role, pid: own.pid, host: opts.host, port: opts.port, stopSignal: own.stopSignal });
      }
    }
  } catch (err) {
    await traffic?.close();
    await routerProcess?.stop();
    await instances.stop();
    await record.remove();
    throw err;
  }
  const router = traffic;
  let stopping: Promise<void> | null = null;
  return {
    traffic: router,
    instances,
    record,
    stop: () =>
      (stopping ??= (async () => {
        await router.close();
        await instances.stop();
        await record.remove();
      })()),
    killNow: () => {
      router.process?.killNow();
      routerProcess?.killNow();
      instances.killNow();
      record.removeSync();
    },
  };
}

/**
 * The router process: the previous run's, adopted and set to `initial` (it never stopped serving), or a new
 * one started on `initial`. Recorded in stack.json as soon as it is spawned.
 */
async function routerInProcess(o: {
  spec: RouterSpec;
  previous?: RecordedProcess;
  initial?: InitialTraffic;
  token: string;
  cli: CliCommand;
  record: StackRecorder;
  log?: (message: string) => void;
}): Promise<{ process: RouterProcess; driver: TrafficDriver }> {
  const url = `http://${o.spec.host}:${o.spec.port}`;
  const connect = (proc: RouterProcess) =>
    connectRouterProcess({
      kind: o.spec.kind,
      url,
      controlUrl: `http://127.0.0.1:${proc.controlPort}`,
      token: o.token,
      onClose: () => proc.stop(),
    });
  if (o.previous?.controlPort) {
    const proc = adoptRouterProcess({ ...o.previous, controlPort: o.previous.controlPort });
    try {
      const driver = await connect(proc);
      // The killed `up` may have died between a release step and its traffic change: the log is the truth.
      const state = driver.state();
      if (o.initial?.mirror && JSON.stringify(state.mirror) !== JSON.stringify(o.initial.mirror)) await driver.setMirror(o.initial.mirror);
      if (o.initial?.weights && JSON.stringify(state.weights) !== JSON.stringify(o.initial.weights))
        await driver.setWeights(o.initial.weights);
      return { process: proc, driver };
    } catch (err) {
      o.log?.(`the adopted router (pid ${proc.pid}) stopped answering its control endpoint (${(err as Error).message}): replacing it`);
      await proc.stop();
    }
  }
  const entry = { role: ROUTER_PROCESS_ROLE, host: o.spec.host, port: o.spec.port, stopSignal: 'SIGTERM' as const };
  const proc = await startRouterProcess(o.spec, o.initial ?? {}, o.cli, (pid, argv) => o.record.add({ ...entry, pid, argv }));
  try {
    await o.record.add({ ...entry, pid: proc.pid ?? -1, argv: proc.argv, controlPort: proc.controlPort });
    return { process: proc, driver: await connect(proc) };
  } catch (err) {
    await proc.stop();
    throw err;
  }
}
