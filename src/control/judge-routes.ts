/**
 * The judge on the control API (GET|POST /api/judge, /api/judge/golden, /api/judge/agreement): the same routes
 * as `bgserve judge`, aimed at the current (or latest) release's colors: its stable color against the color it
 * released to, on the golden rows of the released bundle. Lets an outside engine (a Flagger webhook, an Argo
 * web metric) ask the controller for bgserve's verdict on the model without a judge of its own.
 */
import type { ReleaseController } from '../controller/controller.js';
import { loadGoldenSet } from '../judge/golden-set.js';
import { judgeRoutes } from '../judge/routes.js';
import { PREDICTION_BUCKETS } from '../serve/metrics.js';
import { ControlError, type ControlPlugin } from './context.js';

export function controllerJudgeRoutes(controller: Pick<ReleaseController, 'current'>): ControlPlugin {
  return async (api, { ctx }) => {
    await api.register(
      judgeRoutes(async () => {
        const release = controller.current();
        if (!release)
          throw new ControlError(404, 'no_release', 'there is no release to judge: start one with `npx bgserve deploy <bundle>`');
        const { spec } = release;
        let golden;
        try {
          golden = await loadGoldenSet(spec.bundle);
        } catch (err) {
          throw new ControlError(422, 'no_golden_set', `cannot judge release ${spec.id}: ${(err as Error).message}`);
        }
        return {
          stable: ctx.colors[spec.stableColor].url,
          candidate: ctx.colors[spec.targetColor].url,
          golden,
          buckets: PREDICTION_BUCKETS,
          goldenRmseMargin: spec.goldenRmseMargin,
        };
      }),
    );
  };
}
