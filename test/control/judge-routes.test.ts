/**
 * The judge on the control API: after a release of 1.1.0 to green, /api/judge/* judge the released color
 * against the stable one on the bundle's golden rows, with the same codes as `bgserve judge` (real instances).
 */
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ReleaseController } from '../../src/controller/controller.js';
import { GOOD_BUNDLE } from '../controller/bundles.js';
import { type Stack, startControlPlane, startStack, waitFor } from '../controller/stack.js';
import { stopAll } from '../support/processes.js';

const TOKEN = 'control-token-for-judge-routes';
let stack: Stack;
let controller: ReleaseController;
let app: FastifyInstance;

beforeAll(async () => {
  stack = await startStack();
  ({ controller, app } = await startControlPlane(stack, TOKEN));
}, 60_000);

afterAll(async () => {
  await app?.close();
  await stack?.close();
  await stopAll();
});

const call = async (url: string, headers: Record<string, string> = { authorization: `Bearer ${TOKEN}` }) => {
  const res = await app.inject({ method: 'GET', url, headers });
  return { status: res.statusCode, body: res.json() };
};

describe('the judge on the control API', () => {
  it('answers 404 before any release, needs the token, then judges the released color against the stable one', async () => {
    expect(await call('/api/judge/golden')).toMatchObject({ status: 404, body: { error: 'no_release' } });
    expect((await call('/api/judge/golden', {})).status).toBe(401);

    // A canary step keeps both colors serving: 1.1.0 on green, 1.0.0 on blue.
    const started = await app.inject({
      method: 'POST',
      url: '/api/releases',
      headers: { authorization: `Bearer ${TOKEN}` },
      payload: { bundle: GOOD_BUNDLE, strategy: 'canary', steps: [20], analysisMs: 120_000 },
    });
    expect(started.statusCode).toBe(201);
    await waitFor('canary step', () => controller.current()?.phase === 'step', 30_000);

    const golden = await call('/api/judge/golden');
    expect(golden.status, JSON.stringify(golden.body)).toBe(200);
    expect(golden.body).toMatchObject({ verdict: 'pass', stable: { version: '1.0.0' }, candidate: { version: '1.1.0' } });
    const agreement = await call('/api/judge/agreement?report=true');
    expect(agreement.status).toBe(200);
    expect(agreement.body.verdict).toMatch(/^(pass|inconclusive)$/);
    expect(await call('/api/judge?check=nonsense')).toMatchObject({ status: 400, body: { error: 'bad_request' } });
    // Still healthy after the bad request.
    expect((await call('/api/judge/golden')).status).toBe(200);
  });
});
