/**
 * `bgserve controller`: the control API, the release engine and a traffic driver over instances it does not
 * start — the compose deployment (docker-compose.nginx.yml: nginx in its own container, external mode) and
 * Kubernetes (deploy/k8s: the embedded router in the controller pod). `bgserve up` is the same parts with
 * the instances started locally (both are assembled by app/root.ts). A router's own flags come from its
 * entry in the driver registry.
 */
import { InvalidArgumentError, type Command } from 'commander';
import { COLORS, DEFAULT_STATE_DIR, PORTS, type Color } from '../config/defaults.js';
import { startControllerStack, type Registries } from '../app/root.js';
import { builtInDrivers, DEFAULT_DRIVER } from '../traffic/drivers.js';
import { resolverFor } from '../traffic/nginx-config.js';
import { nginxEntry } from '../traffic/nginx-entry.js';
import type { DriverOption } from '../traffic/registry.js';
import type { Upstream, Upstreams } from '../traffic/types.js';
import { port } from './option-parsers.js';

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
  discoverReplicas?: boolean;
  /** The router's own options (e.g. nginxConfig for --nginx-config), as its registry entry declares them. */
  [driverOption: string]: unknown;
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

export async function runController(opts: ControllerCliOptions, registries: Registries = {}): Promise<void> {
  const drivers = registries.drivers ?? builtInDrivers();
  if (!drivers.has(opts.router)) throw new InvalidArgumentError(`--router must be ${drivers.choices()}`);
  const missing = drivers.missingOptions(opts.router, opts);
  if (missing.length > 0) throw new InvalidArgumentError(`--router ${opts.router} needs ${missing.join(', ')}`);
  const urls: Record<Color, string> = { blue: opts.blueUrl.replace(/\/+$/, ''), green: opts.greenUrl.replace(/\/+$/, '') };
  const log = (message: string, fields?: Record<string, unknown>) =>
    process.stdout.write(`bgserve: ${message}${fields ? ` ${JSON.stringify(fields)}` : ''}\n`);
  const upstreams = Object.fromEntries(COLORS.map((c) => [c, [upstreamOf(urls[c])]])) as Upstreams;
  const stack = await startControllerStack({
    host: opts.host,
    port: opts.port,
    router: opts.router,
    routerListen: { host: opts.routerHost ?? opts.host, port: opts.routerPort },
    instances: urls,
    upstreams,
    stateDir: opts.stateDir,
    adminTokenFile: opts.adminTokenFile,
    prometheusUrl: opts.prometheusUrl,
    discoverReplicas: opts.discoverReplicas === true,
    // Compose's nginx takes one service name per color and spreads requests over its A records itself.
    routerResolvesNames: opts.router === nginxEntry.kind && resolverFor(upstreams, opts.nginxResolver as string | undefined) !== undefined,
    driverOptions: opts,
    log,
    registries: { ...registries, drivers },
  });
  log('controller is up', {
    control: stack.controlUrl,
    router: stack.traffic.url,
    kind: stack.traffic.kind,
    blue: urls.blue,
    green: urls.green,
  });

  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  await stack.stop();
}

/** A driver's option as commander takes it: its parser's errors become commander's own. */
function addDriverOption(command: Command, o: DriverOption): void {
  const parse = o.parse;
  if (!parse) {
    command.option(o.flags, o.description, o.default as string | undefined);
    return;
  }
  const parsed = (value: string) => {
    try {
      return parse(value);
    } catch (err) {
      throw new InvalidArgumentError((err as Error).message);
    }
  };
  command.option(o.flags, o.description, parsed, o.default);
}

export function registerController(program: Command): void {
  const drivers = builtInDrivers();
  const command = program
    .command('controller')
    .description('Run the control API, release engine and router over instances started elsewhere (compose, Kubernetes)')
    .requiredOption('--blue-url <url>', 'the blue instance, e.g. http://mlservice_blue:8000')
    .requiredOption('--green-url <url>', 'the green instance, e.g. http://mlservice_green:8000')
    .option('--host <host>', 'address the control API (and the embedded router) listen on', '127.0.0.1')
    .option('--port <port>', 'control API port', port, PORTS.control)
    .option(
      '--router <kind>',
      drivers
        .all()
        .map((d) => `${d.kind} (${d.about})`)
        .join(' | '),
      DEFAULT_DRIVER,
    )
    .option('--router-host <host>', 'embedded router address (default: --host)')
    .option('--router-port <port>', 'embedded router port', port, PORTS.router)
    .option('--state-dir <dir>', 'token, release log and admin token', DEFAULT_STATE_DIR)
    .option('--admin-token-file <file>', "the instances' admin token (default: <state-dir>/admin-token)")
    .option('--prometheus-url <url>', 'judge releases with PromQL on this Prometheus (default: scrape the instances)')
    .option(
      '--discover-replicas',
      "follow each color's replicas in DNS: the URLs' host names are resolved every 5 s (compose --scale, a headless Service)",
    );
  for (const option of drivers.all().flatMap((d) => d.options ?? [])) addDriverOption(command, option);
  command.action(async (o: ControllerCliOptions) => {
    await runController(o);
    process.exit(0);
  });
}
