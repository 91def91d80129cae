/** Starts `bgserve up` on free loopback ports over a given state dir, for the CLI and docs tests. */
import { freeUpPorts, startCli, type Started, upArgv, waitForHttp } from '../support/processes.js';

export interface UpHandle {
  proc: Started;
  routerUrl: string;
  controlUrl: string;
  /** --control-url and --state-dir for the CLI verbs. */
  cli: string[];
}

export async function startUp(stateDir: string, extra: string[] = []): Promise<UpHandle> {
  const ports = await freeUpPorts();
  const controlUrl = `http://127.0.0.1:${ports.control}`;
  const proc = startCli(upArgv(ports, stateDir, extra));
  await waitForHttp(`${controlUrl}/healthz`, { proc, timeoutMs: 60_000 });
  // The control API answers before `up` prints its banner (and what it resumed) in one write.
  const deadline = Date.now() + 30_000;
  while (!proc.output().includes('Ctrl-C stops everything')) {
    if (Date.now() > deadline || proc.child.exitCode !== null) throw new Error(`no banner from \`up\`:\n${proc.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { proc, routerUrl: `http://127.0.0.1:${ports.router}`, controlUrl, cli: ['--control-url', controlUrl, '--state-dir', stateDir] };
}

/** Resolves with the exit code and everything the process printed. */
export async function finished(proc: Started): Promise<{ code: number | null; out: string }> {
  const code = await new Promise<number | null>((resolve) => {
    if (proc.child.exitCode !== null) resolve(proc.child.exitCode);
    else proc.child.once('exit', (c) => resolve(c));
  });
  return { code, out: proc.output() };
}
