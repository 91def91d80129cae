/** A router in memory: applies what it is told at once, keeps every change, and reports health as set. */
import type { Color } from '../../../src/config/defaults.js';
import type { MirrorConfig, Weights } from '../../../src/config/traffic-split.js';
import type { TrafficPort } from '../../../src/controller/ports.js';
import type { HealthReport, ReplicaHealth, TrafficState } from '../../../src/traffic/types.js';

export class FakeRouter implements TrafficPort {
  private current: TrafficState;
  private readonly healthy: Record<Color, boolean> = { blue: true, green: true };
  private readonly replicaHealth: Record<Color, ReplicaHealth[]> = { blue: [], green: [] };
  /** Every weights change applied, in order. */
  readonly weights: Weights[] = [];
  readonly mirrors: MirrorConfig[] = [];

  constructor(weights: Weights = { blue: 100, green: 0 }) {
    this.current = { weights, mirror: { target: null, percent: 0 }, sticky: null, generation: 1 };
  }

  async setWeights(weights: Weights): Promise<TrafficState> {
    this.weights.push(weights);
    this.current = { ...this.current, weights, generation: this.current.generation + 1 };
    return this.current;
  }

  async setMirror(mirror: MirrorConfig): Promise<TrafficState> {
    this.mirrors.push(mirror);
    this.current = { ...this.current, mirror, generation: this.current.generation + 1 };
    return this.current;
  }

  state(): TrafficState {
    return this.current;
  }

  setHealthy(color: Color, healthy: boolean): void {
    this.healthy[color] = healthy;
  }

  /** A color's replicas as the router sees them: the color is healthy while one of them is. */
  setReplicas(color: Color, replicas: Array<{ address: string; healthy: boolean }>): void {
    this.replicaHealth[color] = replicas.map((r) => ({ ...r, lastError: r.healthy ? null : 'GET /ready failed', checkedAt: null }));
    this.healthy[color] = replicas.some((r) => r.healthy);
  }

  health(): HealthReport {
    const of = (c: Color) => ({
      healthy: this.healthy[c],
      lastError: this.healthy[c] ? null : 'GET /ready failed',
      checkedAt: null,
      replicas: this.replicaHealth[c],
    });
    return { blue: of('blue'), green: of('green') };
  }
}
