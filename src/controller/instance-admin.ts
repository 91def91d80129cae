/** The controller's HTTP client for instances: admin model loads and health, over undici. */
import { request } from 'undici';
import type { Color } from '../config/defaults.js';
import { ADMIN_LOAD_TIMEOUT_MS, INSTANCE_PROBE_TIMEOUT_MS } from './defaults.js';
import type { InstanceAdminPort, LoadOutcome, ModelIdentity } from './ports.js';

export interface InstanceAdminOptions {
  instances: Record<Color, string>;
  /** Bearer token of the instances' admin API. */
  token: string;
  timeoutMs?: number;
}

export class InstanceAdmin implements InstanceAdminPort {
  constructor(private readonly opts: InstanceAdminOptions) {}

  private url(color: Color, route: string): URL {
    return new URL(route, this.opts.instances[color]);
  }

  /** POST /admin/model; the instance verifies the bundle and swaps only when it holds. */
  async load(color: Color, bundle: string): Promise<LoadOutcome> {
    const timeout = this.opts.timeoutMs ?? ADMIN_LOAD_TIMEOUT_MS;
    try {
      const res = await request(this.url(color, '/admin/model'), {
        method: 'POST',
        headers: { authorization: `Bearer ${this.opts.token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ bundle }),
        headersTimeout: timeout,
        bodyTimeout: timeout,
      });
      const body = (await res.body.json()) as { model?: ModelIdentity; error?: string; message?: string };
      if (res.statusCode === 200 && body.model) return { ok: true, model: body.model };
      return { ok: false, error: `${res.statusCode} ${body.error ?? ''}: ${body.message ?? ''}`.trim() };
    } catch (err) {
      return { ok: false, error: `admin request to ${color} failed: ${(err as Error).message}` };
    }
  }

  /** GET /health: the model a color serves, or null when it does not answer. */
  async model(color: Color): Promise<ModelIdentity | null> {
    try {
      const res = await request(this.url(color, '/health'), {
        headersTimeout: INSTANCE_PROBE_TIMEOUT_MS,
        bodyTimeout: INSTANCE_PROBE_TIMEOUT_MS,
      });
      const body = (await res.body.json()) as { model?: ModelIdentity };
      return res.statusCode === 200 && body.model ? body.model : null;
    } catch {
      return null;
    }
  }

  /** GET /ready answers 200. */
  async ready(color: Color): Promise<boolean> {
    try {
      const res = await request(this.url(color, '/ready'), {
        headersTimeout: INSTANCE_PROBE_TIMEOUT_MS,
        bodyTimeout: INSTANCE_PROBE_TIMEOUT_MS,
      });
      await res.body.dump();
      return res.statusCode === 200;
    } catch {
      return false;
    }
  }
}
