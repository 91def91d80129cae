/** Deterministic window statistics for engine and analysis tests. */
import type { ColorWindow, HistogramWindow, WindowStats } from '../../src/release/types.js';

export const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, Infinity];
export const PREDICTION_BUCKETS = [3, 3.5, 4, 4.5, 5, 5.5, 6, 6.5, 7, 7.5, 8, Infinity];

export function histogram(values: number[], bounds = LATENCY_BUCKETS): HistogramWindow {
  return {
    buckets: bounds.map((le) => ({ le, count: values.filter((v) => v <= le).length })),
    sum: values.reduce((a, b) => a + b, 0),
    count: values.length,
  };
}

/** n values spread evenly over [center - spread, center + spread]: a stand-in for a distribution. */
export function spread(n: number, center: number, width: number): number[] {
  return Array.from({ length: n }, (_, i) => center - width + (2 * width * (i + 0.5)) / n);
}

export interface ColorShape {
  requests: number;
  errors?: number;
  latencySeconds?: number;
  predictionMean?: number;
}

export function colorWindow(shape: ColorShape): ColorWindow {
  const n = shape.requests;
  return {
    requests: n,
    serverErrors: shape.errors ?? 0,
    latency: histogram(spread(n, shape.latencySeconds ?? 0.0008, (shape.latencySeconds ?? 0.0008) / 2)),
    predictions: histogram(spread(n, shape.predictionMean ?? 5.6, 0.9), PREDICTION_BUCKETS),
  };
}

export function stats(fromMs: number, toMs: number, colors: { blue: ColorShape; green: ColorShape }): WindowStats {
  return { fromMs, toMs, colors: { blue: colorWindow(colors.blue), green: colorWindow(colors.green) } };
}
