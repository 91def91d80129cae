/**
 * The status page, served by the control API: GET /status (public: a static page with no data in it) and
 * GET /api/live (behind the token, like everything the page reads and every button it has).
 *
 * `up` registers `statusPagePlugin` in publicControlPlugins and `liveStatsPlugin()` in controlPlugins.
 */
import { createHash } from 'node:crypto';
import type { ControlPlugin } from './context.js';
import { uplotAssets } from './status-page-assets.js';
import { CHARTS_SCRIPT } from './status-page-charts.js';
import { renderStatusPage, STATUS_PAGE_CSS, STATUS_PAGE_SCRIPT, UPLOT_CSS_PATH, UPLOT_JS_PATH } from './status-page-html.js';
import { LiveSampler, type LiveSamplerOptions } from './status-page-live.js';

export const STATUS_PAGE_PATH = '/status';

function sha256(text: string): string {
  return `'sha256-${createHash('sha256').update(text).digest('base64')}'`;
}

/**
 * Only the page's own inline scripts and style may run, besides the uPlot files this server serves (and the
 * page pins by integrity); it may talk to this origin only.
 */
export const STATUS_PAGE_CSP = [
  "default-src 'none'",
  `script-src ${sha256(STATUS_PAGE_SCRIPT)} ${sha256(CHARTS_SCRIPT)} 'self'`,
  `style-src ${sha256(STATUS_PAGE_CSS)} 'self'`,
  "connect-src 'self'",
  "img-src 'self'",
  "form-action 'none'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

export const statusPagePlugin: ControlPlugin = async (app) => {
  const assets = uplotAssets();
  const page = renderStatusPage({ uplotJsIntegrity: assets.js.integrity, uplotCssIntegrity: assets.css.integrity });
  for (const [route, asset] of [
    [UPLOT_JS_PATH, assets.js],
    [UPLOT_CSS_PATH, assets.css],
  ] as const) {
    app.get(route, async (_request, reply) =>
      reply.header('x-content-type-options', 'nosniff').header('cache-control', 'public, max-age=3600').type(asset.type).send(asset.body),
    );
  }
  app.get(STATUS_PAGE_PATH, async (_request, reply) =>
    reply
      .header('content-security-policy', STATUS_PAGE_CSP)
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .header('cache-control', 'no-store')
      .type('text/html; charset=utf-8')
      .send(page),
  );
};

/** GET /api/live: request rate, 5xx ratio and p99 per color over the last ~10s, scraped from the instances. */
export function liveStatsPlugin(opts: Omit<LiveSamplerOptions, 'instances'> = {}): ControlPlugin {
  return async (api, { ctx }) => {
    const sampler = new LiveSampler({ ...opts, instances: { blue: ctx.colors.blue.url, green: ctx.colors.green.url } });
    api.get('/live', async () => sampler.stats());
  };
}
