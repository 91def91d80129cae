import { describe, expect, it } from 'vitest';
import { initialState } from '../../src/traffic/policy.js';
import { renderLiveFiles, renderNginxConfig, type NginxRenderOptions } from '../../src/traffic/nginx-config.js';
import { parseAccessLine } from '../../src/traffic/nginx-access-log.js';

const opts: NginxRenderOptions = {
  listen: { host: '127.0.0.1', port: 8080 },
  upstreams: { blue: { host: '127.0.0.1', port: 8001 }, green: { host: '127.0.0.1', port: 8002 } },
  paths: { pid: '/p/nginx.pid', errorLog: '/p/logs/error.log', accessLog: '/p/logs/access.log', tempDir: '/p/temp', liveDir: '/p/live' },
};

describe('nginx config rendering', () => {
  it('keeps the original upstream names, a backup for the other color and the retry on POST', () => {
    const text = renderNginxConfig(initialState(), opts);
    expect(text).toMatch(/upstream mlservice_blue \{\n\s+server 127.0.0.1:8001;\n\s+keepalive 64;/);
    expect(text).toMatch(
      /upstream bgserve_green_first \{\n\s+server 127.0.0.1:8002 max_fails=1 fail_timeout=2s;\n\s+server 127.0.0.1:8001 backup max_fails=1 fail_timeout=2s;/,
    );
    expect(text).not.toMatch(/weight=0/);
    expect(text).toContain('proxy_next_upstream error timeout http_502 http_503 http_504 non_idempotent;');
    expect(text).toContain('proxy_next_upstream_tries 2;');
    expect(text).toMatch(/map \$http_x_bgserve_color \$bgserve_preview \{\n\s+blue mlservice_blue;\n\s+green mlservice_green;/);
    expect(text).toContain('if (-f /p/live/current/green-$bgserve_bucket) {');
    expect(text).toContain('alias /p/live/current/generation;');
    expect(text).toContain('split_clients "${request_id}" $bgserve_bucket {');
    expect(text.match(/ 1% \d+;/g)).toHaveLength(2 * 99);
    expect(text).not.toMatch(/^user /m);
    expect(renderNginxConfig(initialState(), { ...opts, user: 'root' })).toMatch(/^user root;$/m);
  });

  it('replays a 500 on the other color through error_page, never for a preview request', () => {
    const text = renderNginxConfig(initialState(), opts);
    expect(text).toMatch(/map \$bgserve_upstream \$bgserve_replay_to \{\n\s+bgserve_blue_first mlservice_green;\n\s+bgserve_green_first mlservice_blue;/);
    const main = /location \/ \{\n([\s\S]*?)\n {4}\}/.exec(text)?.[1] ?? '';
    expect(main).toMatch(/error_page 418 = @bgserve_preview;\n\s+if \(\$bgserve_preview\) \{\n\s+return 418;/);
    expect(main).toContain('proxy_intercept_errors on;');
    expect(main).toMatch(/error_page 500 = @bgserve_replay;/);
    // Only the preview redirect (418, made by nginx itself) and the 500: an upstream 4xx or 502 passes through.
    expect(main.match(/error_page \d+/g)).toEqual(['error_page 418', 'error_page 500']);
    const named = (name: string) => new RegExp(`location @${name} \\{\\n([\\s\\S]*?)\\n {4}\\}`).exec(text)?.[1] ?? '';
    expect(named('bgserve_preview')).toContain('proxy_pass http://$bgserve_preview;');
    expect(named('bgserve_replay')).toContain('proxy_pass http://$bgserve_replay_to;');
    for (const name of ['bgserve_preview', 'bgserve_replay']) {
      expect(named(name)).not.toMatch(/proxy_intercept_errors|error_page/);
    }
  });

  it('splits by the sticky key (header or cookie) when set, by request id otherwise', () => {
    const sticky = renderNginxConfig({ sticky: { header: 'x-user' } }, opts);
    expect(sticky).toMatch(/map \$http_x_user \$bgserve_split_key \{\n\s+"" \$request_id;\n\s+default \$http_x_user;/);
    expect(sticky).toContain('split_clients "${bgserve_split_key}" $bgserve_bucket {');
    expect(renderNginxConfig({ sticky: { cookie: 'sid' } }, opts)).toContain('map $cookie_sid $bgserve_split_key');
  });

  it('writes the live files: the first N buckets green, the mirrored share per target', () => {
    const files = renderLiveFiles({ ...initialState(), generation: 7, weights: { blue: 90, green: 10 }, mirror: { target: 'green', percent: 20 } });
    expect(files.generation).toBe('7\n');
    expect(Object.keys(files).filter((f) => f.startsWith('green-')).sort()).toEqual(Array.from({ length: 10 }, (_, n) => `green-${n}`).sort());
    expect(Object.keys(files).filter((f) => f.startsWith('mirror-green-'))).toHaveLength(20);
    expect(Object.keys(renderLiveFiles(initialState()))).toEqual(['generation']);
  });

  it('reads access-log lines back, retries included', () => {
    expect(parseAccessLine('127.0.0.1:8001|200|200|0.004', opts.upstreams)).toEqual({
      attempts: [{ color: 'blue', seconds: 0.004 }],
      status: 200,
    });
    expect(parseAccessLine('127.0.0.1:8001, 127.0.0.1:8002|502, 200|200|0.000, 0.003', opts.upstreams)?.attempts.map((a) => a.color)).toEqual([
      'blue',
      'green',
    ]);
    // A 500 replayed through error_page: attempts across the internal redirect are joined by " : ".
    expect(parseAccessLine('127.0.0.1:8002 : 127.0.0.1:8001|500 : 200|200|0.002 : 0.003', opts.upstreams)).toEqual({
      attempts: [
        { color: 'green', seconds: 0.002 },
        { color: 'blue', seconds: 0.003 },
      ],
      status: 200,
    });
    expect(parseAccessLine('127.0.0.1:8001, 127.0.0.1:8002 : 127.0.0.1:8001|502, 500 : 200|200|0.000, 0.002 : 0.003', opts.upstreams)?.attempts.map((a) => a.color)).toEqual([
      'blue',
      'green',
      'blue',
    ]);
    expect(parseAccessLine('-|-|413|-', opts.upstreams)).toEqual({ attempts: [], status: 413 });
    expect(parseAccessLine('garbage', opts.upstreams)).toBeNull();
  });
});
