/** `bgserve serve`: one instance serving one model bundle, drained gracefully on SIGTERM/SIGINT. */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { pino } from 'pino';
import { COLORS, DEFAULT_BUNDLE, PORTS, isColor } from '../config/defaults.js';
import { defaultBundleRoots, loadBundle } from '../model/bundle.js';
import { buildApp, SERVE_DEFAULTS } from '../serve/app.js';
import { DRAIN_DEFAULTS, listenAndDrainOnSignal } from '../serve/server.js';
import { integer } from './option-parsers.js';

/** Color label of an instance started without --color. */
export const STANDALONE_COLOR = 'standalone';
export const ADMIN_TOKEN_ENV = 'BGSERVE_ADMIN_TOKEN';

export interface ServeCliOptions {
  bundle: string;
  port?: number;
  host: string;
  color?: string;
  adminTokenFile?: string;
  /** Folders POST /admin/model may load from, besides the default ones. */
  bundleRoot: string[];
  batchLimit: number;
  bodyLimit: number;
  drainDelayMs: number;
  logLevel: string;
}

function color(value: string): string {
  if (!isColor(value)) throw new InvalidArgumentError(`expected one of ${COLORS.join(', ')}`);
  return value;
}

/** Token from the file (trimmed) or the environment; undefined when neither is set. */
export async function readAdminToken(file: string | undefined, env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  const token = file !== undefined ? (await readFile(file, 'utf8')).trim() : env[ADMIN_TOKEN_ENV]?.trim();
  if (token === '') throw new Error(file !== undefined ? `admin token file ${file} is empty` : `${ADMIN_TOKEN_ENV} is empty`);
  return token;
}

/** Repeatable option: every value given, in order. */
function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** The default roots (models/ here, the start-up bundle's models folder) and those given, absolute. */
export function bundleRootsFor(bundle: string, given: readonly string[], cwd = process.cwd()): string[] {
  return [...new Set([...defaultBundleRoots(bundle, cwd), ...given.map((r) => path.resolve(cwd, r))])];
}

/** The port an instance listens on: as given, else its color's (blue 8001, green 8002), else 8080. */
export function defaultPort(colorName: string | undefined): number {
  return colorName === 'blue' || colorName === 'green' ? PORTS[colorName] : PORTS.router;
}

export async function runServe(opts: ServeCliOptions): Promise<void> {
  const colorName = opts.color ?? STANDALONE_COLOR;
  const log = pino({ level: opts.logLevel, base: { pid: process.pid, color: colorName } });
  const model = await loadBundle(path.resolve(opts.bundle));
  const adminToken = await readAdminToken(opts.adminTokenFile);
  const bundleRoots = bundleRootsFor(opts.bundle, opts.bundleRoot);
  const app = buildApp({
    model,
    color: colorName,
    adminToken,
    bundleRoots,
    batchLimit: opts.batchLimit,
    bodyLimit: opts.bodyLimit,
    loggerInstance: log,
  });
  const address = await listenAndDrainOnSignal(app, {
    port: opts.port ?? defaultPort(opts.color),
    host: opts.host,
    drainDelayMs: opts.drainDelayMs,
    drainTimeoutMs: DRAIN_DEFAULTS.drainTimeoutMs,
  });
  log.info(
    {
      event: 'listening',
      address,
      model: app.serving.holder.current.identity,
      bundle: model.dir,
      admin: adminToken === undefined ? 'disabled' : 'enabled',
      bundleRoots,
    },
    'listening',
  );
}

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('Serve one model bundle over HTTP (POST /predict, /predict/batch, /health, /ready, /metrics, /docs)')
    .option('--bundle <dir>', 'model bundle folder', DEFAULT_BUNDLE)
    .option('--port <port>', 'port (default: blue 8001, green 8002, else 8080)', integer(0, 65535))
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--color <color>', `color label of this instance (${COLORS.join(' | ')})`, color)
    .option('--admin-token-file <file>', `bearer token of POST /admin/model (else env ${ADMIN_TOKEN_ENV}; neither: admin disabled)`)
    .option(
      '--bundle-root <dir>',
      'a folder POST /admin/model may load bundles from (repeatable); ./models and the folder two above --bundle always are',
      collect,
      [],
    )
    .option('--batch-limit <rows>', 'rows per /predict/batch request (more: 413)', integer(1), SERVE_DEFAULTS.batchLimit)
    .option('--body-limit <bytes>', 'bytes per request body (more: 413)', integer(1), SERVE_DEFAULTS.bodyLimit)
    .option(
      '--drain-delay-ms <ms>',
      'on SIGTERM, time between /ready turning 503 and closing the socket',
      integer(0),
      DRAIN_DEFAULTS.drainDelayMs,
    )
    .option('--log-level <level>', 'pino log level (debug logs every request)', 'info')
    .action(async (opts: ServeCliOptions) => {
      await runServe(opts);
    });
}
