/**
 * Rollback time on the real local stack (two `bgserve serve` processes, the embedded router or nginx, the release
 * controller with the direct-scrape provider), under a steady client load:
 *   - verdict: a canary of a version that answers errors; time from the engine's failing verdict (the tick's
 *     clock, before the window was even scraped) to the router having 100% on the stable color;
 *   - command: `rollback` during a canary step; time from the command to 100% on stable (the API call returns then).
 * Usage: node --import tsx bench/rollback.ts [runs=5] [embedded|nginx]
 */
import os from 'node:os';
import path from 'node:path';
import { isLive } from '../src/release/engine.js';
import { deriveBundle, GOOD_BUNDLE } from '../test/controller/bundles.js';
import { startController, startLoad, startStack, waitFor } from '../test/controller/stack.js';
import { median } from './stats.js';

const runs = Number(process.argv[2] ?? 5);
const routerKind = process.argv[3] === 'nginx' ? 'nginx' : 'embedded';

function summary(ms: number[]): string {
  return `n=${ms.length} p50=${median(ms).toFixed(1)}ms max=${Math.max(...ms).toFixed(1)}ms`;
}

const stack = await startStack({ '1.0.1-errors': { errorRate: 0.25 } }, routerKind);
const { controller } = startController(stack, { analysisEveryMs: 250 });
await controller.start();
const load = await startLoad(stack.router.url, 4, 10 * 60_000);
const verdict: number[] = [];
const command: number[] = [];
let clientFailuresAfterRollback = 0;
try {
  const bad = await deriveBundle(path.join(stack.dir, 'bundles'), { version: '1.0.1-errors' });
  for (let i = 0; i < runs; i++) {
    const started = await controller.deploy(bad, { strategy: 'canary', steps: [50], analysisMs: 5_000 });
    const done = await waitFor('rollback', () => {
      const s = controller.history(1)[0];
      return s.spec.id === started.spec.id && !isLive(s.status) ? s : undefined;
    });
    const t = controller.lastRollback;
    if (done.status !== 'rolled_back' || t?.releaseId !== done.spec.id) throw new Error(`run ${i}: ${done.status} ${done.reason}`);
    verdict.push(t.appliedAt - t.orderedAt);
    const failedBefore = load.failed;
    await new Promise((r) => setTimeout(r, 500));
    clientFailuresAfterRollback += load.failed - failedBefore;
  }
  for (let i = 0; i < runs; i++) {
    const started = await controller.deploy(GOOD_BUNDLE, { strategy: 'canary', steps: [50], analysisMs: 60_000 });
    await waitFor('canary step', () => {
      const s = controller.current();
      return s?.spec.id === started.spec.id && s.phase === 'step' ? s : undefined;
    });
    const t0 = performance.now();
    const { state } = await controller.command('rollback');
    command.push(performance.now() - t0);
    const w = stack.router.state().weights;
    if (state.status !== 'rolled_back' || w[state.spec.stableColor] !== 100)
      throw new Error(`command run ${i}: ${state.status} ${JSON.stringify(w)}`);
  }
} finally {
  await load.stop();
  await controller.close();
  await stack.close();
}
const [l1, l5] = os.loadavg();
console.log(`rollback bench (${routerKind} router, ${os.cpus().length} cpus, load avg ${l1.toFixed(2)} ${l5.toFixed(2)})`);
console.log(`  failing verdict -> 100% stable: ${summary(verdict)}`);
console.log(`  rollback command -> 100% stable: ${summary(command)}`);
console.log(
  `  client requests: ${load.sent} sent, ${load.failed} failed (the router replays the faulty version's 500s on the stable color), ${clientFailuresAfterRollback} failed after a rollback`,
);
