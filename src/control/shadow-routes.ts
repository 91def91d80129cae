/**
 * GET /api/shadow/pairs (behind the token): the latest paired shadow comparison as the controller holds it in
 * memory, the largest disagreements' inputs included (the release log records them without). `bgserve release`
 * shows it for the release it prints.
 */
import type { PairSummary } from '../release/pairing-types.js';
import { ControlError, type ControlPlugin } from './context.js';

export interface ShadowPairsView {
  releaseId: string;
  pairs: PairSummary;
}

export function shadowRoutes(source: { shadowPairs(): ShadowPairsView | undefined }): ControlPlugin {
  return async (api) => {
    api.get('/shadow/pairs', async () => {
      const view = source.shadowPairs();
      if (!view) throw new ControlError(404, 'no_shadow', 'no shadow comparison since the controller started: deploy with --shadow');
      return view;
    });
  };
}
