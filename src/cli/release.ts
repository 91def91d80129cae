/**
 * Release verbs, all through the control API: `deploy`, `promote`, `abort`, `rollback`, `pause`, `resume`,
 * `history`, `release [id]`. `deploy --wait` follows the decision log until the release ends and exits
 * non-zero unless it succeeded.
 */
import path from 'node:path';
import { InvalidArgumentError, Option, type Command } from 'commander';
import type { ReleaseView } from '../control/release-routes.js';
import type { ShadowPairsView } from '../control/shadow-routes.js';
import type { ReleaseTraffic } from '../control/traffic-guard.js';
import { parseDuration, normalizeSteps, SpecError } from '../release/spec.js';
import type { CheckResult, Command as ReleaseCommand, ReleaseEvent, ReleaseState } from '../release/types.js';
import { isLive } from '../release/engine.js';
import { DEFAULT_ANALYSIS, DEFAULT_ANALYSIS_MS, DEFAULT_GOLDEN_RMSE_MARGIN, DEFAULT_INCONCLUSIVE_GRACE_MS } from '../release/defaults.js';
import { checkNamed, SHADOW_CATALOGUE, type Catalogue } from '../release/checks/catalogue.js';
import type { PairSummary } from '../release/pairing.js';
import { UNITS, type CheckUnit } from '../release/checks/definition.js';
import { ControlClient, ControlClientError, withControlOptions, type ControlConnectionOptions } from './control-client.js';
import { nonNegative, percent } from './option-parsers.js';

type Opts = ControlConnectionOptions & { json?: boolean };

interface DeployCliOptions extends Opts {
  strategy?: string;
  steps?: number[];
  shadow?: number;
  shadowPercent?: number;
  analysis?: number;
  goldenMargin?: number;
  inconclusiveGrace?: number;
  wait?: boolean;
  timeout: number;
}

function duration(value: string): number {
  try {
    return parseDuration(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

function steps(value: string): number[] {
  try {
    return normalizeSteps(value.split(',').map((s) => Number(s.trim())));
  } catch (err) {
    if (err instanceof SpecError) throw new InvalidArgumentError(err.message);
    throw err;
  }
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)}s`;

/** A value in the unit of its check; values are recorded in SI units, thresholds shown as configured. */
function inUnit(value: number, unit: CheckUnit, isThreshold: boolean): string {
  const scaled = value * unit.scale;
  const shown =
    unit.decimals !== null ? scaled.toFixed(unit.decimals) : isThreshold ? String(scaled) : String(Math.round(scaled * 1e4) / 1e4);
  return `${shown}${unit.symbol}`;
}

function formatValue(c: CheckResult, catalogue: Catalogue): string {
  if (c.value === null) return c.outcome;
  // A check the catalogue no longer has (an older release's record) shows plain numbers.
  const unit = checkNamed(c.name, catalogue)?.unit ?? UNITS.number;
  const limit = c.threshold === null ? '' : ` / ${inUnit(c.threshold, unit, true)}`;
  return `${inUnit(c.value, unit, false)}${limit}${c.outcome === 'fail' ? ' FAIL' : ''}`;
}

/** Measured checks in one line: `error-ratio 0 / 0.01, latency-p95 0.02ms / 100.00ms, ...`. */
/** Each check's default threshold in its unit, for `deploy --help`. */
function thresholdDefaults(catalogue: Catalogue = SHADOW_CATALOGUE): string {
  return catalogue
    .map((c) => [c.name, c.threshold({ ...DEFAULT_ANALYSIS, ...c.thresholds })] as const)
    .filter((e): e is readonly [string, number] => e[1] !== null)
    .map(([name, t]) => `${name} ${inUnit(t, checkNamed(name, catalogue)?.unit ?? UNITS.number, true)}`)
    .join(', ');
}

export function formatChecks(checks: readonly CheckResult[], catalogue: Catalogue = SHADOW_CATALOGUE): string {
  return checks
    .filter((c) => c.outcome !== 'skipped')
    .map((c) => `${c.name} ${formatValue(c, catalogue)}`)
    .join(', ');
}

export function formatEvent(e: ReleaseEvent, startedAt: number, catalogue: Catalogue = SHADOW_CATALOGUE): string {
  const at = `+${seconds(e.at - startedAt)}`.padStart(8);
  let line = `${at}  ${e.type.padEnd(21)} ${e.reason}`;
  const checks = e.values?.checks as CheckResult[] | undefined;
  if (checks) line += `\n${' '.repeat(32)}${formatChecks(checks, catalogue)}`;
  const pairs = e.values?.pairs as PairSummary | undefined;
  if (pairs) line += `\n${indent(formatPairs(pairs), 32)}`;
  return line;
}

const indent = (text: string, n: number) =>
  text
    .split('\n')
    .map((l) => ' '.repeat(n) + l)
    .join('\n');
const percentOf = (x: number | null) => (x === null ? '-' : `${(x * 100).toFixed(1)}%`);
const figure = (x: number | null) => (x === null ? '-' : String(Math.round(x * 1e4) / 1e4));

/**
 * The shadow phase's paired comparison in a line or a few: agreement, |delta|, and the largest disagreements
 * (with their inputs when the summary has them: the controller's memory, never the release log).
 */
export function formatPairs(p: PairSummary): string {
  const line = `paired ${p.pairs} requests: ${percentOf(p.agreement)} agree within ${p.tolerance}, ${percentOf(p.classAgreement)} same class, |delta| mean ${figure(p.meanAbsDelta)} p95 ${figure(p.p95AbsDelta)} (unpaired stable ${p.unpaired.stable}, new ${p.unpaired.target})`;
  const worst = p.largest
    .slice(0, 3)
    .map(
      (d) =>
        `  ${d.id}: ${figure(d.stable)} -> ${figure(d.target)} (|delta| ${figure(d.delta)})${d.input ? ` ${JSON.stringify(d.input)}` : ''}`,
    );
  return worst.length ? [line, 'largest disagreements:', ...worst].join('\n') : line;
}

/**
 * A release in a few lines, for `status` and the end of `deploy --wait`. With `traffic` (from status), a
 * release whose traffic was moved outside it says so on its own status line.
 */
export function formatReleaseSummary(r: ReleaseState, traffic?: ReleaseTraffic, catalogue: Catalogue = SHADOW_CATALOGUE): string {
  const { spec } = r;
  const where = isLive(r.status)
    ? `${r.phase}${r.phase === 'step' ? ` ${r.stepIndex + 1}/${spec.steps.length}` : ''}, ${spec.targetColor} at ${r.targetWeight}%`
    : r.phase;
  const lines = [
    `release  ${spec.id}  ${spec.strategy}  ${spec.modelName} ${spec.version} -> ${spec.targetColor}  (stable ${spec.stableColor}${spec.stableVersion ? ` ${spec.stableVersion}` : ''})`,
    `status   ${r.status.toUpperCase()} (${where})${r.reason ? `: ${r.reason}` : ''}`,
  ];
  if (traffic && traffic.releaseId === spec.id && !traffic.agrees) {
    lines[1] += `  [BUT live traffic disagrees with it: ${traffic.message}]`;
  }
  if (r.lastAnalysis && isLive(r.status)) {
    lines.push(
      `analysis ${r.lastAnalysis.outcome} on ${r.lastAnalysis.samples.target} requests: ${formatChecks(r.lastAnalysis.checks, catalogue)}`,
    );
    if (r.lastAnalysis.pairs) lines.push(`shadow   ${indent(formatPairs(r.lastAnalysis.pairs), 9).trimStart()}`);
  }
  return lines.join('\n');
}

export function formatHistory(releases: readonly ReleaseState[]): string {
  if (releases.length === 0) return 'no releases yet';
  const rows = releases.map((r) => [
    r.spec.id,
    new Date(r.createdAt).toISOString().replace('T', ' ').slice(0, 19),
    r.spec.strategy,
    `${r.spec.version} -> ${r.spec.targetColor}`,
    r.status,
    seconds(r.updatedAt - r.createdAt),
    r.reason ?? '',
  ]);
  const header = ['id', 'started (UTC)', 'strategy', 'version', 'status', 'took', 'reason'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.slice().map((row) => (i === 6 ? 0 : row[i].length))));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] + 2)))
      .join('')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

/** The controller's in-memory shadow comparison of this release, when it has one (the log keeps no inputs). */
async function shadowPairsOf(client: ControlClient, releaseId: string): Promise<PairSummary | undefined> {
  try {
    const view = await client.get<ShadowPairsView>('/api/shadow/pairs');
    return view.releaseId === releaseId ? view.pairs : undefined;
  } catch (err) {
    if (err instanceof ControlClientError) return undefined;
    throw err;
  }
}

function print(opts: Opts, value: unknown, text: string): void {
  process.stdout.write(opts.json ? `${JSON.stringify(value, null, 2)}\n` : `${text}\n`);
}

/**
 * Prints new events until the release ends, pauses (it then waits for a person: following on would hang a
 * script) or the timeout passes; returns the state it stopped at.
 */
async function follow(client: ControlClient, id: string, opts: Opts, timeoutMs: number, shown = 0): Promise<ReleaseState> {
  const deadline = Date.now() + timeoutMs;
  let next = shown;
  for (;;) {
    const page = await client.get<{ release: ReleaseState; events: ReleaseEvent[]; next: number }>(
      `/api/releases/${encodeURIComponent(id)}/events?after=${next}`,
    );
    if (!opts.json) for (const e of page.events) process.stdout.write(`${formatEvent(e, page.release.createdAt)}\n`);
    next = page.next;
    if (!isLive(page.release.status) || page.release.status === 'paused') return page.release;
    if (Date.now() > deadline)
      throw new Error(
        `release ${id} still ${page.release.status} after ${seconds(timeoutMs)}; follow it with \`npx bgserve release ${id}\``,
      );
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function runDeploy(bundle: string, opts: DeployCliOptions): Promise<void> {
  if (opts.strategy !== undefined && opts.strategy !== 'bluegreen' && opts.strategy !== 'canary') {
    throw new InvalidArgumentError('--strategy must be bluegreen or canary');
  }
  const strategy = opts.strategy ?? (opts.steps ? 'canary' : undefined);
  const body = {
    bundle: path.resolve(bundle),
    ...(strategy ? { strategy } : {}),
    ...(opts.steps ? { steps: opts.steps } : {}),
    ...(opts.shadow !== undefined ? { shadowMs: opts.shadow } : {}),
    ...(opts.shadowPercent !== undefined ? { shadowPercent: opts.shadowPercent } : {}),
    ...(opts.analysis !== undefined ? { analysisMs: opts.analysis } : {}),
    ...(opts.goldenMargin !== undefined ? { goldenRmseMargin: opts.goldenMargin } : {}),
    ...(opts.inconclusiveGrace !== undefined ? { inconclusiveGraceMs: opts.inconclusiveGrace } : {}),
  };
  const client = await ControlClient.connect(opts);
  let started: ReleaseView;
  try {
    started = await client.post<ReleaseView>('/api/releases', body);
  } catch (err) {
    // A refused bundle is a release that failed (it is in history): --wait promises 2 for every failed release.
    if (!opts.wait || !(err instanceof ControlClientError) || err.code !== 'bundle_refused') throw err;
    process.stderr.write(`bgserve: ${err.message}\n`);
    process.exitCode = 2;
    return;
  }
  const { spec } = started.release;
  if (!opts.wait) {
    print(
      opts,
      started,
      `${formatReleaseSummary(started.release)}\nfollow it with \`npx bgserve release ${spec.id}\` or \`npx bgserve deploy ... --wait\``,
    );
    return;
  }
  if (!opts.json) process.stdout.write(`deploying ${spec.modelName} ${spec.version} (${spec.strategy}) as release ${spec.id}\n`);
  const final = await follow(client, spec.id, opts, opts.timeout);
  if (opts.json) {
    const view = await client.get<ReleaseView>(`/api/releases/${encodeURIComponent(spec.id)}`);
    print(opts, view, '');
  } else {
    process.stdout.write(`\n${formatReleaseSummary(final)}\n`);
  }
  if (final.status === 'paused') process.exitCode = 3;
  else if (final.status !== 'succeeded') process.exitCode = 2;
}

async function runCommand(command: ReleaseCommand, opts: Opts): Promise<void> {
  const client = await ControlClient.connect(opts);
  const view = await client.post<ReleaseView>(`/api/releases/current/${command}`, {});
  const text = view.events.map((e) => formatEvent(e, view.release.createdAt)).join('\n');
  print(opts, view, `${text}\n\n${formatReleaseSummary(view.release)}`);
}

const COMMAND_HELP: Record<ReleaseCommand, string> = {
  promote: 'Skip the remaining steps and analysis of the current release: 100% to the new version now',
  abort: 'Stop the current release: 100% back on the stable color (status aborted)',
  rollback: 'Roll the current release back, or revert the last successful one to the warm old color',
  pause: 'Hold the current release at its present weights (analysis stops judging)',
  resume: 'Resume a paused release (its analysis window restarts)',
};

export function registerRelease(program: Command): void {
  withControlOptions(
    program
      .command('deploy')
      .description('Release a model bundle: load it on the idle color, check it, move traffic, judge it, promote or roll back')
      .argument('<bundle>', 'bundle folder, e.g. models/wine-quality/1.1.0')
      .option('--strategy <kind>', 'bluegreen (default) | canary')
      .option('--steps <list>', 'canary weight steps in percent, e.g. 10,25,50 (100 is added; implies canary)', steps)
      .option('--shadow <duration>', 'bluegreen: mirror live traffic to the new color for this long first, e.g. 30s', duration)
      .option('--shadow-percent <n>', 'share of traffic mirrored during the shadow phase', percent(1))
      .option('--analysis <duration>', `analysis window per step / after the switch (default ${seconds(DEFAULT_ANALYSIS_MS)})`, duration)
      .option(
        '--golden-margin <rmse>',
        `golden-set gate: RMSE (a classifier's accuracy, as a share) may be worse than the stable version by at most this (default ${DEFAULT_GOLDEN_RMSE_MARGIN})`,
        nonNegative,
      )
      .option(
        '--inconclusive-grace <duration>',
        `too little traffic to judge: pause this long after the window (default ${seconds(DEFAULT_INCONCLUSIVE_GRACE_MS)})`,
        duration,
      )
      .option('--wait', 'follow the release until it ends; exit 2 unless it succeeded, 3 when it pauses for a person (resume or promote)')
      .addOption(
        new Option('--timeout <duration>', 'with --wait: give up following after this long')
          .argParser(duration)
          .default(15 * 60_000, '15m'),
      )
      .option('--json', 'print JSON')
      .addHelpText(
        'after',
        `\nAnalysis thresholds: ${thresholdDefaults()}.\nThey are set in src/release/checks/ (one entry per check), not per deploy. A release is judged on live\ntraffic: \`npx bgserve load\` makes some.`,
      ),
  ).action(runDeploy);

  for (const command of Object.keys(COMMAND_HELP) as ReleaseCommand[]) {
    withControlOptions(program.command(command).description(COMMAND_HELP[command]).option('--json', 'print JSON')).action((opts: Opts) =>
      runCommand(command, opts),
    );
  }

  withControlOptions(
    program
      .command('history')
      .description('Past releases, newest first')
      .option('--limit <n>', 'how many', (v) => Number(v), 20)
      .option('--json', 'print JSON'),
  ).action(async (opts: Opts & { limit: number }) => {
    const client = await ControlClient.connect(opts);
    const { releases } = await client.get<{ releases: ReleaseState[] }>(`/api/releases?limit=${opts.limit}`);
    print(opts, releases, formatHistory(releases));
  });

  withControlOptions(
    program
      .command('release')
      .description('One release and its decision log (default: the current or latest one)')
      .argument('[id]', 'release id', 'current')
      .option('--follow', 'keep printing events until it ends')
      .option('--json', 'print JSON'),
  ).action(async (id: string, opts: Opts & { follow?: boolean }) => {
    const client = await ControlClient.connect(opts);
    const view = await client.get<ReleaseView>(`/api/releases/${encodeURIComponent(id)}`);
    if (opts.json && !opts.follow) return print(opts, view, '');
    if (!opts.json) for (const e of view.events) process.stdout.write(`${formatEvent(e, view.release.createdAt)}\n`);
    const shadow = opts.json ? undefined : await shadowPairsOf(client, view.release.spec.id);
    if (shadow) process.stdout.write(`\nshadow comparison (controller memory, inputs included):\n${formatPairs(shadow)}\n`);
    const final = opts.follow ? await follow(client, view.release.spec.id, opts, 60 * 60_000, view.events.length) : view.release;
    print(opts, final, `\n${formatReleaseSummary(final)}`);
  });
}
