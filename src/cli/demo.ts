/** `bgserve load` (demo traffic for releases to be judged on) and `bgserve demo-bundles` (the demo's bad versions). */
import path from 'node:path';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { DEFAULT_BUNDLE, DEFAULT_STATE_DIR, PORTS } from '../config/defaults.js';
import { DEMO_LIVE_ROWS, DEMO_SHIFT, writeDemoBundles } from '../demo/bundles.js';
import { SLOW_DENSE_SIZE } from '../demo/slow.js';
import { formatTally, LOAD_LIMITS, runLoad, type LoadTally, type Row } from '../demo/load.js';
import { readDataset } from '../model/csv.js';
import { WINE_EXAMPLE, WINE_FEATURES, WINE_TARGET } from '../model/wine.js';
import { parseDuration } from '../release/spec.js';
import { integer } from './option-parsers.js';

interface LoadCliOptions {
  url: string;
  rate: number;
  duration: number;
  rows: string;
  every: number;
  failOnError?: boolean;
}

function boundedDuration(max: number) {
  return (value: string): number => {
    let ms: number;
    try {
      ms = parseDuration(value);
    } catch (err) {
      throw new InvalidArgumentError((err as Error).message);
    }
    if (ms <= 0 || ms > max) throw new InvalidArgumentError(`expected a duration above 0 and at most ${max / 60_000}m`);
    return ms;
  };
}

/** The README's example, then the golden rows in turn: varied inputs, so prediction-shift checks see a spread. */
async function demoRows(csv: string): Promise<Row[]> {
  const data = await readDataset(csv, { features: WINE_FEATURES, target: WINE_TARGET, labelled: false });
  const rows: Row[] = [WINE_EXAMPLE];
  for (let r = 0; r < data.nRows; r++) {
    rows.push(Object.fromEntries(WINE_FEATURES.map((f, c) => [f, data.x[r * WINE_FEATURES.length + c]])));
  }
  return rows;
}

function summary(t: LoadTally): string {
  const lines = [`load: done: ${formatTally(t).trim()}`];
  for (const [key, n] of Object.entries(t.answers).sort(([a], [b]) => a.localeCompare(b))) lines.push(`  ${key.padEnd(24)} ${n}`);
  for (const [cause, n] of Object.entries(t.failures)) lines.push(`  failed: ${cause.padEnd(16)} ${n}`);
  return lines.join('\n');
}

async function runLoadCommand(o: LoadCliOptions): Promise<void> {
  const rows = await demoRows(o.rows);
  process.stdout.write(
    `load: ${o.rate}/s for ${(o.duration / 1000).toFixed(0)}s to ${o.url}/predict (${rows.length} rows in turn); Ctrl-C stops early\n`,
  );
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const tally = await runLoad({
      url: o.url,
      rate: o.rate,
      durationMs: o.duration,
      rows,
      reportEveryMs: o.every,
      onReport: (t) => process.stdout.write(`load: ${formatTally(t)}\n`),
      signal: stop.signal,
    });
    process.stdout.write(`${summary(tally)}\n`);
    if (o.failOnError && tally.failed > 0) process.exitCode = 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

export function registerDemo(program: Command): void {
  program
    .command('load')
    .description(
      'Demo traffic: POST the example and golden rows to the router at a fixed rate for a fixed time, counting answers per color and version',
    )
    .option('--url <url>', 'the router', `http://127.0.0.1:${PORTS.router}`)
    .option('--rate <n>', `requests per second (at most ${LOAD_LIMITS.maxRate})`, integer(1, LOAD_LIMITS.maxRate), 20)
    .addOption(
      new Option('--duration <duration>', 'how long, e.g. 60s, 5m (at most 60m)')
        .argParser(boundedDuration(LOAD_LIMITS.maxDurationMs))
        .default(60_000, '60s'),
    )
    .option('--rows <csv>', 'rows to send after the example (a CSV with the features): live-like wines', DEMO_LIVE_ROWS)
    .addOption(
      new Option('--every <duration>', 'a progress line this often')
        .argParser(boundedDuration(LOAD_LIMITS.maxDurationMs))
        .default(5000, '5s'),
    )
    .option('--fail-on-error', 'exit 1 when any request failed')
    .addHelpText('after', '\nDurations: 500ms, 30s, 5m, or a bare number of seconds.')
    .action(runLoadCommand);

  program
    .command('demo-bundles')
    .description(
      'Write the demo bad versions, derived from --from: 1.0.1-corrupt (fails its checksum), 1.0.1-shifted (predictions moved up), 1.0.1-erroring (no finite prediction for part of the live-like rows), 1.0.1-slow (same predictions, milliseconds per request)',
    )
    .argument(
      '[dir]',
      'where; must be inside a bundle root of the running stack (models/ or the state dir)',
      path.join(DEFAULT_STATE_DIR, 'demo-bundles'),
    )
    .option('--from <bundle>', 'the good bundle to derive them from', DEFAULT_BUNDLE)
    .option('--rows <csv>', 'live-like rows the erroring variant fails a share of (as `load --rows`)', DEMO_LIVE_ROWS)
    .action(async (dir: string, o: { from: string; rows: string }) => {
      const written = await writeDemoBundles(path.resolve(o.from), path.resolve(dir), path.resolve(o.rows));
      const shown = (dir: string) => path.relative(process.cwd(), dir) || dir;
      const pct = (written.erroringShare * 100).toFixed(0);
      process.stdout.write(
        `wrote ${shown(written.corrupt)}    (forest.bin fails its checksum: refused before traffic moves)\n` +
          `wrote ${shown(written.shifted)}    (every prediction +${DEMO_SHIFT}: rolled back by the live analysis)\n` +
          `wrote ${shown(written.erroring)}   (overflows on ${pct}% of the rows in ${shown(path.resolve(o.rows))}, on none of its golden rows: passes its smoke test, answers 500 model_error live, rolled back by the error-ratio check)\n` +
          `wrote ${shown(written.slow)}       (ONNX, the same predictions plus a ${SLOW_DENSE_SIZE}x${SLOW_DENSE_SIZE} matrix product per request: rolled back by the latency checks)\n`,
      );
    });
}
