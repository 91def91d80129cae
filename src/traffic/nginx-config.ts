/**
 * Renders the nginx configuration and the "live state" files it reads. Pure: the same input always gives the
 * same text and file list, so both are unit-tested without nginx and checked with `nginx -t` before use.
 *
 * Why live files: a reload makes nginx's old workers close their idle keep-alive client connections, and a
 * client that has just written a POST on one gets "connection closed" — a lost request on every switch. So
 * the traffic split and the mirror share are not in the configuration text: each request gets a bucket 0..99
 * (split_clients on the request id, or on the sticky key), and a worker checks `-f live/current/green-<bucket>`.
 * A change writes a new generation directory and swaps the `current` symlink atomically: in effect on the
 * next request, with no reload. Only structural changes (the sticky key, paths, ports) reload.
 *
 * Upstream names: mlservice_blue / mlservice_green (the original system's) reach one color (preview header,
 * mirror); bgserve_blue_first / bgserve_green_first hold both colors with the other one as `backup` (a 0%
 * color cannot be weight=0), so a failed prediction is replayed on the other color.
 *
 * A 500 is replayed apart from the other retry statuses: nginx counts every status named in proxy_next_upstream
 * as a failed attempt towards max_fails, so a color answering 500s would sit out fail_timeout after each one and a
 * faulty canary would get less than its share (its release verdict late). Like the embedded router, which ejects
 * on 502/503/504 and connection errors only, a 500 is intercepted instead (error_page -> @bgserve_replay) and sent
 * once to the other color's own upstream: the client gets no 500, the canary keeps its share. Preview requests
 * leave `location /` before any interception, so they show the named color's real answer, a 500 included.
 */
import { COLORS, otherColor, PREVIEW_HEADER, type Color } from '../config/defaults.js';
import { RETRY_STATUSES } from './policy.js';
import type { TrafficState, Upstream, Upstreams } from './types.js';

export const COLOR_UPSTREAM: Record<Color, string> = { blue: 'mlservice_blue', green: 'mlservice_green' };
export const PREFER_UPSTREAM: Record<Color, string> = { blue: 'bgserve_blue_first', green: 'bgserve_green_first' };
/** Answers the live generation, so a driver knows when a change is served. */
export const VERSION_PATH = '/__bgserve/version';
export const STATUS_PATH = '/nginx_status';
/** Access-log format the nginx driver reads back into router metrics. */
export const ACCESS_LOG_FORMAT = '$upstream_addr|$upstream_status|$status|$upstream_response_time';
/** Name of the symlink, inside the live directory, to the generation being served. */
export const LIVE_CURRENT = 'current';
/** Replayed through error_page on the other color rather than by proxy_next_upstream (see above). */
export const REPLAYED_STATUS = 500;
/** Statuses nginx itself retries on the backup server; these count towards max_fails. */
export const NEXT_UPSTREAM_STATUSES = RETRY_STATUSES.filter((code) => code !== REPLAYED_STATUS);

export interface NginxPaths {
  pid: string;
  errorLog: string;
  /** null: no access log (and no request metrics from nginx). */
  accessLog: string | null;
  /** Directory for nginx's body and proxy temp files. */
  tempDir: string;
  /** Directory holding the live-state generations and the `current` symlink; nginx workers must read it. */
  liveDir: string;
}

export interface NginxRenderOptions {
  listen: Upstream;
  upstreams: Upstreams;
  paths: NginxPaths;
  workerProcesses?: number | 'auto';
  /** `user` directive; only meaningful when nginx starts as root. */
  user?: string;
  /** Failed attempts within failTimeoutS that take a server out for failTimeoutS (passive health). */
  maxFails?: number;
  failTimeoutS?: number;
  keepaliveConnections?: number;
  clientMaxBodySize?: string;
}

/** How every location reaches an upstream held in `variable`. */
function proxyTo(variable: string, indent: string): string[] {
  return [
    `proxy_pass http://${variable};`,
    'proxy_http_version 1.1;',
    'proxy_set_header Connection "";',
    'proxy_set_header Host $host;',
    'proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;',
    'proxy_connect_timeout 1s;',
    'proxy_read_timeout 30s;',
  ].map((line) => indent + line);
}

function server(u: Upstream): string {
  return `${u.host}:${u.port}`;
}

/** `x-bgserve-color` -> `$http_x_bgserve_color`. */
export function headerVariable(header: string): string {
  return `$http_${header.toLowerCase().replace(/-/g, '_')}`;
}

function stickyVariable(state: Pick<TrafficState, 'sticky'>): string | null {
  if (!state.sticky) return null;
  return state.sticky.header !== undefined ? headerVariable(state.sticky.header) : `$cookie_${state.sticky.cookie}`;
}

/** 100 buckets of 1% each, in order: bucket n covers [n%, n+1%) of the hash space, so "n < weight" is monotone. */
function buckets(key: string, variable: string): string[] {
  const lines = [`  split_clients "${key}" ${variable} {`];
  for (let n = 0; n < 99; n++) lines.push(`    1% ${n};`);
  lines.push('    * 99;', '  }', '');
  return lines;
}

/**
 * Files of one live generation: `generation`, `green-<n>` for every bucket routed to green and
 * `mirror-<color>-<n>` for every mirrored bucket. Everything else goes to blue and is not mirrored.
 */
export function renderLiveFiles(state: TrafficState): Record<string, string> {
  const files: Record<string, string> = { generation: `${state.generation}\n` };
  for (let n = 0; n < state.weights.green; n++) files[`green-${n}`] = '';
  const { target, percent } = state.mirror;
  if (target) for (let n = 0; n < percent; n++) files[`mirror-${target}-${n}`] = '';
  return files;
}

/** The configuration depends on the sticky key only (and on the options); weights and mirror are live. */
export function renderNginxConfig(state: Pick<TrafficState, 'sticky'>, opts: NginxRenderOptions): string {
  const maxFails = opts.maxFails ?? 1;
  const failTimeout = `${opts.failTimeoutS ?? 2}s`;
  const keepalive = opts.keepaliveConnections ?? 64;
  const sticky = stickyVariable(state);
  const p = opts.paths;
  const live = `${p.liveDir}/${LIVE_CURRENT}`;

  const lines: string[] = [
    '# Generated by bgserve. Do not edit: the next change overwrites it.',
    `# Traffic split and mirror are live files under ${p.liveDir} (no reload on a switch).`,
    ...(opts.user ? [`user ${opts.user};`] : []),
    `worker_processes ${opts.workerProcesses ?? 'auto'};`,
    `pid ${p.pid};`,
    `error_log ${p.errorLog} warn;`,
    '',
    'events {',
    '  worker_connections 4096;',
    '}',
    '',
    'http {',
    `  log_format bgserve '${ACCESS_LOG_FORMAT}';`,
    `  access_log ${p.accessLog ? `${p.accessLog} bgserve buffer=32k flush=1s` : 'off'};`,
    `  client_body_temp_path ${p.tempDir}/client_body;`,
    `  proxy_temp_path ${p.tempDir}/proxy;`,
    `  fastcgi_temp_path ${p.tempDir}/fastcgi;`,
    `  uwsgi_temp_path ${p.tempDir}/uwsgi;`,
    `  scgi_temp_path ${p.tempDir}/scgi;`,
    `  client_max_body_size ${opts.clientMaxBodySize ?? '1m'};`,
    '  client_body_buffer_size 1m;',
    '  keepalive_timeout 65s;',
    '  keepalive_requests 100000;',
    '  server_tokens off;',
    '  # Live files must be seen on the next request: never cache their existence.',
    '  open_file_cache off;',
    '',
    '  # The preview header reaches one color directly, whatever the weights.',
    `  map ${headerVariable(PREVIEW_HEADER)} $bgserve_preview {`,
    `    blue ${COLOR_UPSTREAM.blue};`,
    `    green ${COLOR_UPSTREAM.green};`,
    '    default "";',
    '  }',
    '',
    '  # The color a replayed 500 goes to: the other one than the request was sent to.',
    '  map $bgserve_upstream $bgserve_replay_to {',
    ...COLORS.map((color) => `    ${PREFER_UPSTREAM[color]} ${COLOR_UPSTREAM[otherColor(color)]};`),
    '    default "";',
    '  }',
    '',
  ];
  if (sticky) {
    lines.push(
      '  # Sticky split: the bucket comes from the key, so a key keeps its color while weights move past',
      '  # other buckets; requests without a key are spread by request id.',
      `  map ${sticky} $bgserve_split_key {`,
      '    "" $request_id;',
      `    default ${sticky};`,
      '  }',
      '',
      ...buckets('${bgserve_split_key}', '$bgserve_bucket'),
    );
  } else {
    lines.push(...buckets('${request_id}', '$bgserve_bucket'));
  }
  // Salted, so the mirrored share is independent of the color split.
  lines.push(...buckets('${request_id}mirror', '$bgserve_mirror_bucket'));

  for (const color of COLORS) {
    lines.push(`  upstream ${COLOR_UPSTREAM[color]} {`, `    server ${server(opts.upstreams[color])};`, `    keepalive ${keepalive};`, '  }', '');
  }
  for (const color of COLORS) {
    const other = color === 'blue' ? 'green' : 'blue';
    lines.push(
      `  upstream ${PREFER_UPSTREAM[color]} {`,
      `    server ${server(opts.upstreams[color])} max_fails=${maxFails} fail_timeout=${failTimeout};`,
      `    server ${server(opts.upstreams[other])} backup max_fails=${maxFails} fail_timeout=${failTimeout};`,
      `    keepalive ${keepalive};`,
      '  }',
      '',
    );
  }

  lines.push(
    '  server {',
    `    listen ${server(opts.listen)};`,
    '',
    `    set $bgserve_upstream ${PREFER_UPSTREAM.blue};`,
    `    if (-f ${live}/green-$bgserve_bucket) {`,
    `      set $bgserve_upstream ${PREFER_UPSTREAM.green};`,
    '    }',
    '',
    `    location = ${VERSION_PATH} {`,
    '      access_log off;',
    '      default_type text/plain;',
    '      add_header Cache-Control no-store;',
    `      alias ${live}/generation;`,
    '    }',
    '',
    `    location = ${STATUS_PATH} {`,
    '      access_log off;',
    '      stub_status;',
    '      allow 127.0.0.1;',
    '      allow ::1;',
    '      deny all;',
    '    }',
    '',
    '    location / {',
    '      # A preview request leaves before any interception (418 never reaches a client).',
    '      error_page 418 = @bgserve_preview;',
    '      if ($bgserve_preview) {',
    '        return 418;',
    '      }',
    '      mirror /__bgserve_mirror;',
    '      mirror_request_body on;',
    ...proxyTo('$bgserve_upstream', '      '),
    '      # Predictions have no side effects: a POST that failed on one color is replayed once on the other.',
    `      proxy_next_upstream error timeout ${NEXT_UPSTREAM_STATUSES.map((code) => `http_${code}`).join(' ')} non_idempotent;`,
    '      proxy_next_upstream_tries 2;',
    `      # A ${REPLAYED_STATUS} is replayed without counting towards max_fails; other statuses pass through unchanged.`,
    '      proxy_intercept_errors on;',
    `      error_page ${REPLAYED_STATUS} = @bgserve_replay;`,
    '    }',
    '',
    '    location @bgserve_preview {',
    '      mirror /__bgserve_mirror;',
    '      mirror_request_body on;',
    ...proxyTo('$bgserve_preview', '      '),
    '    }',
    '',
    '    # Whatever the other color answers goes to the client (no interception here).',
    '    location @bgserve_replay {',
    ...proxyTo('$bgserve_replay_to', '      '),
    '    }',
    '',
    '    # Shadow copy: answered 204 inside nginx unless this request falls in the mirrored share.',
    '    location = /__bgserve_mirror {',
    '      internal;',
    '      access_log off;',
    '      set $bgserve_mirror_to "";',
    ...COLORS.flatMap((color) => [
      `      if (-f ${live}/mirror-${color}-$bgserve_mirror_bucket) {`,
      `        set $bgserve_mirror_to ${COLOR_UPSTREAM[color]};`,
      '      }',
    ]),
    '      if ($bgserve_mirror_to = "") {',
    '        return 204;',
    '      }',
    '      proxy_pass http://$bgserve_mirror_to$request_uri;',
    '      proxy_http_version 1.1;',
    '      proxy_set_header Connection "";',
    '      proxy_set_header Host $host;',
    '      proxy_set_header X-Bgserve-Mirror 1;',
    '      proxy_connect_timeout 200ms;',
    '      proxy_read_timeout 2s;',
    '    }',
    '  }',
    '}',
    '',
  );
  return lines.join('\n');
}
