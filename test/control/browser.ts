/**
 * What the status page's browser tests share: a local stack from source on free loopback ports, Debian's Chromium
 * through playwright-core with a private profile, and a light trickle of live predictions through the router.
 */
import path from 'node:path';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { type LocalStack, type LocalStackOptions, startLocalStack } from '../../src/app/root.js';
import { CLI_ENTRY, freePort } from '../support/processes.js';

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export async function startStackOnFreePorts(stateDir: string, extra: Partial<LocalStackOptions> = {}): Promise<LocalStack> {
  return startLocalStack({
    port: await freePort(),
    bluePort: await freePort(),
    greenPort: await freePort(),
    controlPort: await freePort(),
    stateDir,
    cli: { command: process.execPath, args: ['--import', 'tsx', CLI_ENTRY] },
    ...extra,
  });
}

/** Chromium with its profile under `dir`, and its first page. */
export async function launchChromium(
  dir: string,
  viewport: { width: number; height: number },
): Promise<{ browser: BrowserContext; page: Page }> {
  const browser = await chromium.launchPersistentContext(path.join(dir, 'chromium'), {
    executablePath: '/usr/bin/chromium',
    args: CHROMIUM_ARGS,
    viewport,
  });
  return { browser, page: browser.pages()[0] ?? (await browser.newPage()) };
}

/** Posts `bodies` in turn to the router's /predict, `pauseMs` apart, until `signal` aborts or `maxMs` passes. */
export async function trickle(
  routerUrl: string,
  bodies: readonly unknown[],
  signal: AbortSignal,
  pauseMs = 20,
  maxMs = 120_000,
): Promise<void> {
  const deadline = Date.now() + maxMs;
  for (let i = 0; !signal.aborted && Date.now() < deadline; i++) {
    await fetch(`${routerUrl}/predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(bodies[i % bodies.length]),
      signal,
    }).then(
      (r) => r.arrayBuffer(),
      () => undefined,
    );
    await new Promise((r) => setTimeout(r, pauseMs));
  }
}
