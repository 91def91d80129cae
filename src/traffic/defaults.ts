/**
 * Defaults of the routers, in one place. The nginx driver renders the same limits into its config, so a
 * request meets the same rules whichever router takes it.
 */

/** Largest request body forwarded (nginx: client_max_body_size 1m); the instances' own limit is the same. */
export const MAX_BODY_BYTES = 1024 * 1024;
/** Upstream answer timeout (nginx: proxy_read_timeout 30s): a prediction takes milliseconds, a hung one never ends. */
export const UPSTREAM_TIMEOUT_MS = 30_000;
/** Connecting to an instance on the same host or network takes well under this (nginx: proxy_connect_timeout 1s). */
export const UPSTREAM_CONNECT_TIMEOUT_MS = 1_000;
/** Keep-alive connections per color: enough for the benchmark's concurrency without queueing. */
export const CONNECTIONS_PER_COLOR = 128;
/** Idle upstream connections are kept this long, under the instances' own keep-alive (72 s in Fastify). */
export const UPSTREAM_KEEP_ALIVE_MS = 10_000;
/** Idle client connections are kept this long (nginx: keepalive_timeout 65s), longer than common load balancers' 60 s. */
export const CLIENT_KEEP_ALIVE_MS = 65_000;
/** A request's head must be complete this long after its first byte arrives (node:http's headersTimeout). */
export const CLIENT_HEAD_TIMEOUT_MS = 60_000;
/** Mirrored requests in flight at most; beyond that a mirror copy is dropped (counted), never queued. */
export const MAX_MIRROR_IN_FLIGHT = 64;

/** Active health check period: a dead color is out of rotation within about half a second. */
export const HEALTH_INTERVAL_MS = 500;
/** Timeout of one active check: /ready answers from memory. */
export const HEALTH_TIMEOUT_MS = 1_000;
/** How long one failed request keeps a color out of rotation (nginx's fail_timeout). */
export const PASSIVE_WINDOW_MS = 2_000;
