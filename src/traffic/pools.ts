/** A color's pool of replicas as routers are given it: naming and validating the addresses. */
import { COLORS } from '../config/defaults.js';
import { TrafficInputError } from './policy.js';
import type { Upstream, Upstreams } from './types.js';

/** "host:port": how health reports, nginx's upstream blocks and its access log name a replica. */
export function upstreamAddress(u: Upstream): string {
  return `${u.host}:${u.port}`;
}

/** Both colors, each a list of distinct host:port (possibly empty: the color is then out of rotation). */
export function validateUpstreams(input: unknown): Upstreams {
  const obj = (typeof input === 'object' && input !== null ? input : {}) as Record<string, unknown>;
  const details: Record<string, string> = {};
  const out: Upstreams = { blue: [], green: [] };
  for (const color of COLORS) {
    const list = obj[color];
    if (!Array.isArray(list)) {
      details[color] = 'must be a list of {host, port}';
      continue;
    }
    const seen = new Set<string>();
    for (const [i, u] of list.entries()) {
      const { host, port } = (typeof u === 'object' && u !== null ? u : {}) as Record<string, unknown>;
      if (
        typeof host !== 'string' ||
        !/^[A-Za-z0-9.:_-]{1,253}$/.test(host) ||
        !Number.isInteger(port) ||
        (port as number) < 1 ||
        (port as number) > 65_535
      ) {
        details[`${color}[${i}]`] = 'must be {host, port} with a host name or address and a port 1-65535';
        continue;
      }
      const address = `${host}:${port}`;
      if (seen.has(address)) details[`${color}[${i}]`] = `${address} is listed twice`;
      seen.add(address);
      out[color].push({ host, port: port as number });
    }
  }
  for (const key of Object.keys(obj)) if (!(COLORS as readonly string[]).includes(key)) details[key] = 'unknown color';
  if (Object.keys(details).length > 0) throw new TrafficInputError('invalid_upstreams', 'upstreams are not valid', details);
  return out;
}
