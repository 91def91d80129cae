import { describe, expect, it } from 'vitest';
import { initialState } from '../../src/traffic/policy.js';
import { DOCKER_DNS, renderLiveFiles, renderNginxConfig, resolverFor, type NginxRenderOptions } from '../../src/traffic/nginx-config.js';
import { parseAccessLine } from '../../src/traffic/nginx-access-log.js';

const opts: NginxRenderOptions = {
  listen: { host: '127.0.0.1', port: 8080 },
  upstreams: { blue: [{ host: '127.0.0.1', port: 8001 }], green: [{ host: '127.0.0.1', port: 8002 }] },
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
    expect(text).toContain('if (-f /p/live/current/green-$bgserve_bucket) {');
    expect(text).toContain('alias /p/live/current/generation;');
    expect(text).toContain('split_clients "${request_id}" $bgserve_bucket {');
    expect(text.match(/ 1% \d+;/g)).toHaveLength(2 * 99);
    expect(text).not.toMatch(/^user /m);
    expect(renderNginxConfig(initialState(), { ...opts, user: 'root' })).toMatch(/^user root;$/m);
  });

  it("renders each color's replicas into its blocks, the other color's as backup, and an empty pool as a down server", () => {
    const at = (...ports: number[]) => ports.map((port) => ({ host: '127.0.0.1', port }));
    const text = renderNginxConfig(initialState(), { ...opts, upstreams: { blue: at(8001, 8003, 8005), green: at(8002) } });
    expect(text).toMatch(
      /upstream mlservice_blue \{\n\s+least_conn;\n\s+server 127.0.0.1:8001;\n\s+server 127.0.0.1:8003;\n\s+server 127.0.0.1:8005;\n\s+keepalive 64;/,
    );
    expect(text).toMatch(/upstream mlservice_green \{\n\s+server 127.0.0.1:8002;\n\s+keepalive 64;/);
    expect(text).toMatch(
      /upstream bgserve_green_first \{\n\s+server 127.0.0.1:8002 max_fails=1 fail_timeout=2s;\n(\s+server 127.0.0.1:800[135] backup max_fails=1 fail_timeout=2s;\n){3}/,
    );
    // One attempt, another replica of the color, then the other color.
    expect(text).toContain('proxy_next_upstream_tries 3;');
    const empty = renderNginxConfig(initialState(), { ...opts, upstreams: { blue: [], green: at(8002) } });
    expect(empty).toMatch(/upstream mlservice_blue \{\n\s+server 127.0.0.1:1 down;/);
    expect(empty).toMatch(/upstream bgserve_blue_first \{\n\s+server 127.0.0.1:1 down;\n\s+server 127.0.0.1:8002 backup/);
    // With a resolver a color is one name (its DNS records are its replicas).
    expect(() =>
      renderNginxConfig(initialState(), { ...opts, resolver: DOCKER_DNS, upstreams: { blue: at(8001, 8003), green: at(8002) } }),
    ).toThrow(/one host:port per color/);
    expect(
      parseAccessLine('127.0.0.1:8003, 127.0.0.1:8005|502, 200|200|0.000, 0.003', {
        blue: at(8001, 8003, 8005),
        green: at(8002),
      })?.attempts.map((a) => a.color),
    ).toEqual(['blue', 'blue']);
  });

  it('replays a 500 on the other color through error_page, never for a preview request', () => {
    const text = renderNginxConfig(initialState(), opts);
    expect(text).toMatch(
      /map \$bgserve_upstream \$bgserve_replay_to \{\n\s+bgserve_blue_first mlservice_green;\n\s+bgserve_green_first mlservice_blue;/,
    );
    const main = /location \/ \{\n([\s\S]*?)\n {4}\}/.exec(text)?.[1] ?? '';
    // location / only dispatches: nothing proxied there, so its 413 is nginx's own body limit, never an instance's.
    expect(main).not.toMatch(/proxy_pass|proxy_intercept_errors/);
    expect(main).toMatch(
      /error_page 418 = @bgserve_preview;\n\s+error_page 419 = @bgserve_live;\n\s+if \(\$bgserve_preview\) \{\n\s+return 418;\n\s+\}\n\s+return 419;/,
    );
    expect(main.match(/error_page \d+/g)).toEqual(['error_page 413', 'error_page 418', 'error_page 419']);
    const named = (name: string) => new RegExp(`location @${name} \\{\\n([\\s\\S]*?)\\n {4}\\}`).exec(text)?.[1] ?? '';
    const live = named('bgserve_live');
    expect(live).toContain('proxy_pass http://$bgserve_upstream;');
    expect(live).toContain('proxy_intercept_errors on;');
    expect(live).toMatch(/error_page 500 = @bgserve_replay;/);
    // The 500 replay, and 502/504 (instances never send them: both colors failed) as JSON: an upstream 4xx
    // (a 413 batch_too_large included) or 503 passes through unchanged.
    expect(live.match(/error_page \d+/g)).toEqual(['error_page 500', 'error_page 502', 'error_page 504']);
    expect(named('bgserve_preview')).toContain('proxy_pass http://$bgserve_preview;');
    expect(named('bgserve_replay')).toContain('proxy_pass http://$bgserve_replay_to;');
    for (const name of ['bgserve_preview', 'bgserve_replay']) {
      // The named color's answers pass through: only nginx's own 502/504 (no interception) become JSON.
      expect(named(name)).not.toMatch(/proxy_intercept_errors/);
      expect(named(name).match(/error_page \d+/g)).toEqual(['error_page 502', 'error_page 504']);
    }
    // Preview requests are not mirrored (only live traffic is shadowed).
    expect(named('bgserve_preview')).not.toContain('mirror');
  });

  it('honours the preview header only with the exact token, and has no preview without one', () => {
    const token = 'AbCdEfGhIjKlMnOpQrStUv_-0123456789';
    const text = renderNginxConfig(initialState(), { ...opts, previewToken: token });
    // A regex (case-sensitive), not a plain map string (compared ignoring case).
    expect(text).toMatch(
      new RegExp(`map \\$http_x_bgserve_preview_token \\$bgserve_preview_token_ok \\{\\n\\s+"~\\^${token}\\$" 1;\\n\\s+default 0;`),
    );
    expect(text).toMatch(
      /map "\$http_x_bgserve_color:\$bgserve_preview_token_ok" \$bgserve_preview \{\n\s+"~\^blue:1\$" mlservice_blue;\n\s+"~\^green:1\$" mlservice_green;/,
    );
    expect(text).toMatch(/if \(\$bgserve_preview_refused = forbidden\) \{\n\s+return 403 '\{"error":"preview_forbidden"/);
    const off = renderNginxConfig(initialState(), opts);
    expect(off).toMatch(
      /map \$http_x_bgserve_preview_token \$bgserve_preview_token_ok \{\n\s+# No preview token configured: preview is off.\n\s+default 0;/,
    );
    expect(() => renderNginxConfig(initialState(), { ...opts, previewToken: 'short' })).toThrow(/preview token/);
    expect(() => renderNginxConfig(initialState(), { ...opts, previewToken: 'has "quotes" and; semicolons here' })).toThrow(
      /preview token/,
    );
  });

  it('labels what it forwards by source and never forwards the token', () => {
    const text = renderNginxConfig(initialState(), { ...opts, previewToken: 'x'.repeat(32) });
    const location = (name: string) => new RegExp(`location ${name} \\{\\n([\\s\\S]*?)\\n {4}\\}`).exec(text)?.[1] ?? '';
    expect(location('@bgserve_live')).toContain('proxy_set_header X-Bgserve-Source "";');
    expect(location('@bgserve_replay')).toContain('proxy_set_header X-Bgserve-Source "";');
    expect(location('@bgserve_preview')).toContain('proxy_set_header X-Bgserve-Source preview;');
    expect(location('= /__bgserve_mirror')).toContain('proxy_set_header X-Bgserve-Source mirror;');
    for (const name of ['@bgserve_live', '@bgserve_replay', '@bgserve_preview', '= /__bgserve_mirror']) {
      expect(location(name)).toContain('proxy_set_header X-Bgserve-Preview-Token "";');
    }
    expect(text).not.toContain('X-Bgserve-Mirror');
  });

  it('answers its own errors with the JSON shape, naming colors but no address', () => {
    const text = renderNginxConfig(initialState(), opts);
    expect(text).toContain('large_client_header_buffers 1 16k;');
    expect(text).toContain('error_page 494 =431 /__bgserve/error/494;');
    const returns = [...text.matchAll(/location = \/__bgserve\/error\/(\S+) \{\n\s+internal;\n\s+return (\d+) '(.*)';/g)].map((m) => ({
      at: m[1],
      status: Number(m[2]),
      body: JSON.parse(m[3]) as { error: string; message: string },
    }));
    expect(returns.map((r) => `${r.at} ${r.status} ${r.body.error}`)).toEqual([
      '400 400 bad_request',
      '494 431 headers_too_large',
      '414 431 headers_too_large',
      '413 413 payload_too_large',
      '502-either 502 bad_gateway',
      '504-either 504 gateway_timeout',
      '502-mlservice_blue 502 bad_gateway',
      '504-mlservice_blue 504 gateway_timeout',
      '502-mlservice_green 502 bad_gateway',
      '504-mlservice_green 504 gateway_timeout',
    ]);
    expect(returns.find((r) => r.at === '502-mlservice_green')?.body.message).toBe('no answer from green');
    for (const r of returns) expect(r.body.message).not.toMatch(/127\.0\.0\.1|800\d/);
  });

  it('splits by the sticky key (header or cookie) when set, by request id otherwise', () => {
    const sticky = renderNginxConfig({ sticky: { header: 'x-user' } }, opts);
    expect(sticky).toMatch(/map \$http_x_user \$bgserve_split_key \{\n\s+"" \$request_id;\n\s+default \$http_x_user;/);
    expect(sticky).toContain('split_clients "${bgserve_split_key}" $bgserve_bucket {');
    expect(renderNginxConfig({ sticky: { cookie: 'sid' } }, opts)).toContain('map $cookie_sid $bgserve_split_key');
  });

  it('writes the live files: the first N buckets green, the mirrored share per target', () => {
    const files = renderLiveFiles({
      ...initialState(),
      generation: 7,
      weights: { blue: 90, green: 10 },
      mirror: { target: 'green', percent: 20 },
    });
    expect(files.generation).toBe('7\n');
    expect(
      Object.keys(files)
        .filter((f) => f.startsWith('green-'))
        .sort(),
    ).toEqual(Array.from({ length: 10 }, (_, n) => `green-${n}`).sort());
    expect(Object.keys(files).filter((f) => f.startsWith('mirror-green-'))).toHaveLength(20);
    expect(Object.keys(renderLiveFiles(initialState()))).toEqual(['generation']);
  });

  it('with a resolver, proxies to host:port variables looked up on requests and replays every failure by error_page', () => {
    const named: NginxRenderOptions = {
      ...opts,
      upstreams: { blue: [{ host: 'mlservice_blue', port: 8000 }], green: [{ host: 'mlservice_green', port: 8000 }] },
      resolver: DOCKER_DNS,
    };
    const text = renderNginxConfig(initialState(), named);
    expect(text).toContain('resolver 127.0.0.11 valid=1s ipv6=off;');
    expect(text).toContain('resolver_timeout 1s;');
    // An upstream block's server would be resolved once, at load: none at all.
    expect(text).not.toMatch(/^\s*upstream /m);
    expect(text).not.toMatch(/max_fails|backup|keepalive \d/);
    expect(text).toMatch(
      /map \$bgserve_upstream \$bgserve_upstream_addr \{\n\s+bgserve_blue_first mlservice_blue:8000;\n\s+bgserve_green_first mlservice_green:8000;/,
    );
    const location = (name: string) => new RegExp(`location ${name} \\{\\n([\\s\\S]*?)\\n {4}\\}`).exec(text)?.[1] ?? '';
    const live = location('@bgserve_live');
    expect(live).toContain('proxy_pass http://$bgserve_upstream_addr;');
    // One attempt, then the other color: connection errors and lookups (502), timeouts (504), and the answers
    // the backup form retries.
    expect(live).toContain('proxy_next_upstream off;');
    expect(live).toContain('proxy_intercept_errors on;');
    expect(live.match(/error_page [^;]+;/g)).toEqual(['error_page 500 502 503 504 = @bgserve_replay;']);
    expect(location('@bgserve_preview')).toContain('proxy_pass http://$bgserve_preview_addr;');
    expect(location('@bgserve_replay')).toContain('proxy_pass http://$bgserve_replay_to_addr;');
    expect(location('= /__bgserve_mirror')).toContain('proxy_pass http://$bgserve_mirror_to_addr$request_uri;');
    // A connection per request, closed by the instance first (TIME_WAIT on its side, not on nginx's ports).
    for (const name of ['@bgserve_live', '@bgserve_preview', '@bgserve_replay', '= /__bgserve_mirror']) {
      expect(location(name)).toContain('proxy_set_header Connection close;');
    }
    for (const name of ['@bgserve_preview', '@bgserve_replay']) {
      expect(location(name)).not.toMatch(/proxy_intercept_errors/);
      expect(location(name).match(/error_page \d+/g)).toEqual(['error_page 502', 'error_page 504']);
    }
    // The access log names host:port as the parser expects, not the address looked up.
    expect(text).toContain("log_format bgserve '$bgserve_log_addr|$upstream_status|$status|$upstream_response_time';");
    expect(
      parseAccessLine('mlservice_green:8000 : mlservice_blue:8000|502 : 200|200|0.001 : 0.002', named.upstreams)?.attempts.map(
        (a) => a.color,
      ),
    ).toEqual(['green', 'blue']);
    // Without a resolver, nothing of it.
    const plain = renderNginxConfig(initialState(), opts);
    expect(plain).not.toMatch(/resolver|\$bgserve_\w+_addr|Connection close/);
    expect(() => renderNginxConfig(initialState(), { ...named, resolver: '1.2.3.4; evil' })).toThrow(/resolver/);
  });

  it('picks a resolver for host names only (Docker\'s unless told), none for IP literals or "off"', () => {
    const names = { blue: [{ host: 'mlservice_blue', port: 8000 }], green: [{ host: 'mlservice_green', port: 8000 }] };
    expect(resolverFor(names)).toBe(DOCKER_DNS);
    expect(resolverFor(names, '10.0.0.2:53')).toBe('10.0.0.2:53');
    expect(resolverFor(names, 'off')).toBeUndefined();
    expect(resolverFor(opts.upstreams)).toBeUndefined();
    expect(resolverFor({ ...opts.upstreams, green: [{ host: '::1', port: 8002 }] })).toBeUndefined();
    expect(() => resolverFor(names, 'x y')).toThrow(/resolver/);
  });

  it('reads access-log lines back, retries included', () => {
    expect(parseAccessLine('127.0.0.1:8001|200|200|0.004', opts.upstreams)).toEqual({
      attempts: [{ color: 'blue', seconds: 0.004 }],
      status: 200,
    });
    expect(
      parseAccessLine('127.0.0.1:8001, 127.0.0.1:8002|502, 200|200|0.000, 0.003', opts.upstreams)?.attempts.map((a) => a.color),
    ).toEqual(['blue', 'green']);
    // A 500 replayed through error_page: attempts across the internal redirect are joined by " : ".
    expect(parseAccessLine('127.0.0.1:8002 : 127.0.0.1:8001|500 : 200|200|0.002 : 0.003', opts.upstreams)).toEqual({
      attempts: [
        { color: 'green', seconds: 0.002 },
        { color: 'blue', seconds: 0.003 },
      ],
      status: 200,
    });
    expect(
      parseAccessLine(
        '127.0.0.1:8001, 127.0.0.1:8002 : 127.0.0.1:8001|502, 500 : 200|200|0.000, 0.002 : 0.003',
        opts.upstreams,
      )?.attempts.map((a) => a.color),
    ).toEqual(['blue', 'green', 'blue']);
    expect(parseAccessLine('-|-|413|-', opts.upstreams)).toEqual({ attempts: [], status: 413 });
    expect(parseAccessLine('garbage', opts.upstreams)).toBeNull();
  });
});
