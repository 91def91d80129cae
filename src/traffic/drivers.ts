/**
 * The built-in traffic drivers, registered by kind (see registry.ts). `up` and `controller` take their
 * `--router` choices from here; a test registers more of its own on a registry of its own.
 */
import { startEmbeddedRouter } from './embedded-router.js';
import { nginxEntry } from './nginx-entry.js';
import { DriverRegistry, type TrafficDriverEntry } from './registry.js';
import { RemoteRouter, type RemoteRouterOptions } from './remote-router.js';
import type { TrafficDriver } from './types.js';

/** The router in this process (`controller`); under `up`, in a `bgserve router` process of its own. */
export const embeddedEntry: TrafficDriverEntry = {
  kind: 'embedded',
  about: 'in this process',
  start: (ctx) =>
    startEmbeddedRouter({
      host: ctx.listen.host,
      port: ctx.listen.port,
      upstreams: ctx.upstreams,
      previewToken: ctx.previewToken,
      initial: ctx.initial,
    }),
  local: { run: 'router-process' },
};

export const DEFAULT_DRIVER = embeddedEntry.kind;

/** A new registry of the built-in drivers (a fresh one each time: registering more changes nobody else's). */
export function builtInDrivers(): DriverRegistry {
  return new DriverRegistry([embeddedEntry, nginxEntry]);
}

/** Drives a router placed in a process of its own (`bgserve router`) through its control endpoint. */
export function connectRouterProcess(opts: RemoteRouterOptions): Promise<TrafficDriver> {
  return RemoteRouter.connect(opts);
}
