/** Ports and paths users rely on, in one place (the original system's ports; 8080 for the local router). */
export const PORTS = {
  router: 8080,
  blue: 8001,
  green: 8002,
  control: 8090,
  prometheus: 9090,
  grafana: 3000,
} as const;

export const COLORS = ['blue', 'green'] as const;
export type Color = (typeof COLORS)[number];

export function otherColor(color: Color): Color {
  return color === 'blue' ? 'green' : 'blue';
}

export function isColor(value: unknown): value is Color {
  return value === 'blue' || value === 'green';
}

export const DEFAULT_BUNDLE = 'models/wine-quality/1.0.0';
export const DEFAULT_STATE_DIR = '.bgserve';
/** Header that routes a request to one color directly, whatever the weights (preview route). */
export const PREVIEW_HEADER = 'x-bgserve-color';
