/**
 * nginx's mirrored copies reach the router's mirror counter: the mirror location logs the copies it sent (a
 * subrequest is not logged by default), in a line the request reader skips and the mirror reader counts.
 */
import { appendFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROUTER_METRICS } from '../../src/config/metric-names.js';
import { RouterMetrics } from '../../src/traffic/metrics.js';
import { AccessLogFollower, parseAccessLine, parseMirrorLine } from '../../src/traffic/nginx-access-log.js';
import { MIRROR_LOG_FORMAT, type NginxRenderOptions, renderNginxConfig } from '../../src/traffic/nginx-config.js';
import { initialState } from '../../src/traffic/policy.js';

const upstreams = { blue: [{ host: '127.0.0.1', port: 8001 }], green: [{ host: '127.0.0.1', port: 8002 }] };
const opts = (accessLog: string | null): NginxRenderOptions => ({
  listen: { host: '127.0.0.1', port: 8080 },
  upstreams,
  paths: { pid: '/p/nginx.pid', errorLog: '/p/logs/error.log', accessLog, tempDir: '/p/temp', liveDir: '/p/live' },
});

/** The block of the mirror location in a rendered configuration. */
const mirrorLocation = (text: string) =>
  text.slice(text.indexOf('location = /__bgserve_mirror'), text.indexOf('proxy_pass', text.indexOf('location = /__bgserve_mirror')));

describe('nginx mirror log', () => {
  it('logs only the copies sent, to the access log, when there is one', () => {
    const text = renderNginxConfig(initialState(), opts('/p/logs/access.log'));
    expect(text).toContain(`log_format bgserve_mirror '${MIRROR_LOG_FORMAT}';`);
    const location = mirrorLocation(text);
    expect(location).toContain('log_subrequest on;');
    expect(location).toMatch(/access_log \/p\/logs\/access\.log bgserve_mirror buffer=32k flush=1s if=\$bgserve_mirror_to;/);
    expect(mirrorLocation(renderNginxConfig(initialState(), opts(null)))).toContain('access_log off;');
  });

  it('reads a copy by color and outcome, and the request reader skips it', () => {
    expect(parseMirrorLine('mirror|mlservice_green|200')).toEqual({ color: 'green', outcome: 'ok' });
    expect(parseMirrorLine('mirror|mlservice_blue|422')).toEqual({ color: 'blue', outcome: 'ok' });
    expect(parseMirrorLine('mirror|mlservice_green|502')).toEqual({ color: 'green', outcome: 'error' });
    expect(parseMirrorLine('mirror||204')).toBeNull();
    expect(parseMirrorLine('127.0.0.1:8001|200|200|0.001')).toBeNull();
    expect(parseAccessLine('mirror|mlservice_green|200', upstreams)).toBeNull();
  });

  it('closes while a read is under way without throwing, after the lines it read are counted', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'bgserve-access-log-'));
    try {
      const file = path.join(dir, 'access.log');
      const metrics = new RouterMetrics();
      const follower = new AccessLogFollower(file, upstreams, metrics, 60_000);
      await follower.start();
      // Several MiB: the poll reads in 1 MiB pieces, so close() lands while one is under way (the read then
      // threw EBADF from a closed handle, an unhandled rejection that took the router process down).
      const lines = 200_000;
      await appendFile(file, 'mirror|mlservice_green|200\n'.repeat(lines));
      const polling = follower.poll();
      await follower.close();
      await expect(polling).resolves.toBeUndefined();
      const mirrored = (await metrics.registry.getSingleMetric(ROUTER_METRICS.mirrored)?.get())?.values ?? [];
      expect(mirrored.find((v) => v.labels.color === 'green' && v.labels.outcome === 'ok')?.value).toBe(lines);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
