/**
 * Runs an app on a socket and drains it on SIGTERM/SIGINT: /ready turns 503 at once, the socket keeps
 * accepting for `drainDelayMs` (so a router polling /ready stops sending), then the server closes, requests
 * in flight finish, and the process exits 0.
 */
import type { FastifyInstance } from 'fastify';

export interface ListenOptions {
  port: number;
  host: string;
  /** Time between /ready turning 503 and the socket closing. */
  drainDelayMs: number;
  /** Hard limit for in-flight requests to finish after close; past it the process exits 1. */
  drainTimeoutMs: number;
}

export const DRAIN_DEFAULTS = { drainDelayMs: 2_000, drainTimeoutMs: 30_000 } as const;

/** Marks the instance draining, waits the delay, then closes the app (in-flight requests finish first). */
export async function drain(app: FastifyInstance, delayMs: number): Promise<void> {
  app.serving.holder.startDraining();
  app.log.info({ delayMs }, 'draining: /ready answers 503');
  await new Promise((resolve) => setTimeout(resolve, delayMs));
  await app.close();
  app.log.info('drained: server closed');
}

/** Listens and installs the signal handlers; resolves with the address once listening (log it: nothing else does). */
export async function listenAndDrainOnSignal(app: FastifyInstance, opts: ListenOptions): Promise<string> {
  // Fastify logs a bare "Server listening at" line; the caller logs one complete line instead.
  const level = app.log.level;
  app.log.level = 'warn';
  let address: string;
  try {
    address = await app.listen({ port: opts.port, host: opts.host });
  } finally {
    app.log.level = level;
  }
  let draining = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (draining) {
      app.log.warn({ signal }, 'second signal while draining: exiting now');
      process.exit(1);
    }
    draining = true;
    app.log.info({ signal }, 'signal received');
    const hardStop = setTimeout(() => {
      app.log.error({ timeoutMs: opts.drainTimeoutMs }, 'drain timed out');
      process.exit(1);
    }, opts.drainDelayMs + opts.drainTimeoutMs);
    hardStop.unref();
    drain(app, opts.drainDelayMs).then(
      () => process.exit(0),
      (err: unknown) => {
        app.log.error({ err }, 'drain failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  return address;
}
