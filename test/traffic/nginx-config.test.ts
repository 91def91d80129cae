import { describe, expect, it } from 'vitest';
import { initialState } from '../../src/traffic/policy.js';
import { renderNginxConfig, type NginxRenderOptions } from '../../src/traffic/nginx-config.js';
import { parseAccessLine } from '../../src/traffic/nginx-access-log.js';

const opts: NginxRenderOptions = {
  listen: { host: '127.0.0.1', port: 8080 },
  upstreams: { blue: { host: '127.0.0.1', port: 8001 }, green: { host: '127.0.0.1', port: 8002 } },
  paths: { pid: '/p/nginx.pid', errorLog: '/p/logs/error.log', accessLog: '/p/logs/access.log', tempDir: '/p/temp' },
};

describe('nginx config rendering', () => {
  it('puts weights on the active upstream and a 0% color as backup, never weight=0', () => {
    const text = renderNginxConfig(initialState(), opts);
    expect(text).toContain('server 127.0.0.1:8001 weight=100 max_fails=1 fail_timeout=2s;');
    expect(text).toContain('server 127.0.0.1:8002 backup max_fails=1 fail_timeout=2s;');
    expect(text).not.toMatch(/weight=0/);
    expect(text).toContain('proxy_next_upstream error timeout http_502 http_503 non_idempotent;');
    expect(text).toContain('proxy_next_upstream_tries 2;');
    expect(text).toMatch(/upstream mlservice_blue \{\n\s+server 127.0.0.1:8001;\n\s+keepalive 64;/);
    expect(text).toMatch(/map \$http_x_bgserve_color \$bgserve_upstream \{\n\s+blue mlservice_blue;\n\s+green mlservice_green;\n\s+default bgserve_active;/);
    expect(text).toContain('return 200 "1\\n";');
    expect(text).not.toContain('mirror /__bgserve_mirror');
  });

  it('renders a split, a mirror share and sticky hashing (0% color down, since backup is refused with hash)', () => {
    const state = { ...initialState(), generation: 7 };
    const split = renderNginxConfig({ ...state, weights: { blue: 90, green: 10 } }, opts);
    expect(split).toContain('weight=90');
    expect(split).toContain('weight=10');

    const mirrored = renderNginxConfig({ ...state, mirror: { target: 'green', percent: 20 } }, opts);
    expect(mirrored).toMatch(/split_clients "\$\{request_id\}" \$bgserve_mirror \{\n\s+20% 1;/);
    expect(mirrored).toContain('mirror /__bgserve_mirror;');
    expect(mirrored).toContain('proxy_pass http://mlservice_green$request_uri;');

    const sticky = renderNginxConfig({ ...state, sticky: { header: 'x-user' } }, opts);
    expect(sticky).toContain('hash $bgserve_sticky_key consistent;');
    expect(sticky).toMatch(/map \$http_x_user \$bgserve_sticky_key/);
    expect(sticky).toContain('server 127.0.0.1:8002 down;');
    expect(renderNginxConfig({ ...state, sticky: { cookie: 'sid' } }, opts)).toContain('map $cookie_sid $bgserve_sticky_key');
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
    expect(parseAccessLine('-|-|413|-', opts.upstreams)).toEqual({ attempts: [], status: 413 });
    expect(parseAccessLine('garbage', opts.upstreams)).toBeNull();
  });
});
