/** `bgserve weights | switch | mirror | sticky | status`: traffic verbs, all through the control API. */
import { InvalidArgumentError, type Command } from 'commander';
import { COLORS, isColor, type Color } from '../config/defaults.js';
import type { StatusReport } from '../control/traffic-routes.js';
import { parseWeightArgs } from '../traffic/policy.js';
import type { TrafficState } from '../traffic/types.js';
import { ControlClient, withControlOptions, type ControlConnectionOptions } from './control-client.js';
import type { ReleaseView } from '../control/release-routes.js';
import type { ReleaseState } from '../release/types.js';
import { formatReleaseSummary } from './release.js';
import { percent } from './option-parsers.js';
import { positiveSeconds, runWatch } from './status-watch.js';

/** A traffic change's answer; `release` when a live release was paused (or ended) to make way for it. */
type Applied = TrafficState & { inEffectMs?: number; release?: ReleaseState };

const FORCE_HELP = 'move traffic even while a release is live: the release is paused (its reason names you)';

function colorArg(value: string): Color {
  if (!isColor(value)) throw new InvalidArgumentError(`expected ${COLORS.join(' or ')}`);
  return value;
}

export function formatWeights(w: { blue: number; green: number }): string {
  return `blue ${w.blue}%  green ${w.green}%`;
}

function formatMirror(m: TrafficState['mirror']): string {
  return m.target ? `${m.percent}% copied to ${m.target} (answers discarded)` : 'off';
}

function formatSticky(s: TrafficState['sticky']): string {
  if (!s) return 'off';
  return s.header !== undefined ? `by header ${s.header}` : `by cookie ${s.cookie}`;
}

function pad(text: string, width: number): string {
  return text.length >= width ? `${text} ` : text.padEnd(width);
}

/** Human-readable status: the split first, then one line per color, then anything wrong. */
export function formatStatus(r: StatusReport): string {
  const lines = [
    `router   ${r.router.kind} at ${r.router.url} (config generation ${r.generation})`,
    `weights  ${formatWeights(r.weights)}${r.active ? `  (all on ${r.active})` : ''}`,
    `mirror   ${formatMirror(r.mirror)}`,
    `sticky   ${formatSticky(r.sticky)}`,
  ];
  // Right under the split it contradicts: a release's own status line further down is only half the story.
  if (r.releaseTraffic && !r.releaseTraffic.agrees) lines.push(`traffic  DISAGREES: ${r.releaseTraffic.message}`);
  const damage = r.releaseLog?.damage ?? [];
  if (r.releaseLog && damage.length > 0) {
    lines.push(`log      ${damage.length} damaged record${damage.length === 1 ? '' : 's'} skipped in ${r.releaseLog.file}`);
    for (const d of damage.slice(0, 5)) lines.push(`           line ${d.line}: ${d.problem}`);
    if (damage.length > 5) lines.push(`           ... and ${damage.length - 5} more`);
  }
  lines.push('', `${pad('color', 7)}${pad('weight', 8)}${pad('router', 11)}${pad('instance', 10)}${pad('model', 22)}${pad('pid', 9)}url`);
  const problems: string[] = [];
  for (const color of COLORS) {
    const c = r.colors[color];
    const model = c.model ? `${c.model.name} ${c.model.version}` : '-';
    const instance = c.ok ? (c.state ?? 'up') : c.process && !c.process.running ? 'exited' : 'down';
    lines.push(
      `${pad(color, 7)}${pad(`${c.weight}%`, 8)}${pad(c.healthy ? 'healthy' : 'UNHEALTHY', 11)}${pad(instance, 10)}${pad(model, 22)}${pad(String(c.process?.pid ?? '-'), 9)}${c.url}`,
    );
    // A color of several replicas: one line each under it (address, model, ready, in rotation, req/s).
    const replicas = c.replicas ?? [];
    if (replicas.length > 1) {
      for (const x of replicas) {
        const rate = x.rps === null ? '- req/s' : `${x.rps} req/s`;
        const state = `${x.ready ? 'ready' : 'NOT READY'}${x.healthy ? '' : ', out of rotation'}`;
        lines.push(
          `  ${pad(x.address, 22)}${pad(x.model ? x.model.version : '-', 10)}${pad(state, 28)}${pad(rate, 12)}pid ${x.process?.pid ?? '-'}`,
        );
      }
      const versions = new Set(replicas.flatMap((x) => (x.model ? [x.model.version] : [])));
      if (versions.size > 1) problems.push(`${color}: replicas serve different versions (${[...versions].join(', ')})`);
    }
    if (c.lastError) problems.push(`${color}: router saw ${c.lastError}`);
    if (c.error) problems.push(`${color}: ${c.error}`);
    if (c.process && !c.process.running) {
      problems.push(`${color}: process exited (${c.process.signal ? `signal ${c.process.signal}` : `code ${c.process.exitCode}`})`);
    }
  }
  if (problems.length > 0) lines.push('', ...problems);
  return lines.join('\n');
}

function applied(state: Applied): string {
  const took = state.inEffectMs !== undefined ? ` (in effect after ${state.inEffectMs} ms)` : '';
  return `weights ${formatWeights(state.weights)}${took}${yielded(state)}`;
}

function yielded(state: Applied): string {
  const r = state.release;
  return r ? `\nrelease ${r.spec.id} is now ${r.status}: ${r.reason ?? ''}` : '';
}

type Opts = ControlConnectionOptions & { json?: boolean };
type ForceOpts = Opts & { force?: boolean };

const force = (opts: ForceOpts) => (opts.force ? { force: true } : {});

function print(opts: Opts, value: unknown, text: string): void {
  process.stdout.write(opts.json ? `${JSON.stringify(value, null, 2)}\n` : `${text}\n`);
}

export function registerTraffic(program: Command): void {
  withControlOptions(
    program
      .command('weights')
      .description('Set the traffic split, e.g. `npx bgserve weights blue=90 green=10` (one color alone implies the other)')
      .argument('<split...>', 'blue=N and/or green=N, whole percents summing to 100')
      .option('--force', FORCE_HELP)
      .option('--json', 'print the new state as JSON'),
  ).action(async (split: string[], opts: ForceOpts) => {
    const weights = parseWeightArgs(split);
    const client = await ControlClient.connect(opts);
    const state = await client.put<Applied>('/api/weights', { ...weights, ...force(opts) });
    print(opts, state, applied(state));
  });

  withControlOptions(
    program
      .command('switch')
      .description('Send all traffic to one color (in effect when the command returns)')
      .argument('<color>', COLORS.join(' | '), colorArg)
      .option('--force', FORCE_HELP)
      .option('--json', 'print the new state as JSON'),
  ).action(async (color: Color, opts: ForceOpts) => {
    const client = await ControlClient.connect(opts);
    const state = await client.post<Applied>('/api/switch', { color, ...force(opts) });
    print(opts, state, `switched to ${color}: ${applied(state)}`);
  });

  withControlOptions(
    program
      .command('mirror')
      .description(
        'Copy a share of requests to a color, answers discarded (`npx bgserve mirror green --percent 20`, `npx bgserve mirror off`)',
      )
      .argument('<target>', `${COLORS.join(' | ')} | off`)
      .option('--percent <n>', 'share of requests copied', percent(0), 100)
      .option('--force', FORCE_HELP)
      .option('--json', 'print the new state as JSON'),
  ).action(async (target: string, opts: ForceOpts & { percent: number }) => {
    if (target !== 'off' && !isColor(target)) throw new InvalidArgumentError(`mirror target must be ${COLORS.join(', ')} or off`);
    const client = await ControlClient.connect(opts);
    const body = target === 'off' ? { target: null, percent: 0 } : { target, percent: opts.percent };
    const state = await client.put<Applied>('/api/mirror', { ...body, ...force(opts) });
    print(opts, state, `mirror ${formatMirror(state.mirror)}${yielded(state)}`);
  });

  withControlOptions(
    program
      .command('sticky')
      .description('Keep a client on one color by a header or cookie key (`--header x-user`, `--cookie sid`, or `off`)')
      .argument('[off]', 'turn stickiness off')
      .option('--header <name>', 'request header carrying the key')
      .option('--cookie <name>', 'cookie carrying the key')
      .option('--json', 'print the new state as JSON'),
  ).action(async (off: string | undefined, opts: Opts & { header?: string; cookie?: string }) => {
    const body = off === 'off' ? null : opts.header ? { header: opts.header } : opts.cookie ? { cookie: opts.cookie } : undefined;
    if (body === undefined) throw new InvalidArgumentError('give --header <name>, --cookie <name> or off');
    const client = await ControlClient.connect(opts);
    const state = await client.put<TrafficState>('/api/sticky', body);
    print(opts, state, `sticky ${formatSticky(state.sticky)}`);
  });

  withControlOptions(
    program
      .command('status')
      .description('Show the traffic split, mirror and the health of each color')
      .option('--json', 'print JSON')
      .option('--watch', 'redraw the split, rates, errors, p99 and the release every --interval seconds until Ctrl-C')
      .option('--interval <seconds>', 'with --watch: seconds between frames', positiveSeconds, 2),
  ).action(async (opts: Opts & { watch?: boolean; interval: number }) => {
    const client = await ControlClient.connect(opts);
    if (opts.watch) return runWatch(client, opts.interval);
    const report = await client.get<StatusReport>('/api/status');
    // The current or latest release beside the split, so status says whether traffic is where the release put
    // it; a control API without releases (none yet, or no release routes) leaves it out rather than failing.
    const release = await client.get<ReleaseView>('/api/releases/current').then(
      (v) => v.release,
      () => null,
    );
    const summary = release ? `\n\n${formatReleaseSummary(release, report.releaseTraffic)}` : '';
    print(opts, release ? { ...report, release } : report, `${formatStatus(report)}${summary}`);
  });
}
