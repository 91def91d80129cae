/**
 * The composition root: the one place bgserve is assembled, for `bgserve up`, `bgserve controller` and the
 * tests. It takes the traffic driver from the driver registry by kind (traffic/registry.ts) and the metric
 * source from its registry (metric-sources/registry.ts), opens the release log, builds the release controller
 * over them, and serves the control API with one plugin list (controlPlugins) whose routes are handed these
 * services and build nothing. `up` adds the local processes (stack/local-stack.ts) and, when asked, Prometheus.
 */
import { controllerJudgeRoutes } from '../control/judge-routes.js';
import path from 'node:path';
import { Registry } from 'prom-client';
import { COLORS, DEFAULT_BUNDLE, DEFAULT_STATE_DIR, PORTS, PREVIEW_TOKEN_FILE, type Color } from '../config/defaults.js';
import { ensureTokenFile, readTokenFile } from '../control/auth.js';
import type { ControlPlugin, StackView } from '../control/context.js';
import { releasePort, releaseRoutes } from '../control/release-routes.js';
import { shadowRoutes } from '../control/shadow-routes.js';
import { historyRoutes } from '../control/history-routes.js';
import { buildControlServer, type ControlServer } from '../control/server.js';
import type { LiveSamplerOptions } from '../control/status-page-live.js';
import { liveStatsPlugin, statusPagePlugin } from '../control/status-page.js';
import { trafficRoutes } from '../control/traffic-routes.js';
import type { ReleaseController } from '../controller/controller.js';
import { createLocalController, startupTraffic } from '../controller/local.js';
import { ReplicaPools, upstreamOfUrl } from '../controller/pools.js';
import { systemClock } from '../controller/clock.js';
import { discoverOnce, startDiscovery, type DiscoveryOptions } from '../controller/replica-discovery.js';
import { builtInMetricSources, DEFAULT_METRIC_SOURCE, type MetricSourceRegistry } from '../metric-sources/registry.js';
import { startStackPrometheus, type LocalPrometheus } from '../monitoring/local-prometheus.js';
import { RELEASE_LOG_FILE } from '../release/defaults.js';
import type { CliCommand, ExitInfo, InstancePair } from '../stack/instances.js';
import { startStackProcesses, stateFiles } from '../stack/local-stack.js';
import { assertPortsFree } from '../stack/reclaim.js';
import type { StackRecorder } from '../stack/stack-record.js';
import { ReleaseStore } from '../store/release-store.js';
import { builtInDrivers, DEFAULT_DRIVER } from '../traffic/drivers.js';
import type { DriverRegistry } from '../traffic/registry.js';
import type { DriverKind, TrafficDriver, Upstreams } from '../traffic/types.js';

export type Log = (message: string, fields?: Record<string, unknown>) => void;

/** The registries the root picks from (default: the built-in drivers and metric sources). */
export interface Registries {
  drivers?: DriverRegistry;
  metricSources?: MetricSourceRegistry;
}

/** The plugins every control API serves (`up`, `controller`, tests), over the services the root built. */
export function controlPlugins(s: { controller: ReleaseController; liveStats?: Omit<LiveSamplerOptions, 'instances'> }): {
  api: ControlPlugin[];
  public: ControlPlugin[];
} {
  return {
    api: [
      trafficRoutes,
      releaseRoutes(s.controller),
      liveStatsPlugin(s.liveStats),
      controllerJudgeRoutes(s.controller),
      historyRoutes({ releases: s.controller }),
      shadowRoutes(s.controller),
    ],
    public: [statusPagePlugin],
  };
}

export interface ControlPlaneOptions {
  /** The control API's bearer token. */
  token: string;
  traffic: TrafficDriver;
  colors: Record<Color, { url: string }>;
  /** Each color's replicas (default: the one at colors[c].url). */
  pools?: ReplicaPools;
  /** The bundle each color started with, when known. */
  startBundles?: Partial<Record<Color, string>>;
  /** Fewest ready replicas a color may have while a release runs on it (default: all but one of several). */
  minReady?: number;
  stack?: StackView;
  /** Release log, admin token (<stateDir>/admin-token unless adminTokenFile) and preview token live here. */
  stateDir: string;
  adminTokenFile?: string;
  /** The release log, when the caller opened it already (to start the router on what it says). */
  store?: ReleaseStore;
  /** What releases are judged on: a metric source's kind (default scrape). */
  metricSource?: string;
  prometheusUrl?: string;
  metricSources?: MetricSourceRegistry;
  liveStats?: Omit<LiveSamplerOptions, 'instances'>;
  log?: Log;
}

export interface ControlPlane extends ControlServer {
  controller: ReleaseController;
}

/**
 * The release controller over `traffic` and the metric source, reconciled with the release log, and the control
 * API over both (built, not listening). Closing the app closes the controller and the log.
 */
export async function buildControlPlane(o: ControlPlaneOptions): Promise<ControlPlane> {
  const stateDir = path.resolve(o.stateDir);
  const store = o.store ?? ReleaseStore.open(path.join(stateDir, RELEASE_LOG_FILE), { onWarning: (message) => o.log?.(message) });
  let controller: ReleaseController | undefined;
  try {
    const instances = { blue: o.colors.blue.url, green: o.colors.green.url };
    const pools = o.pools ?? ReplicaPools.fromUrls(instances);
    const registry = new Registry();
    controller = createLocalController({
      store,
      traffic: o.traffic,
      provider: (o.metricSources ?? builtInMetricSources()).create(o.metricSource ?? DEFAULT_METRIC_SOURCE, {
        instances,
        pools,
        prometheusUrl: o.prometheusUrl,
      }),
      pools,
      ...(o.startBundles ? { startBundles: o.startBundles } : {}),
      ...(o.minReady !== undefined ? { minReady: fixedMinReady(o.minReady) } : {}),
      adminToken: await readTokenFile(path.resolve(o.adminTokenFile ?? path.join(stateDir, 'admin-token'))),
      // The same file the stack gave its router: the smoke checks go through the private preview route.
      previewToken: await ensureTokenFile(path.join(stateDir, PREVIEW_TOKEN_FILE)),
      registry,
      log: o.log,
    });
    for (const e of await controller.start()) o.log?.(`release ${e.releaseId}: ${e.reason}`, { type: e.type });
    const plugins = controlPlugins({ controller, liveStats: o.liveStats });
    const server = await buildControlServer({
      token: o.token,
      traffic: o.traffic,
      colors: o.colors,
      pools,
      stack: o.stack,
      releases: releasePort(controller, store),
      metrics: registry,
      plugins: plugins.api,
      publicPlugins: plugins.public,
    });
    const owned = controller;
    server.app.addHook('onClose', async () => owned.close());
    return { ...server, controller };
  } catch (err) {
    if (controller) await controller.close();
    else store.close();
    throw err;
  }
}

/** A minimum of ready replicas given as a number: never more than the color has. */
function fixedMinReady(n: number): (replicas: number) => number {
  return (replicas) => Math.min(n, Math.max(1, replicas));
}

async function listen(plane: ControlPlane, host: string, port: number): Promise<string> {
  await plane.app.listen({ host, port });
  const address = plane.app.server.address();
  return `http://${host}:${typeof address === 'object' && address ? address.port : port}`;
}

function openReleaseLog(stateDir: string, log?: Log): ReleaseStore {
  return ReleaseStore.open(path.join(stateDir, RELEASE_LOG_FILE), { onWarning: (message) => log?.(message) });
}

// ---------------------------------------------------------------------------------------------------------
// `bgserve up`: the local stack.

export interface LocalStackOptions {
  router: DriverKind;
  host: string;
  port: number;
  bluePort: number;
  greenPort: number;
  /** Instances per color, on consecutive ports from the color's port (default 1). */
  replicas?: number;
  /** Fewest ready replicas a color may have while a release runs on it (default: all but one of several, else 1). */
  minReady?: number;
  controlPort: number;
  bundle: string;
  stateDir: string;
  /** How to run `bgserve serve` (default: this process's own command line). */
  cli?: CliCommand;
  /** More flags for both instances' `serve`. */
  instanceArgs?: string[];
  /** Folders the instances may load bundles from, besides models/ and the state dir (`up --bundle-root`). */
  bundleRoots?: string[];
  /** Also start a local Prometheus scraping the stack, on this port. */
  prometheus?: { port: number; warn?: (message: string) => void };
  /** What releases are judged on (a metric source's kind); `prometheus` asks the stack's own Prometheus. */
  releaseMetrics?: string;
  liveStats?: Omit<LiveSamplerOptions, 'instances'>;
  onInstanceExit?: (color: Color, exit: ExitInfo) => void;
  /** What the start-up did with a previous run's leftovers, release reconciles, release log warnings. */
  log?: Log;
  registries?: Registries;
}

export const LOCAL_STACK_DEFAULTS: LocalStackOptions = {
  router: DEFAULT_DRIVER,
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
  control: ControlPlane;
  controlUrl: string;
  tokenFile: string;
  stateDir: string;
  /** <state-dir>/stack.json. */
  record: StackRecorder;
  prometheus?: LocalPrometheus;
  /** Stops Prometheus, the control API, the router, then the instances (drained). Safe to call twice. */
  stop(): Promise<void>;
  /** Synchronous last resort (process exit): SIGKILL to the children still running. */
  killNow(): void;
}

export async function startLocalStack(options: Partial<LocalStackOptions> = {}): Promise<LocalStack> {
  const opts = { ...LOCAL_STACK_DEFAULTS, ...options };
  const drivers = opts.registries?.drivers ?? builtInDrivers();
  const driver = drivers.get(opts.router);
  const files = stateFiles(opts.stateDir);
  const token = await ensureTokenFile(files.token);
  const tokens = {
    admin: await ensureTokenFile(files.adminToken),
    router: await ensureTokenFile(files.routerToken),
    preview: await ensureTokenFile(files.previewToken),
  };
  // Read once: the router starts on the traffic it says, and the controller then reconciles with the same log.
  const store = openReleaseLog(files.dir, opts.log);
  let processes;
  // The controller exists only once the processes run: a replica restarted before then is healed by its loop.
  let heal: (() => void) | undefined;
  try {
    processes = await startStackProcesses({
      ...opts,
      onReplicaRestart: (e) => {
        opts.log?.(e.message, { color: e.color, url: e.url });
        if (e.ready) heal?.();
      },
      driver,
      managed: drivers.managedProcesses(),
      tokens,
      initial: startupTraffic(store.latest()),
      laterBinds: [{ what: 'control API', flag: '--control-port', host: opts.host, port: opts.controlPort }],
      log: opts.log,
    });
  } catch (err) {
    store.close();
    throw err;
  }
  const { traffic, instances, record } = processes;
  let control: ControlPlane | undefined;
  let prometheus: LocalPrometheus | undefined;
  try {
    const pools = new ReplicaPools(
      Object.fromEntries(COLORS.map((c) => [c, instances.pools[c].map((i) => ({ host: i.spec.host, port: i.spec.port }))])) as Upstreams,
    );
    control = await buildControlPlane({
      token,
      traffic,
      colors: { blue: { url: instances.instances.blue.url }, green: { url: instances.instances.green.url } },
      pools,
      startBundles: { blue: path.resolve(opts.bundle), green: path.resolve(opts.bundle) },
      ...(opts.minReady !== undefined ? { minReady: opts.minReady } : {}),
      stack: instances,
      stateDir: files.dir,
      store,
      metricSource: opts.releaseMetrics,
      // The stack's own Prometheus, when releases are judged there.
      prometheusUrl: opts.prometheus ? `http://${opts.host}:${opts.prometheus.port}` : undefined,
      metricSources: opts.registries?.metricSources,
      liveStats: opts.liveStats,
      log: opts.log,
    });
    const admin = control.controller.admin;
    heal = () => void admin.heal?.().catch(() => undefined);
    const controlUrl = await listen(control, opts.host, opts.controlPort);
    if (opts.prometheus) {
      // A previous run's Prometheus was stopped with the stack's other leftovers (it is in stack.json).
      await assertPortsFree([{ what: 'Prometheus', flag: '--prometheus-port', host: '127.0.0.1', port: opts.prometheus.port }]);
      prometheus = await startStackPrometheus({
        // Every replica: the analysis queries sum a color's series.
        instances: { blue: instances.pools.blue.map((i) => i.url), green: instances.pools.green.map((i) => i.url) },
        control: controlUrl,
        port: opts.prometheus.port,
        dataDir: path.join(files.dir, 'prometheus'),
        warn: opts.prometheus.warn ?? (() => undefined),
      });
      if (prometheus)
        await record.add({ role: 'prometheus', pid: prometheus.pid, host: '127.0.0.1', port: opts.prometheus.port, stopSignal: 'SIGTERM' });
    }
    const plane = control;
    let stopping: Promise<void> | null = null;
    return {
      traffic,
      instances,
      control: plane,
      controlUrl,
      tokenFile: files.token,
      stateDir: files.dir,
      record,
      prometheus,
      stop: () =>
        (stopping ??= (async () => {
          await prometheus?.stop();
          await plane.app.close();
          await processes.stop();
        })()),
      killNow: () => {
        prometheus?.killNow();
        processes.killNow();
      },
    };
  } catch (err) {
    await prometheus?.stop();
    // Without a control plane, buildControlPlane closed the log already.
    await control?.app.close();
    await processes.stop();
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------------------
// `bgserve controller`: the control API, releases and a router over instances started elsewhere.

export interface ControllerStackOptions {
  /** Control API address. */
  host: string;
  port: number;
  router: DriverKind;
  /** Where a router in this process listens (the embedded router). */
  routerListen: { host: string; port: number };
  /** Each color's instance, as URL (health, admin, metrics) and as the router's upstream. */
  instances: Record<Color, string>;
  upstreams: Upstreams;
  stateDir: string;
  adminTokenFile?: string;
  /** Judge releases with PromQL on this Prometheus (default: scrape the instances). */
  prometheusUrl?: string;
  /** The router's own options (DriverOption values, by camel-cased name). */
  driverOptions?: Readonly<Record<string, unknown>>;
  /**
   * Follow each color's replicas in DNS: the instance URLs' host names are resolved every few seconds (Compose
   * `--scale`, a headless Kubernetes Service), new replicas put on their color's bundle, the router given the pools.
   */
  discoverReplicas?: boolean;
  /**
   * The router looks the instance host names up itself on requests (nginx with a resolver: a scaled service's A
   * records are its replicas, a recreated container is followed at once). It keeps the names: discovery then feeds
   * the control side only (loads, checks, status), never the router, which takes one name per color.
   */
  routerResolvesNames?: boolean;
  log?: Log;
  registries?: Registries;
}

export interface ControllerStack {
  traffic: TrafficDriver;
  control: ControlPlane;
  controlUrl: string;
  stop(): Promise<void>;
}

export async function startControllerStack(o: ControllerStackOptions): Promise<ControllerStack> {
  const stateDir = path.resolve(o.stateDir);
  const token = await ensureTokenFile(path.join(stateDir, 'token'));
  const previewToken = await ensureTokenFile(path.join(stateDir, PREVIEW_TOKEN_FILE));
  const driver = (o.registries?.drivers ?? builtInDrivers()).get(o.router);
  // The router starts on what the release log says (the reconcile then agrees), not on all-blue.
  const store = openReleaseLog(stateDir, o.log);
  let traffic: TrafficDriver;
  try {
    traffic = await driver.start({
      listen: o.routerListen,
      upstreams: o.upstreams,
      previewToken,
      initial: startupTraffic(store.latest()),
      options: o.driverOptions ?? {},
    });
  } catch (err) {
    store.close();
    throw err;
  }
  let control: ControlPlane | undefined;
  let discovery: { stop(): Promise<void> } | undefined;
  const pools = new ReplicaPools(o.upstreams);
  try {
    control = await buildControlPlane({
      token,
      traffic,
      colors: Object.fromEntries(COLORS.map((c) => [c, { url: o.instances[c] }])) as Record<Color, { url: string }>,
      pools,
      stateDir,
      adminTokenFile: o.adminTokenFile,
      store,
      metricSource: o.prometheusUrl ? 'prometheus' : DEFAULT_METRIC_SOURCE,
      prometheusUrl: o.prometheusUrl,
      metricSources: o.registries?.metricSources,
      log: o.log,
    });
    if (o.discoverReplicas) {
      const admin = control.controller.admin;
      const router = traffic;
      const discover: DiscoveryOptions = {
        // Each color's service name and port, as its instance URL gives them (http://mlservice_blue:8000).
        services: { blue: upstreamOfUrl(o.instances.blue), green: upstreamOfUrl(o.instances.green) },
        current: (c) => pools.replicas(c),
        applyPool: async (color, decision) => {
          pools.set(color, decision.pool);
          // New replicas start on the image's bundle: on their color's current one before any request reaches them.
          if (decision.added.length > 0) for (const h of (await admin.heal?.()) ?? []) o.log?.('new replica put on its bundle', { ...h });
          if (!o.routerResolvesNames) await router.setUpstreams(pools.all());
        },
        clock: systemClock,
        log: o.log,
      };
      await discoverOnce(discover);
      discovery = startDiscovery(discover);
    }
    const controlUrl = await listen(control, o.host, o.port);
    const plane = control;
    const found = discovery;
    return {
      traffic,
      control: plane,
      controlUrl,
      stop: async () => {
        await found?.stop();
        await plane.app.close();
        await traffic.close();
      },
    };
  } catch (err) {
    await discovery?.stop();
    if (control) await control.app.close();
    await traffic.close();
    throw err;
  }
}
