/**
 * The uPlot files the status page's charts need, read once from the installed package and served by the
 * control API itself: the page must work offline (no CDN), and uPlot is a dependency, so it is always there.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

export interface StaticAsset {
  body: string;
  type: string;
  /** Subresource Integrity value (sha384-...), checked by the browser before it runs the file. */
  integrity: string;
}

function load(file: string, type: string): StaticAsset {
  const body = readFileSync(createRequire(import.meta.url).resolve(`uplot/dist/${file}`), 'utf8');
  return { body, type, integrity: `sha384-${createHash('sha384').update(body).digest('base64')}` };
}

let cached: { js: StaticAsset; css: StaticAsset } | undefined;

export function uplotAssets(): { js: StaticAsset; css: StaticAsset } {
  cached ??= { js: load('uPlot.iife.min.js', 'text/javascript; charset=utf-8'), css: load('uPlot.min.css', 'text/css; charset=utf-8') };
  return cached;
}
