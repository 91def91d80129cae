/**
 * GET /api/history (behind the token): the controller's recent per-color figures, the release markers over the
 * same window, the prediction distributions, the current release's golden-set comparison and the latest shadow
 * comparison's sample of paired predictions. What the status page charts and `bgserve status --watch` draw. The
 * sampler runs while the control API is up.
 */
import type { Color } from '../config/defaults.js';
import type { ReleaseEvent, ReleaseState } from '../release/types.js';
import { ControlError, type ControlPlugin } from './context.js';
import type { ShadowPairsView } from './shadow-routes.js';
import { HistorySampler } from './history-sampler.js';
import {
  type Distribution,
  type GoldenComparison,
  goldenComparison,
  type HistoryPoint,
  type Marker,
  MetricHistory,
  type MetricHistoryOptions,
  releaseMarkers,
} from './history.js';

/** What the history needs of the release controller: the release log, read when asked. */
export interface ReleaseLogView {
  current(): ReleaseState | undefined;
  history(limit: number): ReleaseState[];
  events(releaseId: string): ReleaseEvent[];
  /** The latest paired shadow comparison (absent: the history has no scatter). */
  shadowPairs?(): ShadowPairsView | undefined;
}

/** The latest shadow comparison as the scatter needs it: its figures and its sample, no inputs. */
export interface ShadowScatter {
  releaseId: string;
  pairs: number;
  tolerance: number;
  agreement: number | null;
  classAgreement: number | null;
  /** [stable, new] predictions of a uniform sample of the pairs. */
  sample: Array<[number, number]>;
}

export interface HistoryReport {
  now: number;
  windowMs: number;
  intervalMs: number;
  points: HistoryPoint[];
  markers: Marker[];
  /** Predictions of each color over the window, with the version it serves for the current release. */
  distributions: Record<Color, Distribution & { version: string | null }>;
  golden: GoldenComparison | null;
  /** Null before any shadow comparison has paired a request (absent from a controller older than the scatter). */
  shadow?: ShadowScatter | null;
}

export interface HistoryRoutesOptions extends MetricHistoryOptions {
  /** Where the markers and the golden comparison come from (none: the history has neither). */
  releases?: ReleaseLogView;
}

/** The version each color serves as far as the release log says (the current release's two versions). */
function versions(release: ReleaseState | undefined): Record<Color, string | null> {
  const out: Record<Color, string | null> = { blue: null, green: null };
  if (!release) return out;
  out[release.spec.targetColor] = release.spec.version;
  out[release.spec.stableColor] = release.spec.stableVersion ?? null;
  return out;
}

function shadowScatter(releases: ReleaseLogView | undefined): ShadowScatter | null {
  const view = releases?.shadowPairs?.();
  if (!view || view.pairs.pairs === 0) return null;
  const { pairs, tolerance, agreement, classAgreement, sample = [] } = view.pairs;
  return { releaseId: view.releaseId, pairs, tolerance, agreement, classAgreement, sample };
}

export function historyReport(history: MetricHistory, releases: ReleaseLogView | undefined, sinceMs: number, now: number): HistoryReport {
  const from = Math.max(sinceMs, now - history.windowMs);
  const current = releases?.current();
  const version = versions(current);
  const dist = history.distributions();
  return {
    now,
    windowMs: history.windowMs,
    intervalMs: history.intervalMs,
    points: history.points(sinceMs),
    markers: releases ? releaseMarkers(releases.history(20), (id) => releases.events(id), from) : [],
    distributions: {
      blue: { ...dist.blue, version: version.blue },
      green: { ...dist.green, version: version.green },
    },
    golden: current && releases ? goldenComparison(current, releases.events(current.spec.id)) : null,
    shadow: shadowScatter(releases),
  };
}

export function historyRoutes(opts: HistoryRoutesOptions = {}): ControlPlugin {
  return async (api, { ctx }) => {
    const history = new MetricHistory(opts);
    const sampler = new HistorySampler({
      history,
      instances: { blue: ctx.colors.blue.url, green: ctx.colors.green.url },
      ...(ctx.pools ? { pools: ctx.pools } : {}),
      weights: () => ctx.traffic.state().weights,
    });
    // Only while the API is up: a plane built and never started samples nothing.
    api.addHook('onReady', async () => sampler.start());
    api.addHook('onClose', async () => sampler.stop());
    api.get<{ Querystring: { since?: string } }>('/history', async (request) => {
      const since = request.query.since === undefined ? 0 : Number(request.query.since);
      if (!Number.isInteger(since) || since < 0) {
        throw new ControlError(400, 'bad_request', 'since must be a non-negative integer (ms since the epoch)', {
          since: request.query.since,
        });
      }
      return historyReport(history, opts.releases, since, Date.now());
    });
  };
}
