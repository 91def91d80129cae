/**
 * Every default of the release controller (the loop around the engine) and its adapters, in one place. The
 * engine's own defaults (steps, windows, thresholds) are in release/defaults.ts.
 */

/** How often the controller ticks (feeds time and observations to the engine). */
export const CONTROLLER_TICK_MS = 250;
/** How often an open analysis window is measured and judged: the bound on detection delay. */
export const ANALYSIS_EVERY_MS = 500;
/** How long a color may take to answer /ready after an admin load. */
export const READY_TIMEOUT_MS = 30_000;
/** How often a freshly loaded color is asked for /ready: well under the analysis cadence, light on the instance. */
export const READY_POLL_MS = 100;
/**
 * Longest the controller waits for one analysis measurement (retries included) before calling the window
 * unavailable: the loop that carries commands out waits behind it.
 */
export const ANALYSIS_CALL_TIMEOUT_MS = 5_000;
/** How long the new color's /metrics may stay unreadable before the controller reports it unhealthy. */
export const TARGET_UNREADABLE_MS = 2_000;

/** An admin load verifies the bundle and sets the runtime up: seconds for our models, a minute at worst. */
export const ADMIN_LOAD_TIMEOUT_MS = 60_000;
/** /health and /ready answer from memory: an instance slower than this is as good as down. */
export const INSTANCE_PROBE_TIMEOUT_MS = 2_000;
/** One preview batch of golden rows: hundreds of rows of inference plus a hop through the router. */
export const PREVIEW_TIMEOUT_MS = 10_000;
/** Rows per preview request: half the instances' batch limit of 1000. */
export const PREVIEW_BATCH_ROWS = 500;
/**
 * How often replicas are checked for one that came back on another model than its color's (a restart, a new
 * pod): the bound on how long such a replica serves its start-up bundle before it is put on the current one.
 */
export const HEAL_EVERY_MS = 1_000;
