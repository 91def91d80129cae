/**
 * `bgserve judge`: bgserve's model checks (golden-set gate, prediction agreement and shift) over HTTP, for a
 * rollout engine that runs elsewhere (Argo Rollouts' web metrics, Flagger's webhooks).
 */
import path from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { DEFAULT_BUNDLE } from '../config/defaults.js';
import { JUDGE_PORT } from '../judge/defaults.js';
import { loadGoldenSet } from '../judge/golden-set.js';
import { buildJudgeServer } from '../judge/server.js';
import { DEFAULT_GOLDEN_RMSE_MARGIN } from '../release/defaults.js';
import { PREDICTION_BUCKETS } from '../serve/metrics.js';
import { nonNegative, port } from './option-parsers.js';

interface JudgeCliOptions {
  stable: string;
  candidate: string;
  golden: string;
  target?: string;
  goldenMargin: number;
  port: number;
  host: string;
}

function httpUrl(value: string): string {
  try {
    const url = new URL(value);
    if (url.protocol === 'http:' || url.protocol === 'https:') return url.toString();
  } catch {}
  throw new InvalidArgumentError('expected an http(s) URL, e.g. http://bgserve-preview');
}

export function registerJudge(program: Command): void {
  program
    .command('judge')
    .description(
      "Serve bgserve's model checks over HTTP: GET /judge/golden, /judge/agreement or /judge?check=all sends the golden rows to both versions and answers the verdict (200 pass, 412 fail, 503 inconclusive; report=true answers 200 always).",
    )
    .requiredOption('--stable <url>', 'base URL of the stable version (e.g. its Service)', httpUrl)
    .requiredOption('--candidate <url>', 'base URL of the new version', httpUrl)
    .option(
      '--golden <csv-or-bundle>',
      'labelled rows: a CSV with the data set header, or a bundle folder (its golden.csv)',
      DEFAULT_BUNDLE,
    )
    .option('--target <column>', 'label column of a CSV (default: quality)')
    .option(
      '--golden-margin <rmse>',
      'golden-set gate: RMSE may be worse than the stable version by at most this',
      nonNegative,
      DEFAULT_GOLDEN_RMSE_MARGIN,
    )
    .option('--port <port>', 'port to listen on', port, JUDGE_PORT)
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .action(async (opts: JudgeCliOptions) => {
      const golden = await loadGoldenSet(path.resolve(opts.golden), { target: opts.target });
      const app = buildJudgeServer({
        stable: opts.stable,
        candidate: opts.candidate,
        golden,
        buckets: PREDICTION_BUCKETS,
        goldenRmseMargin: opts.goldenMargin,
      });
      const url = await app.listen({ port: opts.port, host: opts.host });
      process.stdout.write(
        `bgserve judge on ${url}: ${golden.rows.length} golden rows, stable ${opts.stable}, candidate ${opts.candidate}\n`,
      );
      const stop = () => void app.close().then(() => process.exit(0));
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
    });
}
