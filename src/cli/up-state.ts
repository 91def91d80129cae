/**
 * What `up` resumes from its state dir, said out loud: a restart otherwise silently keeps the last weights and
 * versions (e.g. 100% green on 1.1.0) while a newcomer expects the first start's 100% blue. And `up --fresh`:
 * the release log archived (never deleted: it is the audit trail), then 100% blue on the default bundle.
 */
import { access, readFile, rename } from 'node:fs/promises';
import path from 'node:path';
import { COLORS, type Color } from '../config/defaults.js';
import { readTokenFile } from '../control/auth.js';
import { InstanceAdmin } from '../controller/instance-admin.js';
import type { ModelIdentity } from '../controller/ports.js';
import type { Manifest } from '../model/types.js';
import { RELEASE_LOG_FILE } from '../release/defaults.js';
import type { ReleaseState } from '../release/types.js';
import type { Weights } from '../traffic/types.js';
import type { LocalStack } from '../app/root.js';

async function exists(file: string): Promise<boolean> {
  return access(file).then(
    () => true,
    () => false,
  );
}

/** Whether a previous run left state that `up` resumes: a release log, or processes it may adopt. */
export async function hasPreviousState(stateDir: string): Promise<boolean> {
  return (await exists(path.join(stateDir, RELEASE_LOG_FILE))) || (await exists(path.join(stateDir, 'stack.json')));
}

/** `20261202T022247Z`: sorts by time and is safe in a file name. */
export function archiveStamp(now: Date): string {
  return now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
}

/** Renames <stateDir>/releases.jsonl to releases.<stamp>.jsonl; null when there was none. */
export async function archiveReleaseLog(stateDir: string, now = new Date()): Promise<string | null> {
  const log = path.join(stateDir, RELEASE_LOG_FILE);
  if (!(await exists(log))) return null;
  const archived = path.join(stateDir, RELEASE_LOG_FILE.replace(/\.jsonl$/, `.${archiveStamp(now)}.jsonl`));
  await rename(log, archived);
  return archived;
}

export interface RestoredView {
  stateDir: string;
  weights: Weights;
  models: Record<Color, ModelIdentity | null>;
  adopted: Record<Color, boolean>;
  /** The release the controller reconciled at start (the latest in the log). */
  release?: ReleaseState;
}

/** The banner's "restored" paragraph. */
export function describeRestored(v: RestoredView): string {
  const model = (c: Color) => {
    const m = v.models[c];
    return `${c} ${m ? `${m.name} ${m.version}` : '(not answering)'}${v.adopted[c] ? ' (adopted, kept running)' : ''}`;
  };
  const r = v.release;
  const release = r
    ? `release ${r.spec.id}: ${r.spec.modelName} ${r.spec.version} -> ${r.spec.targetColor}, ${r.status}${r.reason ? ` (${r.reason})` : ''}`
    : 'no release in the log';
  return [
    `bgserve: resumed the state in ${v.stateDir} (\`npx bgserve up --fresh\` starts clean: 100% blue on the default bundle)`,
    `  weights  blue ${v.weights.blue}%  green ${v.weights.green}%`,
    `  models   ${COLORS.map(model).join(', ')}`,
    `  last     ${release}`,
  ].join('\n');
}

export async function readRestored(stack: LocalStack): Promise<RestoredView> {
  const instances = stack.instances.instances;
  const probe = new InstanceAdmin({
    instances: { blue: instances.blue.url, green: instances.green.url },
    pools: stack.control.ctx.pools,
    token: '',
  });
  const [blue, green] = await Promise.all(COLORS.map((c) => probe.model(c)));
  return {
    stateDir: stack.stateDir,
    weights: stack.traffic.state().weights,
    models: { blue, green },
    adopted: { blue: !!instances.blue.adopted, green: !!instances.green.adopted },
    release: stack.control.controller.current() ?? stack.control.controller.history(1)[0],
  };
}

/**
 * `--fresh` on instances adopted from a previous run: they keep whatever model they had, so each one not on
 * the start bundle loads it (the release log is archived already, so no release claims them).
 */
export async function loadStartBundle(stack: LocalStack, bundle: string): Promise<string[]> {
  const manifest = JSON.parse(await readFile(path.join(bundle, 'manifest.json'), 'utf8')) as Manifest;
  const instances = stack.instances.instances;
  const admin = new InstanceAdmin({
    instances: { blue: instances.blue.url, green: instances.green.url },
    // Every replica: a color is on the start bundle only when all its replicas are.
    pools: stack.control.ctx.pools,
    token: await readTokenFile(path.join(stack.stateDir, 'admin-token')),
  });
  const notes: string[] = [];
  for (const c of COLORS) {
    const m = await admin.model(c);
    if (m && m.name === manifest.name && m.version === manifest.version) continue;
    const outcome = await admin.load(c, path.resolve(bundle));
    notes.push(outcome.ok ? `${c}: loaded ${manifest.version} (it served ${m?.version ?? 'nothing'})` : `${c}: ${outcome.error}`);
  }
  return notes;
}
