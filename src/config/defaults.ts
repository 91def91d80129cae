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
/**
 * The preview route is private: a router honours PREVIEW_HEADER only with this header carrying the preview
 * token (`<state-dir>/preview-token`); without it the request is refused with 403.
 */
export const PREVIEW_TOKEN_HEADER = 'x-bgserve-preview-token';
export const PREVIEW_TOKEN_FILE = 'preview-token';
/**
 * Set by the routers on what they send to an instance that is not live traffic (client-sent values are
 * stripped): instances label such requests apart (metric label `source`), so they never count as live.
 */
export const SOURCE_HEADER = 'x-bgserve-source';
/**
 * The request id routers and instances share: a mirrored request and its live original carry the same one (the
 * routers set it when the client sent none), which is how the shadow comparison pairs their answers.
 */
export const REQUEST_ID_HEADER = 'x-request-id';
export const TRAFFIC_SOURCES = ['live', 'preview', 'mirror'] as const;
export type TrafficSource = (typeof TRAFFIC_SOURCES)[number];
