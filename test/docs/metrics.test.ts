/**
 * The metrics reference (docs/monitoring.md) against a running `up`, once per router (embedded, nginx): every
 * name it lists is declared in src/config/metric-names.ts or exported on an instance's or the control API's
 * /metrics (a `*` name by its prefix), everything exported there is in the reference, and every router name
 * has samples on the control API's /metrics once traffic went through the router with mirroring on (mirrored
 * copies counted too). The same stack checks one API example from docs/traffic.md: `PUT /api/mirror
 * {"target": null}` turns mirroring off.
 */
import { readFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { request } from 'undici';
import { afterAll, describe, expect, it } from 'vitest';
import { ROUTER_METRICS } from '../../src/config/metric-names.js';
import { WINE_EXAMPLE } from '../../src/model/wine.js';
import { ROOT, stopAll, stopProcess } from '../support/processes.js';
import { sample } from '../serve/helpers.js';
import { startUp } from '../cli/local-up.js';
import { readDocs, referencedMetrics } from './doc-sources.js';

afterAll(stopAll);

async function text(url: string): Promise<string> {
  const res = await request(url);
  expect(res.statusCode).toBe(200);
  return res.body.text();
}

/** Family names from `# TYPE` lines. */
function families(exposition: string): string[] {
  return [...exposition.matchAll(/^# TYPE (\S+)/gm)].map((m) => m[1]);
}

/** Router families without a single sample (a histogram by its _count). */
function unsampled(exposition: string): string[] {
  return Object.values(ROUTER_METRICS).filter((name) => !new RegExp(`^${name}(_count)?[{ ]`, 'm').test(exposition));
}

describe.each(['embedded', 'nginx'] as const)('docs/monitoring.md against a running stack, %s router', (router) => {
  it('lists only metrics bgserve declares or exports, all of them; the router counts what it mirrored', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), `bgserve-docs-metrics-${router}-`));
    try {
      const up = await startUp(dir, router === 'nginx' ? ['--router', 'nginx'] : []);
      const token = (await readFile(path.join(dir, 'token'), 'utf8')).trim();
      const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
      const statusRes = await request(`${up.controlUrl}/api/status`, { headers: auth });
      const colors = ((await statusRes.body.json()) as { colors: Record<string, { url: string }> }).colors;

      // Live traffic with every request mirrored to green: each router family gets samples.
      const on = await request(`${up.controlUrl}/api/mirror`, {
        method: 'PUT',
        headers: auth,
        body: JSON.stringify({ target: 'green', percent: 100 }),
      });
      expect(await on.body.json()).toMatchObject({ mirror: { target: 'green', percent: 100 } });
      const sent = 10;
      for (let i = 0; i < sent; i++) {
        const res = await request(`${up.routerUrl}/predict`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(WINE_EXAMPLE),
        });
        expect(res.statusCode).toBe(200);
        await res.body.dump();
      }
      // nginx's access log is flushed every second and read every second.
      let control = '';
      const deadline = Date.now() + 10_000;
      do {
        await new Promise((r) => setTimeout(r, 250));
        control = await text(`${up.controlUrl}/metrics`);
      } while ((sample(control, ROUTER_METRICS.mirrored, { color: 'green', outcome: 'ok' }) ?? 0) < sent && Date.now() < deadline);
      expect(unsampled(control)).toEqual([]);
      expect(sample(control, ROUTER_METRICS.mirrored, { color: 'green', outcome: 'ok' })).toBe(sent);
      expect(sample(control, ROUTER_METRICS.requests, { color: 'blue', code: '200' })).toBe(sent);

      const exported = [...families(await text(`${colors.blue.url}/metrics`)), ...families(control)];
      const declared = await readFile(path.join(ROOT, 'src/config/metric-names.ts'), 'utf8');
      const reference = readDocs().flatMap(referencedMetrics);
      expect(reference.length).toBeGreaterThan(15);
      const missing = reference.filter((name) =>
        name.endsWith('*')
          ? !exported.some((f) => f.startsWith(name.slice(0, -1)))
          : !declared.includes(`'${name}'`) && !exported.includes(name),
      );
      expect(missing).toEqual([]);
      // And the other way: nothing exported goes undocumented (the control API's own process metrics were).
      const covered = (f: string) => reference.some((name) => (name.endsWith('*') ? f.startsWith(name.slice(0, -1)) : f === name));
      expect([...new Set(exported)].filter((f) => !covered(f))).toEqual([]);
      expect(Object.values(ROUTER_METRICS).filter((name) => !exported.includes(name))).toEqual([]);

      const off = await request(`${up.controlUrl}/api/mirror`, { method: 'PUT', headers: auth, body: JSON.stringify({ target: null }) });
      expect(off.statusCode).toBe(200);
      expect(await off.body.json()).toMatchObject({ mirror: { target: null, percent: 0 } });
      const colorOnly = await request(`${up.controlUrl}/api/mirror`, {
        method: 'PUT',
        headers: auth,
        body: JSON.stringify({ target: 'green' }),
      });
      // A color still needs its percent: the traffic API's invalid-input answer.
      expect(colorOnly.statusCode).toBe(422);
      expect(await colorOnly.body.json()).toMatchObject({ error: expect.any(String), message: expect.any(String) });
      await stopProcess(up.proc);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
