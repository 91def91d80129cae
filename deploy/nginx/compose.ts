/**
 * The compose deployment's nginx, as the bgserve controller drives it (external mode of the nginx driver).
 * The controller renders with these options into the shared state volume; deploy/nginx/watch-config.sh, in
 * the nginx container, checks and applies each render. The seed (what nginx serves before the controller's
 * first render) comes from the same renderer, so the two can never disagree on shape.
 */
import { PORTS } from '../../src/config/defaults.js';
import { renderNginxConfig, type NginxRenderOptions } from '../../src/traffic/nginx-config.js';
import { initialState } from '../../src/traffic/policy.js';

/** Compose service names (the original system's upstream names) and the port each instance listens on inside. */
export const COMPOSE_SERVICES = { blue: 'mlservice_blue', green: 'mlservice_green', nginx: 'nginx', controller: 'controller' } as const;
export const INSTANCE_PORT = 8000;
export const NGINX_PORT = 80;

/** Where the controller writes its render (its view of the shared state volume). */
export const CONTROLLER_RENDER_PATH = '/app/.bgserve/nginx/nginx.conf';
/** The same file seen from the nginx container (the state volume mounted read-only at /etc/bgserve). */
export const NGINX_RENDERED_PATH = '/etc/bgserve/nginx/nginx.conf';

export const COMPOSE_NGINX_OPTIONS: NginxRenderOptions = {
  listen: { host: '0.0.0.0', port: NGINX_PORT },
  upstreams: {
    blue: { host: COMPOSE_SERVICES.blue, port: INSTANCE_PORT },
    green: { host: COMPOSE_SERVICES.green, port: INSTANCE_PORT },
  },
  // Paths inside the nginx container. No access log: router metrics come from the instances in compose.
  paths: { pid: '/var/run/nginx.pid', errorLog: '/dev/stderr', accessLog: null, tempDir: '/var/cache/nginx' },
};

/** The first configuration: all traffic on blue, green as backup (the original system's starting point). */
export function renderComposeSeed(): string {
  return renderNginxConfig(initialState(), COMPOSE_NGINX_OPTIONS);
}

/** The control API as published on the host by docker-compose.nginx.yml. */
export const CONTROL_PORT = PORTS.control;
