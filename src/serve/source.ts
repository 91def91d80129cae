/**
 * Which traffic a request is: the routers mark what they send for preview or as a mirror with SOURCE_HEADER;
 * everything else, a missing or unknown value included, is live traffic (the routers strip the header from
 * client requests, so only they can mark a request as not live).
 */
import type { IncomingHttpHeaders } from 'node:http';
import { SOURCE_HEADER, type TrafficSource } from '../config/defaults.js';

export function trafficSource(headers: IncomingHttpHeaders): TrafficSource {
  const value = headers[SOURCE_HEADER];
  return value === 'preview' || value === 'mirror' ? value : 'live';
}
