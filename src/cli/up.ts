/** `bgserve up`: the whole local blue-green stack in one command; Ctrl-C / SIGTERM stops what it started. */
import path from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { DEFAULT_BUNDLE, DEFAULT_STATE_DIR, PORTS } from '../config/defaults.js';
import { LOCAL_STACK_DEFAULTS, startLocalStack, stateFiles, type LocalStack, type LocalStackOptions } from '../stack/compose-root.js';
import { releasePlugin } from '../control/release-routes.js';
import { startupTraffic } from '../controller/local.js';
import { RELEASE_LOG_FILE } from '../release/defaults.js';
import { ReleaseStore } from '../store/release-store.js';
import { registerRouter } from './router.js';
import { liveStatsPlugin, statusPagePlugin } from '../control/status-page.js';
import { prometheusBannerLine, startStackPrometheus, type LocalPrometheus } from '../monitoring/local-prometheus.js';
import { describeExit, type InstanceProcess } from '../stack/instances.js';
import { assertPortsFree } from '../stack/reclaim.js';
import { port } from './option-parsers.js';

interface UpCliOptions extends Pick<LocalStackOptions, 'host' | 'port' | 'bluePort' | 'greenPort' | 'controlPort' | 'bundle' | 'stateDir'> {
  /** Checked against the driver kinds before use. */
  router: string;
  prometheus?: boolean;
  prometheusPort: number;
  releaseMetrics: string;
  bundleRoot: string[];
}

function pidNote(instance: InstanceProcess): string {
  return `pid ${instance.pid}${instance.adopted ? ' (adopted: left running by the previous `up`)' : ''}`;
}

export function upBanner(stack: LocalStack): string {
  const { instances, traffic } = stack;
  return [
    'bgserve: local blue-green stack is up',
    `  router   ${traffic.url}   (${traffic.kind}; POST /predict, preview a color with header x-bgserve-color + x-bgserve-preview-token from the state dir's preview-token)`,
    `  blue     ${instances.instances.blue.url}   ${pidNote(instances.instances.blue)}`,
    `  green    ${instances.instances.green.url}   ${pidNote(instances.instances.green)}`,
    `  control  ${stack.controlUrl}   (token in ${stack.tokenFile}; metrics at ${stack.controlUrl}/metrics)`,
    `  logs     ${stack.stateDir}/logs/`,
    `weights: ${traffic.state().weights.blue}% blue. Try \`bgserve status\`, \`bgserve switch green\`. Ctrl-C stops everything.`,
  ].join('\n');
}

export async function runUp(
  opts: Partial<LocalStackOptions> & { prometheus?: boolean; prometheusPort?: number; releaseMetrics?: 'scrape' | 'prometheus' },
): Promise<void> {
  // Release controller (issue 5): reconciles with the release log on start, serves /api/releases.
  const files = stateFiles(opts.stateDir ?? LOCAL_STACK_DEFAULTS.stateDir);
  const log = (message: string) => process.stdout.write(`bgserve: ${message}\n`);
  // Read once: the router starts on the traffic it says, and the controller then reconciles with the same log.
  const store = ReleaseStore.open(path.join(files.dir, RELEASE_LOG_FILE), { onWarning: log });
  const releases = releasePlugin({
    store,
    stateDir: files.dir,
    adminTokenFile: files.adminToken,
    // Release analysis through the stack's Prometheus (PromQL) when asked; else a direct scrape of the instances.
    ...(opts.releaseMetrics === 'prometheus' ? { prometheusUrl: `http://${opts.host ?? LOCAL_STACK_DEFAULTS.host}:${opts.prometheusPort ?? PORTS.prometheus}` } : {}),
    log: (message, fields) => process.stdout.write(`bgserve: ${message}${fields ? ` ${JSON.stringify(fields)}` : ''}\n`),
  });
  const stack = await startLocalStack({
    ...opts,
    initialTraffic: startupTraffic(store.latest()) ?? null,
    controlPlugins: [...(opts.controlPlugins ?? []), releases, liveStatsPlugin()],
    publicControlPlugins: [...(opts.publicControlPlugins ?? []), statusPagePlugin],
    onInstanceExit: (color, exit) =>
      process.stderr.write(`bgserve: ${color} exited (${describeExit(exit)}); not restarted. The router sends its traffic to the other color.\n`),
    log,
  }).catch((err: unknown) => {
    store.close();
    throw err;
  });
  let prometheus: LocalPrometheus | undefined;
  try {
    if (opts.prometheus) {
      const promPort = opts.prometheusPort ?? PORTS.prometheus;
      // A previous run's Prometheus was stopped with the stack's other leftovers (it is in stack.json).
      await assertPortsFree([{ what: 'Prometheus', flag: '--prometheus-port', host: '127.0.0.1', port: promPort }]);
      prometheus = await startStackPrometheus({
        instances: { blue: stack.instances.instances.blue.url, green: stack.instances.instances.green.url },
        control: stack.controlUrl,
        port: promPort,
        dataDir: path.join(files.dir, 'prometheus'),
        warn: (message) => process.stderr.write(`bgserve: ${message}\n`),
      });
      if (prometheus) await stack.record.add({ role: 'prometheus', pid: prometheus.pid, host: '127.0.0.1', port: promPort, stopSignal: 'SIGTERM' });
    }
  } catch (err) {
    await stack.stop();
    throw err;
  }
  process.once('exit', () => {
    prometheus?.killNow();
    stack.killNow();
  });
  process.stdout.write(`${upBanner(stack)}\n${prometheus ? `${prometheusBannerLine(prometheus)}\n` : ''}`);
  await new Promise<void>((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      process.stdout.write(`bgserve: ${signal}: stopping the control API, the router and both instances...\n`);
      resolve();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  // A second signal while stopping: stop hard.
  const hard = () => {
    prometheus?.killNow();
    stack.killNow();
    process.exit(1);
  };
  process.once('SIGINT', hard);
  process.once('SIGTERM', hard);
  await prometheus?.stop();
  await stack.stop();
  process.stdout.write('bgserve: stopped\n');
}

export function registerUp(program: Command): void {
  // The hidden command `up` spawns its embedded router with (see stack/router-process.ts).
  registerRouter(program);
  program
    .command('up')
    .description('Start the local stack: blue and green instances, the router and the control API')
    .option('--router <kind>', 'embedded | nginx', LOCAL_STACK_DEFAULTS.router)
    .option('--port <port>', 'router port', port, PORTS.router)
    .option('--blue-port <port>', 'blue instance port', port, PORTS.blue)
    .option('--green-port <port>', 'green instance port', port, PORTS.green)
    .option('--control-port <port>', 'control API port', port, PORTS.control)
    .option('--bundle <dir>', 'model bundle both colors start with', DEFAULT_BUNDLE)
    .option('--state-dir <dir>', 'token, logs and nginx files', DEFAULT_STATE_DIR)
    .option('--host <host>', 'address every part listens on', '127.0.0.1')
    .option('--bundle-root <dir>', 'a folder releases may load bundles from, besides models/ and the state dir (repeatable)', (v: string, prev: string[]) => [...prev, v], [])
    .option('--prometheus', 'also start a local Prometheus (when installed) scraping the stack, with the alert rules')
    .option('--prometheus-port <port>', 'its port', port, PORTS.prometheus)
    .option('--release-metrics <source>', 'what releases are judged on: scrape (the instances directly) | prometheus (needs --prometheus)', 'scrape')
    .action(async (o: UpCliOptions) => {
      if (o.router !== 'embedded' && o.router !== 'nginx') throw new InvalidArgumentError('--router must be embedded or nginx');
      if (o.releaseMetrics !== 'scrape' && o.releaseMetrics !== 'prometheus') throw new InvalidArgumentError('--release-metrics must be scrape or prometheus');
      if (o.releaseMetrics === 'prometheus' && !o.prometheus) throw new InvalidArgumentError('--release-metrics prometheus needs --prometheus');
      const { bundleRoot, ...rest } = o;
      await runUp({ ...rest, router: o.router, releaseMetrics: o.releaseMetrics, bundleRoots: bundleRoot });
      process.exit(0);
    });
}
