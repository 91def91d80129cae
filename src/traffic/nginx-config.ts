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
 * Upstream names: mlservice_blue / mlservice_green (the original system's) reach one color's replicas (preview
 * header, mirror); bgserve_blue_first / bgserve_green_first hold the color's replicas with the other color's as
 * `backup` (a 0% color cannot be weight=0): nginx balances over the replicas (least_conn), a failed prediction
 * goes to another replica of the same color first (nginx tries every primary before a backup), then to the
 * other color.
 *
 * A 500 is replayed apart from the other retry statuses: nginx counts every status named in proxy_next_upstream
 * as a failed attempt towards max_fails, so a color answering 500s would sit out fail_timeout after each one and a
 * faulty canary would get less than its share (its release verdict late). Like the embedded router, which ejects
 * on 502/503/504 and connection errors only, a 500 is intercepted instead (error_page -> @bgserve_replay) and sent
 * once to the other color's own upstream: the client gets no 500, the canary keeps its share. `location /` only
 * dispatches (to @bgserve_live or @bgserve_preview); preview requests never meet an interception, so they show
 * the named color's real answer, a 500 included.
 *
 * Upstream names re-resolved at run time (`resolver` set; compose, where a recreated container comes back with a
 * new address): nginx before 1.27.3 resolves the host of an upstream block's server once, at load, and only a reload
 * would follow the new address — which closes idle keep-alive client connections, like any reload. So with a
 * resolver there are no upstream blocks: locations proxy to a `host:port` variable, which nginx looks up through the
 * resolver (cached RESOLVE_VALID_S). That costs upstream keep-alive (a connection per request) and passive health
 * (no max_fails memory): every failure of the first color — connection refused, NXDOMAIN for a stopped container,
 * timeout, 502/503/504, 500 — is replayed once on the other color through error_page -> @bgserve_replay, as the
 * 500 alone is in the upstream-block form. A stopped container's name answers NXDOMAIN and a freed address refuses
 * at once, so a dead color costs a lookup, not a timeout. Without a resolver (IP literals: `bgserve up`), the
 * upstream blocks below, unchanged.
 *
 * The preview route is private: a map over the preview header and the preview token (rendered into this file,
 * which the driver writes readable by its owner only) picks the color; a preview header without the token is
 * answered 403 and never forwarded. Without a token, preview is off. Every proxied request has SOURCE_HEADER
 * set here (preview, mirror, or removed for live traffic) and the token removed.
 *
 * nginx's own errors (413, 502, 504, headers too large) are the same JSON as the embedded router's
 * (public-errors.ts): error_page to internal locations that `return` it. Upstream answers are intercepted only
 * in @bgserve_live, for 500 (replay) and 502/504 (which instances never send); the other named locations leave
 * upstream answers alone (proxy_intercept_errors off) and turn only nginx's own 502/504 into JSON. The body
 * limit is checked in `location /`, which proxies nothing, so its 413 is always nginx's own.
 */
import { isIP } from 'node:net';
import {
  COLORS,
  otherColor,
  PREVIEW_HEADER,
  PREVIEW_TOKEN_HEADER,
  REQUEST_ID_HEADER,
  SOURCE_HEADER,
  type Color,
  type TrafficSource,
} from '../config/defaults.js';
import { RETRY_STATUSES } from './policy.js';
import {
  BAD_REQUEST,
  badGateway,
  errorJson,
  gatewayTimeout,
  HEADERS_TOO_LARGE,
  MAX_HEADER_BYTES,
  PAYLOAD_TOO_LARGE,
  PREVIEW_FORBIDDEN,
  PREVIEW_INVALID,
  type PublicError,
} from './public-errors.js';
import type { TrafficState, Upstream, Upstreams } from './types.js';

export const COLOR_UPSTREAM: Record<Color, string> = { blue: 'mlservice_blue', green: 'mlservice_green' };
export const PREFER_UPSTREAM: Record<Color, string> = { blue: 'bgserve_blue_first', green: 'bgserve_green_first' };
/** Answers the live generation, so a driver knows when a change is served. */
export const VERSION_PATH = '/__bgserve/version';
export const STATUS_PATH = '/nginx_status';
/** Access-log format the nginx driver reads back into router metrics. */
export const ACCESS_LOG_FORMAT = '$upstream_addr|$upstream_status|$status|$upstream_response_time';
/** Access-log format of the mirrored copies nginx sent (three fields: the request reader skips them). */
export const MIRROR_LOG_FORMAT = 'mirror|$bgserve_mirror_to|$status';
/** Name of the symlink, inside the live directory, to the generation being served. */
export const LIVE_CURRENT = 'current';
/** Replayed through error_page on the other color rather than by proxy_next_upstream (see above). */
export const REPLAYED_STATUS = 500;
/** What `location /` returns to itself to enter the preview or the live named location (never sent). */
export const PREVIEW_STATUS = 418;
export const LIVE_STATUS = 419;
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
  /** The preview route's credential; absent: preview is off. Printable ASCII without quotes or spaces. */
  previewToken?: string;
  /**
   * DNS server nginx re-resolves the upstream hosts with on requests (`addr` or `addr:port`, e.g. DOCKER_DNS):
   * no upstream blocks, no reload when a container comes back with a new address (see above). Absent: upstream
   * blocks, their hosts resolved once at load.
   */
  resolver?: string;
}

/** Docker's embedded DNS, as every container on a user-defined network (compose's) sees it. */
export const DOCKER_DNS = '127.0.0.11';
/**
 * How long nginx keeps a looked-up address (and an NXDOMAIN), in its whole-second clock: a recreated container is
 * followed within RESOLVE_VALID_S to RESOLVE_VALID_S + 1 seconds.
 */
export const RESOLVE_VALID_S = 1;

/** Where nginx's own errors are answered (internal locations). */
export const ERROR_PREFIX = '/__bgserve/error/';
/** Error location suffix for a request that any color could have answered (location /). */
const EITHER = 'either';

/** nginx string literal of a JSON error body (single-quoted: JSON has no single quotes or `$` here). */
function jsonLiteral(e: PublicError): string {
  const text = errorJson(e);
  if (/['$\\]/.test(text)) throw new Error(`error body cannot be rendered into nginx: ${text}`);
  return `'${text}'`;
}

/** A token goes into a quoted case-sensitive regex: only characters that need no escaping in either. */
function checkedToken(token: string): string {
  if (!/^[A-Za-z0-9_-]{16,256}$/.test(token)) {
    throw new Error('the preview token must be 16-256 characters of A-Z, a-z, 0-9, "_" or "-" (base64url)');
  }
  return token;
}

/** The nginx header name of a lowercase header constant: x-bgserve-source -> X-Bgserve-Source. */
function headerName(header: string): string {
  return header.replace(/(^|-)([a-z])/g, (_m, dash: string, c: string) => dash + c.toUpperCase());
}

/**
 * How every location reaches an upstream held in `variable`. A client's SOURCE_HEADER is replaced (an empty
 * value removes the header: live traffic) and the preview token never leaves nginx.
 */
function proxyTo(variable: string, indent: string, source: TrafficSource, dynamic: boolean): string[] {
  return [
    `proxy_pass http://${variable};`,
    'proxy_http_version 1.1;',
    upstreamConnection(dynamic),
    'proxy_set_header Host $host;',
    'proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;',
    `proxy_set_header ${headerName(REQUEST_ID_HEADER)} $bgserve_request_id;`,
    `proxy_set_header ${headerName(SOURCE_HEADER)} ${source === 'live' ? '""' : source};`,
    `proxy_set_header ${headerName(PREVIEW_TOKEN_HEADER)} "";`,
    'proxy_connect_timeout 1s;',
    'proxy_read_timeout 30s;',
  ].map((line) => indent + line);
}

/**
 * Upstream blocks keep connections alive (an empty Connection header). A host:port variable gets a connection per
 * request, and `close` asks the instance to close it first: TIME_WAIT then stays on the instance's side, not on
 * nginx's, whose ephemeral ports to one instance (about 28,000, each held 60 s) would run out above about 470 new
 * connections a second outside loopback.
 */
function upstreamConnection(dynamic: boolean): string {
  return dynamic ? 'proxy_set_header Connection close;' : 'proxy_set_header Connection "";';
}

function server(u: Upstream): string {
  return `${u.host}:${u.port}`;
}

/**
 * With a resolver, a color is one host:port whose name nginx looks up on requests: a scaled compose service has
 * one A record per replica, and nginx spreads requests over them (it rotates a cached answer's addresses).
 */
function single(upstreams: Upstreams, color: Color): Upstream {
  const pool = upstreams[color];
  if (pool.length !== 1) {
    throw new Error(`with a resolver, nginx takes one host:port per color (a name whose DNS records are its replicas), not ${pool.length}`);
  }
  return pool[0];
}

/** The most attempts a live request makes: one, another replica of its color if it has one, the other color. */
function liveTries(upstreams: Upstreams): number {
  return Math.max(...COLORS.map((c) => upstreams[c].length)) > 1 ? 3 : 2;
}

/**
 * The resolver for an nginx whose upstream hosts this process was given: `configured` ("off": none, names resolved
 * once at load); by default Docker's DNS when a host is a name (compose), none for IP literals, which never move.
 */
export function resolverFor(upstreams: Upstreams, configured?: string): string | undefined {
  if (configured === 'off') return undefined;
  if (configured !== undefined) return checkedResolver(configured);
  return COLORS.some((color) => upstreams[color].some((u) => isIP(u.host) === 0)) ? DOCKER_DNS : undefined;
}

/** A resolver address goes into the configuration unquoted: host or IP, optional port, nothing else. */
function checkedResolver(resolver: string): string {
  if (!/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$/.test(resolver)) {
    throw new Error(`the nginx resolver must be an address or address:port, not ${JSON.stringify(resolver)}`);
  }
  return resolver;
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
  const resolver = opts.resolver === undefined ? null : checkedResolver(opts.resolver);
  // What each proxying location passes to: the upstream block named by a variable, or (resolver) its host:port.
  const target = (variable: string) => (resolver ? `${variable}_addr` : variable);

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
    // With a resolver, $upstream_addr holds looked-up addresses: the log names host:port instead (see dynamicMaps).
    `  log_format bgserve '${resolver ? ACCESS_LOG_FORMAT.replace('$upstream_addr', '$bgserve_log_addr') : ACCESS_LOG_FORMAT}';`,
    `  access_log ${p.accessLog ? `${p.accessLog} bgserve buffer=32k flush=1s` : 'off'};`,
    `  log_format bgserve_mirror '${MIRROR_LOG_FORMAT}';`,
    `  client_body_temp_path ${p.tempDir}/client_body;`,
    `  proxy_temp_path ${p.tempDir}/proxy;`,
    `  fastcgi_temp_path ${p.tempDir}/fastcgi;`,
    `  uwsgi_temp_path ${p.tempDir}/uwsgi;`,
    `  scgi_temp_path ${p.tempDir}/scgi;`,
    `  client_max_body_size ${opts.clientMaxBodySize ?? '1m'};`,
    '  client_body_buffer_size 1m;',
    '  # The embedded router takes the same headers (MAX_HEADER_BYTES in all); beyond, both answer the same JSON 431.',
    '  # One large buffer: past the first 1k, request line and headers together must fit in it, not each line alone.',
    `  large_client_header_buffers 1 ${MAX_HEADER_BYTES / 1024}k;`,
    '  keepalive_timeout 65s;',
    '  keepalive_requests 100000;',
    '  server_tokens off;',
    '  # Live files must be seen on the next request: never cache their existence.',
    '  open_file_cache off;',
    ...(resolver
      ? [
          '  # Upstream hosts are looked up on requests, so a container recreated with a new address is followed',
          `  # within ${RESOLVE_VALID_S}-${RESOLVE_VALID_S + 1}s with no reload; a slow DNS holds a request 1s at most, then it is replayed.`,
          `  resolver ${resolver} valid=${RESOLVE_VALID_S}s ipv6=off;`,
          '  resolver_timeout 1s;',
        ]
      : []),
    '',
    '  # The preview header reaches one color directly, whatever the weights, with the preview token only.',
    '  # Regexes: map compares plain strings ignoring case, the token must match exactly.',
    `  map ${headerVariable(PREVIEW_TOKEN_HEADER)} $bgserve_preview_token_ok {`,
    ...(opts.previewToken !== undefined
      ? [`    "~^${checkedToken(opts.previewToken)}$" 1;`]
      : ['    # No preview token configured: preview is off.']),
    '    default 0;',
    '  }',
    `  map "${headerVariable(PREVIEW_HEADER)}:$bgserve_preview_token_ok" $bgserve_preview {`,
    ...COLORS.map((color) => `    "~^${color}:1$" ${COLOR_UPSTREAM[color]};`),
    '    default "";',
    '  }',
    '  # Why a preview request is refused: "" when it is not one, or is allowed.',
    `  map "${headerVariable(PREVIEW_HEADER)}:$bgserve_preview_token_ok" $bgserve_preview_refused {`,
    '    ":0" "";',
    '    ":1" "";',
    `    "~^(${COLORS.join('|')}):1$" "";`,
    '    "~:0$" forbidden;',
    '    default invalid;',
    '  }',
    '',
    "  # The id a request and its mirrored copy share (the shadow comparison pairs their answers by it): the client's own, else nginx's.",
    `  map ${headerVariable(REQUEST_ID_HEADER)} $bgserve_request_id {`,
    '    "" $request_id;',
    `    default ${headerVariable(REQUEST_ID_HEADER)};`,
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

  if (resolver) lines.push(...dynamicMaps(opts.upstreams));
  else lines.push(...upstreamBlocks(opts.upstreams, keepalive, maxFails, failTimeout));
  lines.push(...serverBlock(opts, live, target, resolver !== null, liveTries(opts.upstreams)));
  return lines.join('\n');
}

/**
 * An upstream block cannot be empty: a color without replicas is one `down` server, never tried, so its share
 * goes to the backup (the other color) and its preview route answers 502.
 */
const NO_REPLICA = 'server 127.0.0.1:1 down;';

/**
 * One block per color (the original names) with every replica, and per color one with the other color's
 * replicas as its backup. Several replicas: least_conn, the embedded router's rule (fewest requests in flight).
 */
function upstreamBlocks(upstreams: Upstreams, keepalive: number, maxFails: number, failTimeout: string): string[] {
  const lines: string[] = [];
  const balance = (n: number) => (n > 1 ? ['    least_conn;'] : []);
  const servers = (pool: readonly Upstream[], suffix: string) =>
    pool.length === 0 ? [`    ${NO_REPLICA}`] : pool.map((u) => `    server ${server(u)}${suffix};`);
  for (const color of COLORS) {
    lines.push(
      `  upstream ${COLOR_UPSTREAM[color]} {`,
      ...balance(upstreams[color].length),
      ...servers(upstreams[color], ''),
      `    keepalive ${keepalive};`,
      '  }',
      '',
    );
  }
  const fails = ` max_fails=${maxFails} fail_timeout=${failTimeout}`;
  for (const color of COLORS) {
    const other = color === 'blue' ? 'green' : 'blue';
    lines.push(
      `  upstream ${PREFER_UPSTREAM[color]} {`,
      ...balance(upstreams[color].length),
      ...servers(upstreams[color], fails),
      ...(upstreams[other].length === 0 ? [] : servers(upstreams[other], ` backup${fails}`)),
      `    keepalive ${keepalive};`,
      '  }',
      '',
    );
  }
  return lines;
}

type ErrorPage = (status: number, suffix: string, as?: number) => string;

const errorPage: ErrorPage = (status, suffix, as) =>
  `error_page ${status} ${as ? `=${as} ` : ''}${ERROR_PREFIX}${status}${suffix ? `-${suffix}` : ''};`;

function serverBlock(
  opts: NginxRenderOptions,
  live: string,
  target: (variable: string) => string,
  dynamic: boolean,
  tries: number,
): string[] {
  return [
    '  server {',
    `    listen ${server(opts.listen)};`,
    '    # What nginx answers itself (a refused preview, the error locations) is JSON; proxied answers keep theirs.',
    '    default_type application/json;',
    '    # Errors before a location is chosen (headers) or outside location / .',
    `    ${errorPage(400, '')}`,
    `    ${errorPage(494, '', HEADERS_TOO_LARGE.status)}`,
    `    ${errorPage(414, '', HEADERS_TOO_LARGE.status)}`,
    `    ${errorPage(413, '')}`,
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
    "    # Dispatch only, nothing proxied here: so the 413 below is only ever nginx's own (client_max_body_size),",
    "    # and an instance's 413 (batch_too_large) reaches the client unchanged.",
    '    location / {',
    `      ${errorPage(413, '')}`,
    '      # A refused preview request is answered here, its body never forwarded.',
    '      if ($bgserve_preview_refused = forbidden) {',
    `        return ${PREVIEW_FORBIDDEN.status} ${jsonLiteral(PREVIEW_FORBIDDEN)};`,
    '      }',
    '      if ($bgserve_preview_refused = invalid) {',
    `        return ${PREVIEW_INVALID.status} ${jsonLiteral(PREVIEW_INVALID)};`,
    '      }',
    `      # Made by nginx itself, ${PREVIEW_STATUS} and ${LIVE_STATUS} never reach a client: they pick the named location.`,
    `      error_page ${PREVIEW_STATUS} = @bgserve_preview;`,
    `      error_page ${LIVE_STATUS} = @bgserve_live;`,
    '      if ($bgserve_preview) {',
    `        return ${PREVIEW_STATUS};`,
    '      }',
    `      return ${LIVE_STATUS};`,
    "      # The named locations turn nginx's own errors into JSON too, after the redirect that led there.",
    '      recursive_error_pages on;',
    '    }',
    '',
    '    location @bgserve_live {',
    '      mirror /__bgserve_mirror;',
    '      mirror_request_body on;',
    ...proxyTo(target('$bgserve_upstream'), '      ', 'live', dynamic),
    ...(dynamic ? liveReplayedByErrorPage() : liveRetriedOnBackup(tries)),
    '      recursive_error_pages on;',
    '    }',
    '',
    "    # The named color's own answers pass through (no interception); only nginx's own errors become JSON.",
    '    location @bgserve_preview {',
    ...proxyTo(target('$bgserve_preview'), '      ', 'preview', dynamic),
    `      ${errorPage(502, '$bgserve_preview')}`,
    `      ${errorPage(504, '$bgserve_preview')}`,
    '    }',
    '',
    '    # Whatever the other color answers goes to the client (no interception here).',
    '    location @bgserve_replay {',
    ...proxyTo(target('$bgserve_replay_to'), '      ', 'live', dynamic),
    `      ${errorPage(502, '$bgserve_replay_to')}`,
    `      ${errorPage(504, '$bgserve_replay_to')}`,
    '    }',
    '',
    ...errorLocations(),
    '    # Shadow copy: answered 204 inside nginx unless this request falls in the mirrored share.',
    '    location = /__bgserve_mirror {',
    '      internal;',
    // A subrequest is not logged by default; the copies sent are, for the router's mirror counter.
    ...(opts.paths.accessLog
      ? ['      log_subrequest on;', `      access_log ${opts.paths.accessLog} bgserve_mirror buffer=32k flush=1s if=$bgserve_mirror_to;`]
      : ['      access_log off;']),
    '      set $bgserve_mirror_to "";',
    ...COLORS.flatMap((color) => [
      `      if (-f ${live}/mirror-${color}-$bgserve_mirror_bucket) {`,
      `        set $bgserve_mirror_to ${COLOR_UPSTREAM[color]};`,
      '      }',
    ]),
    '      if ($bgserve_mirror_to = "") {',
    '        return 204;',
    '      }',
    `      proxy_pass http://${target('$bgserve_mirror_to')}$request_uri;`,
    '      proxy_http_version 1.1;',
    `      ${upstreamConnection(dynamic)}`,
    '      proxy_set_header Host $host;',
    `      proxy_set_header ${headerName(REQUEST_ID_HEADER)} $bgserve_request_id;`,
    `      proxy_set_header ${headerName(SOURCE_HEADER)} ${'mirror' satisfies TrafficSource};`,
    `      proxy_set_header ${headerName(PREVIEW_TOKEN_HEADER)} "";`,
    '      proxy_connect_timeout 200ms;',
    '      proxy_read_timeout 2s;',
    '    }',
    '  }',
    '}',
    '',
  ];
}

/**
 * Upstream blocks: nginx retries on another replica, then the backup color itself; a 500 is replayed apart, on
 * the other color (see the top).
 */
function liveRetriedOnBackup(tries: number): string[] {
  return [
    '      # Predictions have no side effects: a POST that failed on one replica is replayed on another, then on the other color.',
    `      proxy_next_upstream error timeout ${NEXT_UPSTREAM_STATUSES.map((code) => `http_${code}`).join(' ')} non_idempotent;`,
    `      proxy_next_upstream_tries ${tries};`,
    `      # A ${REPLAYED_STATUS} is replayed without counting towards max_fails; other answers pass through unchanged.`,
    '      proxy_intercept_errors on;',
    `      error_page ${REPLAYED_STATUS} = @bgserve_replay;`,
    '      # Both colors tried and failed (instances never answer 502/504 themselves): JSON, naming no address.',
    `      ${errorPage(502, EITHER)}`,
    `      ${errorPage(504, EITHER)}`,
  ];
}

/**
 * Resolver: one server per color, so nothing to fail over to here. Every failure is replayed once on the other
 * color: nginx's own 502 (connection refused, a name that no longer resolves) and 504 (timeout), and the same
 * upstream answers the backup form retries (RETRY_STATUSES); other answers pass through unchanged.
 */
function liveReplayedByErrorPage(): string[] {
  return [
    '      # Predictions have no side effects: a POST that failed on one color is replayed once on the other.',
    '      proxy_next_upstream off;',
    '      proxy_intercept_errors on;',
    `      error_page ${RETRY_STATUSES.join(' ')} = @bgserve_replay;`,
  ];
}

/**
 * Resolver: each variable naming an upstream maps to the `host:port` nginx looks up, and the access log names
 * that host:port (as the upstream-block form's $upstream_addr does) rather than the address it resolved to: the
 * first attempt went to the preview or live target, a second one (after " : ", an error_page replay) to the other.
 */
function dynamicMaps(upstreams: Upstreams): string[] {
  const map = (from: string, to: string, entries: Array<[string, string]>) => [
    `  map ${from} ${to} {`,
    ...entries.map(([key, value]) => `    ${key} ${value};`),
    '    default "";',
    '  }',
  ];
  const byName = COLORS.map((color): [string, string] => [COLOR_UPSTREAM[color], server(single(upstreams, color))]);
  return [
    '  # Where each upstream name is: looked up through the resolver on the request (no upstream blocks).',
    ...map(
      '$bgserve_upstream',
      '$bgserve_upstream_addr',
      COLORS.map((color) => [PREFER_UPSTREAM[color], server(single(upstreams, color))]),
    ),
    ...map('$bgserve_preview', '$bgserve_preview_addr', byName),
    ...map('$bgserve_replay_to', '$bgserve_replay_to_addr', byName),
    ...map('$bgserve_mirror_to', '$bgserve_mirror_to_addr', byName),
    '  map $bgserve_preview $bgserve_log_first {',
    '    "" $bgserve_upstream_addr;',
    '    default $bgserve_preview_addr;',
    '  }',
    '  map $upstream_addr $bgserve_log_addr {',
    '    "" "";',
    '    "~ : " "$bgserve_log_first : $bgserve_replay_to_addr";',
    '    default $bgserve_log_first;',
    '  }',
    '',
  ];
}

/**
 * The internal locations nginx's own errors are redirected to, each returning the shared JSON body. 502/504
 * have one per upstream name (the color is named, never its address) and one for location / (either color).
 */
function errorLocations(): string[] {
  const at = (path: string, e: PublicError) => [
    `    location = ${ERROR_PREFIX}${path} {`,
    '      internal;',
    `      return ${e.status} ${jsonLiteral(e)};`,
    '    }',
  ];
  const colorName: Record<string, string> = { [EITHER]: 'blue or green' };
  for (const color of COLORS) colorName[COLOR_UPSTREAM[color]] = color;
  return [
    `    # nginx's own errors, as JSON (the embedded router answers the same).`,
    ...at('400', BAD_REQUEST),
    ...at('494', HEADERS_TOO_LARGE),
    ...at('414', HEADERS_TOO_LARGE),
    ...at('413', PAYLOAD_TOO_LARGE),
    ...Object.entries(colorName).flatMap(([suffix, name]) => [
      ...at(`502-${suffix}`, badGateway(name)),
      ...at(`504-${suffix}`, gatewayTimeout(name)),
    ]),
    '',
  ];
}
