/** `bgserve up`: the whole local blue-green stack in one command; Ctrl-C / SIGTERM stops what it started. */
import { InvalidArgumentError, type Command } from 'commander';
import { DEFAULT_BUNDLE, DEFAULT_STATE_DIR, PORTS } from '../config/defaults.js';
import { LOCAL_STACK_DEFAULTS, startLocalStack, type LocalStack, type LocalStackOptions } from '../app/root.js';
import { builtInMetricSources } from '../metric-sources/registry.js';
import { prometheusBannerLine } from '../monitoring/local-prometheus.js';
import { describeExit, type InstanceProcess } from '../stack/instances.js';
import { builtInDrivers } from '../traffic/drivers.js';
import { registerRouter } from './router.js';
import { integer, port } from './option-parsers.js';
import { archiveReleaseLog, describeRestored, hasPreviousState, loadStartBundle, readRestored } from './up-state.js';

/** Replicas per color `up` accepts: each is a Node process on this machine. */
const MAX_REPLICAS = 32;

interface UpCliOptions
  extends Pick<
    LocalStackOptions,
    'host' | 'port' | 'bluePort' | 'greenPort' | 'controlPort' | 'bundle' | 'stateDir' | 'replicas' | 'minReady'
  > {
  /** Checked against the driver kinds before use. */
  router: string;
  prometheus?: boolean;
  prometheusPort: number;
  releaseMetrics: string;
  bundleRoot: string[];
  fresh?: boolean;
}

function pidNote(instance: InstanceProcess): string {
  return `pid ${instance.pid}${instance.adopted ? ' (adopted: left running by the previous `up`)' : ''}`;
}

/** A color's banner lines: its instance, or each replica of its pool. */
function colorLines(stack: LocalStack, color: 'blue' | 'green'): string[] {
  const pool = stack.instances.pools[color];
  if (pool.length === 1) return [`  ${color.padEnd(8)} ${pool[0].url}   ${pidNote(pool[0])}`];
  return pool.map((i, n) => `  ${(n === 0 ? color : '').padEnd(8)} ${i.url}   replica ${n + 1}/${pool.length}, ${pidNote(i)}`);
}

export function upBanner(stack: LocalStack): string {
  const { traffic } = stack;
  return [
    'bgserve: local blue-green stack is up',
    `  router   ${traffic.url}   (${traffic.kind}; POST /predict, preview a color with header x-bgserve-color + x-bgserve-preview-token from the state dir's preview-token)`,
    ...colorLines(stack, 'blue'),
    ...colorLines(stack, 'green'),
    `  control  ${stack.controlUrl}   (token in ${stack.tokenFile}; metrics at ${stack.controlUrl}/metrics)`,
    `  logs     ${stack.stateDir}/logs/`,
    `weights: ${traffic.state().weights.blue}% blue. Try \`npx bgserve status\`, \`npx bgserve load --rate 20 --duration 60s\`. Ctrl-C stops everything.`,
  ].join('\n');
}

export async function runUp(opts: Partial<LocalStackOptions>, fresh = false): Promise<void> {
  const stateDir = opts.stateDir ?? LOCAL_STACK_DEFAULTS.stateDir;
  const resuming = !fresh && (await hasPreviousState(stateDir));
  const archived = fresh ? await archiveReleaseLog(stateDir) : null;
  const stack = await startLocalStack({
    ...opts,
    prometheus: opts.prometheus && { ...opts.prometheus, warn: (message) => process.stderr.write(`bgserve: ${message}\n`) },
    onInstanceExit: (color, exit) =>
      process.stderr.write(
        (opts.replicas ?? 1) > 1
          ? `bgserve: a ${color} replica exited (${describeExit(exit)}); restarting it. The router sends its share to the other ${color} replicas.\n`
          : `bgserve: ${color} exited (${describeExit(exit)}); not restarted. The router sends its traffic to the other color.\n`,
      ),
    log: (message, fields) => process.stdout.write(`bgserve: ${message}${fields ? ` ${JSON.stringify(fields)}` : ''}\n`),
  });
  process.once('exit', () => stack.killNow());
  if (fresh) {
    const notes = await loadStartBundle(stack, opts.bundle ?? LOCAL_STACK_DEFAULTS.bundle);
    if (archived) process.stdout.write(`bgserve: --fresh: the release log was archived to ${archived}\n`);
    for (const note of notes) process.stdout.write(`bgserve: --fresh: ${note}\n`);
  }
  // One write, banner then what was resumed: whoever waits for the banner sees both.
  const restored = resuming ? `${describeRestored(await readRestored(stack))}\n` : '';
  process.stdout.write(`${upBanner(stack)}\n${stack.prometheus ? `${prometheusBannerLine(stack.prometheus)}\n` : ''}${restored}`);
  await new Promise<void>((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      process.stdout.write(`bgserve: ${signal}: stopping the control API, the router and the instances...\n`);
      resolve();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  // A second signal while stopping: stop hard.
  const hard = () => {
    stack.killNow();
    process.exit(1);
  };
  process.once('SIGINT', hard);
  process.once('SIGTERM', hard);
  await stack.stop();
  process.stdout.write('bgserve: stopped\n');
}

export function registerUp(program: Command): void {
  const drivers = builtInDrivers();
  const metricSources = builtInMetricSources();
  // The hidden command `up` spawns its embedded router with (see stack/router-process.ts).
  registerRouter(program);
  program
    .command('up')
    .description('Start the local stack: blue and green instances, the router and the control API')
    .option('--router <kind>', drivers.kinds().join(' | '), LOCAL_STACK_DEFAULTS.router)
    .option('--port <port>', 'router port', port, PORTS.router)
    .option('--blue-port <port>', 'blue instance port', port, PORTS.blue)
    .option('--green-port <port>', 'green instance port', port, PORTS.green)
    .option('--control-port <port>', 'control API port', port, PORTS.control)
    .option(
      '--replicas <n>',
      'instances per color, on consecutive ports from --blue-port and --green-port; a replica that dies is restarted (n > 1)',
      integer(1, MAX_REPLICAS),
      1,
    )
    .option(
      '--min-ready <n>',
      'fewest ready replicas a color may have while a release runs on it, else it rolls back (default: all but one when --replicas > 1)',
      integer(1, MAX_REPLICAS),
    )
    .option('--bundle <dir>', 'model bundle both colors start with', DEFAULT_BUNDLE)
    .option('--state-dir <dir>', 'token, logs and nginx files', DEFAULT_STATE_DIR)
    .option('--host <host>', 'address every part listens on', '127.0.0.1')
    .option(
      '--bundle-root <dir>',
      'a folder releases may load bundles from, besides models/ and the state dir (repeatable)',
      (v: string, prev: string[]) => [...prev, v],
      [],
    )
    .option('--fresh', 'start clean: archive the release log (releases.<time>.jsonl) and serve the bundle 100% blue')
    .option('--prometheus', 'also start a local Prometheus (when installed) scraping the stack, with the alert rules')
    .option('--prometheus-port <port>', 'its port', port, PORTS.prometheus)
    .option(
      '--release-metrics <source>',
      'what releases are judged on: scrape (the instances directly) | prometheus (needs --prometheus)',
      'scrape',
    )
    .action(async (o: UpCliOptions, cmd: Command) => {
      // Several replicas on the default ports: green's pool goes right after blue's, unless green's port was chosen.
      const replicas = o.replicas ?? 1;
      if (o.minReady !== undefined && o.minReady > replicas)
        throw new InvalidArgumentError(`--min-ready ${o.minReady} is more than the ${replicas} replica(s) per color`);
      if (
        replicas > 1 &&
        cmd.getOptionValueSource('greenPort') === 'default' &&
        o.bluePort < o.greenPort &&
        o.bluePort + replicas > o.greenPort
      )
        o.greenPort = o.bluePort + replicas;
      if (!drivers.has(o.router)) throw new InvalidArgumentError(`--router must be ${drivers.choices()}`);
      if (!metricSources.has(o.releaseMetrics))
        throw new InvalidArgumentError(`--release-metrics must be ${metricSources.kinds().join(' or ')}`);
      if (o.releaseMetrics === 'prometheus' && !o.prometheus)
        throw new InvalidArgumentError('--release-metrics prometheus needs --prometheus');
      const { bundleRoot, prometheus, prometheusPort, fresh, ...rest } = o;
      await runUp({ ...rest, ...(prometheus ? { prometheus: { port: prometheusPort } } : {}), bundleRoots: bundleRoot }, fresh);
      process.exit(0);
    });
}
