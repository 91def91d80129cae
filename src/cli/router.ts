/**
 * `bgserve router` (hidden): a router (the embedded one, or any driver placed so) in a process of its own,
 * spawned by `bgserve up`. It outlives
 * a crash of `up` (kill -9, OOM) and keeps serving while `up` restarts and adopts it, as the instances do: no
 * refused connection across a restart. `up` drives it through a loopback control endpoint behind a token
 * (traffic/router-control.ts) and, once it listens, finds that endpoint's port in the ready file.
 */
import cluster from 'node:cluster';
import { rename, rm, writeFile } from 'node:fs/promises';
import { InvalidArgumentError, type Command } from 'commander';
import { PORTS } from '../config/defaults.js';
import { readTokenFile } from '../control/auth.js';
import { builtInDrivers, DEFAULT_DRIVER } from '../traffic/drivers.js';
import { parseHostPorts } from '../traffic/registry.js';
import { defaultRouterWorkers, startClusterRouter, type ClusterRouter } from '../traffic/router-cluster.js';
import { runRouterWorker } from '../traffic/router-cluster-worker.js';
import { startRouterControl, type RouterReady } from '../traffic/router-control.js';
import type { TrafficDriver, TrafficState, Upstream } from '../traffic/types.js';
import { integer, port } from './option-parsers.js';

function hostPorts(value: string): Upstream[] {
  try {
    return parseHostPorts(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

interface RouterCliOptions {
  kind: string;
  host: string;
  port: number;
  blue: Upstream[];
  green: Upstream[];
  controlTokenFile: string;
  readyFile: string;
  previewTokenFile?: string;
  initial?: Partial<Omit<TrafficState, 'generation'>>;
  workers: number;
}

function json(value: string): Partial<Omit<TrafficState, 'generation'>> {
  try {
    return JSON.parse(value) as Partial<Omit<TrafficState, 'generation'>>;
  } catch {
    throw new InvalidArgumentError('expected JSON, e.g. {"weights":{"blue":0,"green":100}}');
  }
}

export async function runRouter(o: RouterCliOptions): Promise<void> {
  // A worker of the cluster below (forked with this same command line): the primary configures it.
  if (cluster.isWorker) return runRouterWorker();
  const token = await readTokenFile(o.controlTokenFile);
  // Listening on the weights it was given from the start: `up` read them from the release log.
  const previewToken = o.previewTokenFile !== undefined ? await readTokenFile(o.previewTokenFile) : undefined;
  const drivers = builtInDrivers();
  if (!drivers.has(o.kind)) throw new InvalidArgumentError(`--kind must be ${drivers.choices()}`);
  // Several workers for the embedded router only: other drivers placed so run their own processes.
  const clustered: ClusterRouter | null =
    o.kind === 'embedded' && o.workers > 1
      ? await startClusterRouter({
          host: o.host,
          port: o.port,
          workers: o.workers,
          upstreams: { blue: o.blue, green: o.green },
          initial: o.initial,
          previewToken,
          log: (line) => process.stdout.write(`bgserve router: ${line}\n`),
        })
      : null;
  const router: TrafficDriver =
    clustered ??
    (await drivers.get(o.kind).start({
      listen: { host: o.host, port: o.port },
      upstreams: { blue: o.blue, green: o.green },
      initial: o.initial,
      previewToken,
      options: {},
    }));
  const control = await startRouterControl({
    driver: router,
    host: '127.0.0.1',
    port: 0,
    token,
    ...(clustered ? { cluster: { refresh: () => clustered.refreshHealth(), pids: () => clustered.workerPids() } } : {}),
  });
  const ready: RouterReady = { pid: process.pid, port: Number(new URL(router.url).port || 80), controlPort: control.port };
  const tmp = `${o.readyFile}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(ready)}\n`, { mode: 0o600 });
  await rename(tmp, o.readyFile);
  const workers = clustered ? `, workers ${clustered.workerPids().join(' ')}` : '';
  process.stdout.write(
    `bgserve router: ${router.url} (pid ${process.pid}${workers}), control on ${control.url}, weights ${JSON.stringify(router.state().weights)}\n`,
  );
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  process.stdout.write(`bgserve router: ${signal}: stopping\n`);
  await control.close();
  await router.close();
  await rm(o.readyFile, { force: true });
}

export function registerRouter(program: Command): void {
  program
    .command('router', { hidden: true })
    .description('The embedded router as a process of its own (started by `bgserve up`)')
    .requiredOption('--blue <host:port,...>', "blue's replicas", hostPorts)
    .requiredOption('--green <host:port,...>', "green's replicas", hostPorts)
    .requiredOption('--control-token-file <file>', 'bearer token of the control endpoint')
    .requiredOption('--ready-file <file>', 'written once listening: {pid, port, controlPort}')
    .option('--preview-token-file <file>', 'token the preview header needs (without it, preview requests are refused)')
    .option('--kind <kind>', 'the traffic driver it runs', DEFAULT_DRIVER)
    .option('--host <host>', 'address the router listens on', '127.0.0.1')
    .option('--port <port>', 'router port', port, PORTS.router)
    .option('--initial <json>', 'traffic state to start with: {weights, mirror, sticky}', json)
    .option(
      '--workers <n>',
      'embedded router worker processes sharing the port (1: this process alone; default 2 with 4 cores or more)',
      integer(1, 64),
      defaultRouterWorkers(),
    )
    .action(async (o: RouterCliOptions) => {
      await runRouter(o);
      process.exit(0);
    });
}
