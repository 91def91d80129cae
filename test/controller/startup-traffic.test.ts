/**
 * The traffic a router starts on after a restart (startupTraffic): what the controller's reconcile settles on
 * for the latest release, so the router never serves, even for a moment, a version the log says is not live.
 */
import { describe, expect, it } from 'vitest';
import { startupTraffic } from '../../src/controller/local.js';
import { createRelease } from '../../src/release/engine.js';
import { buildSpec } from '../../src/release/spec.js';
import type { ReleaseState } from '../../src/release/types.js';

const spec = buildSpec({
  id: 'r1',
  bundle: '/m/1.1.0',
  stableColor: 'blue',
  modelName: 'wine-quality',
  version: '1.1.0',
  sha256: 'ab'.repeat(32),
});
const base = createRelease(spec, 1_000).state;
const release = (patch: Partial<ReleaseState>): ReleaseState => ({ ...base, ...patch });

describe('startupTraffic', () => {
  it('has no say without a release (a new router starts all on blue, an adopted one keeps its split)', () => {
    expect(startupTraffic(undefined)).toBeUndefined();
  });

  it.each<[string, Partial<ReleaseState>, { blue: number; green: number }]>([
    ['a promoted release: all on its color', { status: 'succeeded', phase: 'done', targetWeight: 100 }, { blue: 0, green: 100 }],
    ['a rolled-back release: all on the stable color', { status: 'rolled_back', phase: 'done', targetWeight: 0 }, { blue: 100, green: 0 }],
    ['a refused release: all on the stable color', { status: 'failed', phase: 'done' }, { blue: 100, green: 0 }],
    [
      'a canary caught at 50%: rolled back by the reconcile, so the stable color',
      { status: 'running', phase: 'step', targetWeight: 50 },
      { blue: 100, green: 0 },
    ],
    ['a paused release: rolled back by the reconcile too', { status: 'paused', phase: 'step', targetWeight: 10 }, { blue: 100, green: 0 }],
  ])('%s', (_name, patch, weights) => {
    expect(startupTraffic(release(patch), 2_000)).toEqual({ weights, mirror: { target: null, percent: 0 } });
  });

  it('a shadow phase caught mid-way: its mirror is not restored (the reconcile turns it off)', () => {
    const shadow = release({ status: 'running', phase: 'shadow', mirror: { target: 'green', percent: 100 } });
    expect(startupTraffic(shadow, 2_000)?.mirror).toEqual({ target: null, percent: 0 });
  });

  it('follows a release from green back to blue the same way', () => {
    const back = {
      ...release({ status: 'succeeded', phase: 'done', targetWeight: 100 }),
      spec: { ...spec, stableColor: 'green' as const, targetColor: 'blue' as const },
    };
    expect(startupTraffic(back, 2_000)?.weights).toEqual({ blue: 100, green: 0 });
  });
});
