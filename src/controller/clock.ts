import { setTimeout as sleep } from 'node:timers/promises';
import type { Clock } from './ports.js';

/**
 * Wall time and real timers. Its waits do not keep the process alive by themselves: a controller lives inside
 * a server, and stops with it.
 */
export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) => sleep(ms, undefined, { ref: false, ...(signal ? { signal } : {}) }),
};
