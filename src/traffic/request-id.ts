/**
 * The request id a mirrored request shares with its live original: the instances record answers by it, and the
 * controller pairs the stable color's answer with the new color's through it. A client's own id is kept.
 */
import { randomUUID } from 'node:crypto';
import { REQUEST_ID_HEADER } from '../config/defaults.js';

/** Adds a fresh id to a flat [name, value, ...] header list (lower-case names) that has none. */
export function ensureRequestId(headers: string[]): void {
  for (let i = 0; i < headers.length; i += 2) if (headers[i] === REQUEST_ID_HEADER) return;
  headers.push(REQUEST_ID_HEADER, randomUUID());
}
