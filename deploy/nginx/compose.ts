/**
 * The compose deployment's nginx, as the bgserve controller drives it (external mode of the nginx driver).
 *
 * The controller and nginx mount the same `bgserve-state` volume at the same path (STATE_DIR), because the
 * driver writes live files where the configuration tells nginx to read them:
 *   - weights and mirror share: live files under LIVE_DIR, read by nginx on every request (no reload);
 *   - the configuration itself (changes only with the sticky key): RENDER_PATH, applied by
 *     deploy/nginx/watch-config.sh in the nginx container (nginx -t, install, reload);
 *   - the instances' addresses: nginx looks mlservice_blue / mlservice_green up through Docker's DNS on requests
 *     (cached 1 s), so a recreated container is followed with no reload.
 * The seed (what nginx serves before the controller's first render) comes from the same renderer.
 */
import { EXTERNAL_NGINX_LISTEN, EXTERNAL_NGINX_PATHS } from '../../src/traffic/nginx-entry.js';
import { DOCKER_DNS, renderNginxConfig, type NginxRenderOptions } from '../../src/traffic/nginx-config.js';
import { initialState } from '../../src/traffic/policy.js';

/** Compose service names (the original system's upstream names) and the port each instance listens on inside. */
export const COMPOSE_SERVICES = { blue: 'mlservice_blue', green: 'mlservice_green', nginx: 'nginx', controller: 'controller' } as const;
export const INSTANCE_PORT = 8000;
export const NGINX_PORT = EXTERNAL_NGINX_LISTEN.port;

/** The state volume, at this path in the controller (read-write) and in nginx (read-only). */
export const STATE_DIR = '/app/.bgserve';
export const RENDER_PATH = `${STATE_DIR}/nginx/nginx.conf`;
export const LIVE_DIR = `${STATE_DIR}/nginx/live`;

/**
 * What `bgserve controller --router nginx` renders with in compose (its defaults, the nginx image's layout),
 * plus the preview token, which only the controller has.
 */
export const COMPOSE_NGINX_OPTIONS: NginxRenderOptions = {
  listen: EXTERNAL_NGINX_LISTEN,
  upstreams: {
    blue: [{ host: COMPOSE_SERVICES.blue, port: INSTANCE_PORT }],
    green: [{ host: COMPOSE_SERVICES.green, port: INSTANCE_PORT }],
  },
  paths: { ...EXTERNAL_NGINX_PATHS, liveDir: LIVE_DIR },
  // A recreated container comes back with a new address: nginx looks the service names up on requests.
  resolver: DOCKER_DNS,
};

/**
 * The first configuration: no sticky key; until the controller writes live files, all traffic goes to blue.
 * No preview token either (the seed is public, in the image): nginx refuses every preview request until the
 * controller renders the configuration with the token from its state dir.
 */
export function renderComposeSeed(): string {
  return renderNginxConfig(initialState(), COMPOSE_NGINX_OPTIONS);
}
