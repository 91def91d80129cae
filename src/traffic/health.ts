/**
 * Health of each color as a router sees it: active checks (GET /ready every interval) and passive marks
 * (a proxied request failed). A color is healthy when its last check passed and no request failed on it
 * within the passive window. Both drivers use this; nginx has its own passive marks, this reports them.
 */
import { Client } from 'undici';
import { COLORS, type Color } from '../config/defaults.js';
import { HEALTH_INTERVAL_MS, HEALTH_TIMEOUT_MS, PASSIVE_WINDOW_MS } from './defaults.js';
import type { HealthReport, Upstreams } from './types.js';

interface ColorState {
  activeOk: boolean;
  passiveUntil: number;
  lastError: string | null;
  checkedAt: number | null;
}

export interface HealthOptions {
  /** Active check period (default HEALTH_INTERVAL_MS). */
  intervalMs?: number;
  /** How long one failed request keeps a color out of rotation (nginx's fail_timeout). */
  passiveWindowMs?: number;
  /** Timeout of one check. */
  timeoutMs?: number;
  onChange?: (color: Color, healthy: boolean) => void;
  now?: () => number;
}

/** The bookkeeping, without timers or sockets. */
export class HealthTracker {
  private readonly colors: Record<Color, ColorState>;
  private readonly passiveWindowMs: number;
  private readonly now: () => number;
  private readonly onChange?: (color: Color, healthy: boolean) => void;
  private readonly last: Record<Color, boolean> = { blue: true, green: true };

  constructor(opts: HealthOptions = {}) {
    this.passiveWindowMs = opts.passiveWindowMs ?? PASSIVE_WINDOW_MS;
    this.now = opts.now ?? Date.now;
    this.onChange = opts.onChange;
    const fresh = (): ColorState => ({ activeOk: true, passiveUntil: 0, lastError: null, checkedAt: null });
    this.colors = { blue: fresh(), green: fresh() };
  }

  isHealthy(color: Color): boolean {
    const s = this.colors[color];
    return s.activeOk && this.now() >= s.passiveUntil;
  }

  /** A proxied request failed on this color (connection error, 502/503/504: see isUnavailableStatus). */
  markFailure(color: Color, error: string): void {
    const s = this.colors[color];
    s.passiveUntil = this.now() + this.passiveWindowMs;
    s.lastError = error;
    this.notify(color);
  }

  recordCheck(color: Color, error: string | null): void {
    const s = this.colors[color];
    s.activeOk = error === null;
    s.checkedAt = this.now();
    if (error !== null) s.lastError = error;
    else if (this.now() >= s.passiveUntil) s.lastError = null;
    this.notify(color);
  }

  report(): HealthReport {
    const one = (color: Color) => {
      const s = this.colors[color];
      return {
        healthy: this.isHealthy(color),
        lastError: s.lastError,
        checkedAt: s.checkedAt === null ? null : new Date(s.checkedAt).toISOString(),
      };
    };
    return { blue: one('blue'), green: one('green') };
  }

  private notify(color: Color): void {
    const healthy = this.isHealthy(color);
    if (healthy !== this.last[color]) {
      this.last[color] = healthy;
      this.onChange?.(color, healthy);
    }
  }
}

/** Polls GET /ready on both colors and feeds the tracker. */
export class ActiveHealthChecker {
  private readonly clients: Record<Color, Client>;
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  private readonly intervalMs: number;

  constructor(
    upstreams: Upstreams,
    private readonly tracker: HealthTracker,
    opts: HealthOptions = {},
  ) {
    this.intervalMs = opts.intervalMs ?? HEALTH_INTERVAL_MS;
    const timeout = opts.timeoutMs ?? HEALTH_TIMEOUT_MS;
    const client = (color: Color) =>
      new Client(`http://${upstreams[color].host}:${upstreams[color].port}`, {
        headersTimeout: timeout,
        bodyTimeout: timeout,
        connectTimeout: timeout,
      });
    this.clients = { blue: client('blue'), green: client('green') };
  }

  /** Runs one round now (awaited, so a starting router knows the truth) and then every interval. */
  async start(): Promise<void> {
    await this.checkAll();
    this.timer = setInterval(() => void this.checkAll(), this.intervalMs);
    this.timer.unref();
  }

  async checkAll(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      await Promise.all(COLORS.map((color) => this.check(color)));
    } finally {
      this.running = false;
    }
  }

  private async check(color: Color): Promise<void> {
    try {
      const res = await this.clients[color].request({ path: '/ready', method: 'GET' });
      await res.body.dump();
      this.tracker.recordCheck(color, res.statusCode === 200 ? null : `GET /ready answered ${res.statusCode}`);
    } catch (err) {
      this.tracker.recordCheck(color, `GET /ready failed: ${describeError(err)}`);
    }
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await Promise.all(COLORS.map((c) => this.clients[c].close().catch(() => undefined)));
  }
}

export function describeError(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: string }).code;
    const cause = (err as { cause?: { code?: string } }).cause?.code;
    return [code ?? cause, err.message].filter(Boolean).join(' ');
  }
  return String(err);
}
