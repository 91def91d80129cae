/**
 * The control endpoint of a router that runs in a process of its own (`bgserve router`, which `bgserve up`
 * spawns so that the router outlives a crash of `up`). Loopback only, behind a bearer token; the controller
 * drives it through RemoteRouter (remote-router.ts), which implements TrafficDriver over these routes:
 *   GET /router            the snapshot {pid, state, health, workers?}
 *   PUT /router/weights    Weights        -> snapshot
 *   PUT /router/mirror     MirrorConfig   -> snapshot
 *   PUT /router/sticky     {sticky}       -> snapshot
 *   PUT /router/upstreams  Upstreams      -> snapshot (the colors' pools of replicas)
 *   GET /metrics           the router's metrics (ROUTER_METRICS), Prometheus text
 * A caller's mistake is 422 with the same {error, message, details} as the control API's traffic routes.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tokenMatches } from '../control/auth.js';
import { TrafficInputError } from './policy.js';
import type { HealthReport, TrafficDriver, TrafficState } from './types.js';

export const ROUTER_CONTROL_PATH = '/router';

export interface RouterSnapshot {
  /** The router process, so an adopting `up` knows it reached the very process it recorded. */
  pid: number;
  state: TrafficState;
  health: HealthReport;
  /** Its workers' PIDs when it runs several (router-cluster.ts). */
  workers?: number[];
}

/** What a router process writes to its ready file once it listens. */
export interface RouterReady {
  pid: number;
  port: number;
  controlPort: number;
}

export interface RouterControl {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/** Control bodies are a few hundred bytes; anything larger is not ours. */
const MAX_BODY_BYTES = 16 * 1024;

class BadRequest extends Error {}

function send(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function readJson(req: http.IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new BadRequest(`body over ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new BadRequest('body is not JSON');
  }
}

export async function startRouterControl(opts: {
  driver: TrafficDriver;
  host: string;
  port: number;
  token: string;
  /** A router of several workers: their health is gathered before each snapshot, their PIDs reported. */
  cluster?: { refresh(): Promise<void>; pids(): number[] };
}): Promise<RouterControl> {
  const { driver, cluster } = opts;
  const snapshot = async (): Promise<RouterSnapshot> => {
    if (!cluster) return { pid: process.pid, state: driver.state(), health: driver.health() };
    await cluster.refresh();
    return { pid: process.pid, state: driver.state(), health: driver.health(), workers: cluster.pids() };
  };

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
    if (!match || !tokenMatches(match[1], opts.token)) {
      req.resume();
      return send(res, match ? 403 : 401, { error: match ? 'forbidden' : 'unauthorized', message: 'the router control token is required' });
    }
    const route = `${req.method} ${(req.url ?? '/').split('?')[0]}`;
    switch (route) {
      case `GET ${ROUTER_CONTROL_PATH}`:
        return send(res, 200, await snapshot());
      case 'GET /metrics': {
        const text = await driver.metrics.metrics();
        res.writeHead(200, { 'content-type': driver.metrics.contentType });
        res.end(text);
        return;
      }
      case `PUT ${ROUTER_CONTROL_PATH}/weights`:
        await driver.setWeights((await readJson(req)) as never);
        return send(res, 200, await snapshot());
      case `PUT ${ROUTER_CONTROL_PATH}/mirror`:
        await driver.setMirror((await readJson(req)) as never);
        return send(res, 200, await snapshot());
      case `PUT ${ROUTER_CONTROL_PATH}/sticky`: {
        const body = (await readJson(req)) as { sticky?: unknown } | null;
        await driver.setSticky((body?.sticky ?? null) as never);
        return send(res, 200, await snapshot());
      }
      case `PUT ${ROUTER_CONTROL_PATH}/upstreams`:
        await driver.setUpstreams((await readJson(req)) as never);
        return send(res, 200, await snapshot());
      default:
        req.resume();
        return send(res, 404, { error: 'not_found', message: `no route ${route}` });
    }
  };

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (res.headersSent) return res.destroy();
      if (err instanceof TrafficInputError) return send(res, 422, { error: err.code, message: err.message, details: err.details });
      if (err instanceof BadRequest) return send(res, 400, { error: 'bad_request', message: err.message });
      send(res, 500, { error: 'router_error', message: err instanceof Error ? err.message : String(err) });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${opts.host}:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
