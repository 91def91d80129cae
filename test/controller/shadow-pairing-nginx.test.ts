/**
 * With nginx as the router, a live request and its mirror subrequest reach the two colors with the same
 * x-request-id (nginx-config.ts sets it in the live and the mirror location): the controller's pairing forms
 * pairs from the instances' rings, as with the embedded router.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InstanceAdmin } from '../../src/controller/instance-admin.js';
import { PredictionFeed } from '../../src/controller/prediction-feed.js';
import { ShadowPairing } from '../../src/controller/shadow-pairs.js';
import { stopAll } from '../support/processes.js';
import { GOOD_BUNDLE } from './bundles.js';
import { startLoad, startStack, type Stack } from './stack.js';

let stack: Stack;

beforeAll(async () => {
  stack = await startStack({}, 'nginx');
}, 90_000);

afterAll(async () => {
  await stack?.close();
  await stopAll();
});

describe('paired shadow comparison through nginx', () => {
  it('pairs the stable answers with the mirrored ones by the request id nginx gives both', async () => {
    const loaded = await new InstanceAdmin({ instances: stack.instances, token: stack.token }).load('green', GOOD_BUNDLE);
    expect(loaded.ok).toBe(true);
    await stack.router.setMirror({ target: 'green', percent: 100 });
    const pairing = new ShadowPairing({ feed: new PredictionFeed({ urls: (c) => [stack.instances[c]], token: stack.token }) });
    await pairing.open({ stable: 'blue', target: 'green' });
    const load = await startLoad(stack.router.url, 2, 2_000);
    // Read as the controller does, every half second, so that no ring wraps before it is read.
    for (let i = 0; i < 4; i++) {
      await new Promise((r) => setTimeout(r, 500));
      await pairing.summary();
    }
    await load.stop();
    await new Promise((r) => setTimeout(r, 300));
    const s = await pairing.summary();
    expect(s.missed).toBe(0);
    expect(load.failed, load.failures.join('\n')).toBe(0);
    expect(load.byColor).toEqual({ blue: load.sent });
    expect(s.pairs).toBeGreaterThanOrEqual(100);
    // nginx mirrors every request here: nearly every live answer finds its mirrored twin.
    expect(s.pairs, JSON.stringify({ sent: load.sent, unpaired: s.unpaired })).toBeGreaterThan(0.9 * load.sent);
    expect(s.duplicates).toBe(0);
    expect(s.agreement).toBeGreaterThan(0.95);
  });
});
