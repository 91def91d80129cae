/** A small client for the control API, shared by every CLI verb that talks to a running stack. */
import os from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import { request } from 'undici';
import { DEFAULT_STATE_DIR, PORTS } from '../config/defaults.js';
import { readTokenFile } from '../control/auth.js';
import { ACTOR_HEADER } from '../control/actor.js';

export const CONTROL_URL_ENV = 'BGSERVE_CONTROL_URL';
export const TOKEN_ENV = 'BGSERVE_TOKEN';

export interface ControlConnectionOptions {
  controlUrl?: string;
  token?: string;
  stateDir?: string;
}

/** The control API answered with an error ({error, message, details?}) or could not be reached. */
export class ControlClientError extends Error {
  constructor(
    message: string,
    readonly status: number | null,
    readonly code: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = 'ControlClientError';
  }
}

/** Adds --control-url, --token and --state-dir to a command. */
export function withControlOptions(cmd: Command): Command {
  return cmd
    .option('--control-url <url>', `control API (env ${CONTROL_URL_ENV})`)
    .option('--token <token>', `control API token (env ${TOKEN_ENV}; else read from <state-dir>/token)`)
    .option('--state-dir <dir>', 'state directory of the running stack', DEFAULT_STATE_DIR);
}

/** user@host, so a traffic change forced during a release records who made it. */
export function cliActor(): string {
  let user: string;
  try {
    user = os.userInfo().username;
  } catch {
    // No passwd entry (some containers run as a bare uid).
    user = process.env.USER ?? `uid${process.getuid?.() ?? '?'}`;
  }
  return `${user}@${os.hostname()}`;
}

export class ControlClient {
  constructor(
    readonly url: string,
    private readonly token: string,
  ) {}

  /** From CLI options, then the environment, then the defaults (token file in the state dir). */
  static async connect(opts: ControlConnectionOptions, env: NodeJS.ProcessEnv = process.env): Promise<ControlClient> {
    const url = (opts.controlUrl ?? env[CONTROL_URL_ENV] ?? `http://127.0.0.1:${PORTS.control}`).replace(/\/+$/, '');
    let token = opts.token ?? env[TOKEN_ENV];
    if (!token) {
      const file = path.resolve(opts.stateDir ?? DEFAULT_STATE_DIR, 'token');
      try {
        token = await readTokenFile(file);
      } catch (err) {
        throw new ControlClientError(
          `no control token: pass --token, set ${TOKEN_ENV}, or point --state-dir at the stack's state dir (${file}: ${(err as Error).message})`,
          null,
          'no_token',
        );
      }
    }
    return new ControlClient(url, token);
  }

  get<T>(route: string): Promise<T> {
    return this.call<T>('GET', route);
  }

  put<T>(route: string, body: unknown): Promise<T> {
    return this.call<T>('PUT', route, body);
  }

  post<T>(route: string, body: unknown): Promise<T> {
    return this.call<T>('POST', route, body);
  }

  async call<T>(method: 'GET' | 'PUT' | 'POST' | 'DELETE', route: string, body?: unknown): Promise<T> {
    let res;
    try {
      res = await request(`${this.url}${route}`, {
        method,
        headers: {
          authorization: `Bearer ${this.token}`,
          [ACTOR_HEADER]: cliActor(),
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        body: body !== undefined ? JSON.stringify(body) : undefined,
        headersTimeout: 30_000,
      });
    } catch (err) {
      throw new ControlClientError(
        `cannot reach the control API at ${this.url} (is \`npm start\` or \`npx bgserve up\` running?): ${(err as Error).message}`,
        null,
        'unreachable',
      );
    }
    const text = await res.body.text();
    let parsed: unknown = text;
    try {
      parsed = text === '' ? null : JSON.parse(text);
    } catch {
      // not JSON: keep the text for the message
    }
    if (res.statusCode >= 400) {
      const e = (typeof parsed === 'object' && parsed !== null ? parsed : {}) as { error?: string; message?: string; details?: unknown };
      const details =
        e.details && typeof e.details === 'object'
          ? ` (${Object.entries(e.details)
              .map(([k, v]) => `${k}: ${String(v)}`)
              .join('; ')})`
          : '';
      throw new ControlClientError(`${e.message ?? String(parsed)}${details}`, res.statusCode, e.error ?? 'error', e.details);
    }
    return parsed as T;
  }
}
