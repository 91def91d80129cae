/**
 * One owner of traffic during a release. While a release is live, a manual weights / switch / mirror change
 * would fight the engine (the next step puts its own weights back, and the verdict judges a split nobody
 * chose), so it is refused with 409 unless forced; a forced change first makes the release stop moving
 * traffic, with a reason naming who moved it and how. And whatever happened, status compares the router's
 * traffic with what the latest release stands for, so it never reports a success that traffic contradicts.
 */
import { desiredTraffic, isLive, trafficAgrees } from '../release/engine.js';
import type { ReleaseState } from '../release/types.js';
import type { MirrorConfig, TrafficState, Weights } from '../traffic/types.js';
import { ControlError, type ReleasePort } from './context.js';

export function describeSplit(w: Weights): string {
  return `blue ${w.blue} / green ${w.green}`;
}

function describeMirror(m: MirrorConfig | null): string {
  return m?.target && m.percent > 0 ? `mirror ${m.percent}% to ${m.target}` : 'no mirror';
}

/** The router's traffic held against what a release stands for (status reports this). */
export interface ReleaseTraffic {
  releaseId: string;
  status: ReleaseState['status'];
  agrees: boolean;
  live: { weights: Weights; mirror: MirrorConfig };
  desired: { weights: Weights; mirror: MirrorConfig };
  /** Null when they agree; else one plain sentence. */
  message: string | null;
}

export function releaseTraffic(release: ReleaseState, state: TrafficState): ReleaseTraffic {
  const desired = desiredTraffic(release);
  const live = { weights: state.weights, mirror: state.mirror };
  const agrees = trafficAgrees(release, state);
  const mirrorAgrees = describeMirror(live.mirror) === describeMirror(desired.mirror);
  const shown = (t: { weights: Weights; mirror: MirrorConfig }) =>
    mirrorAgrees ? describeSplit(t.weights) : `${describeSplit(t.weights)}, ${describeMirror(t.mirror)}`;
  const message = agrees
    ? null
    : `live ${shown(live)}, but release ${release.spec.id} (${release.status}) wants ${shown(desired)}: traffic was moved outside the release`;
  return { releaseId: release.spec.id, status: release.status, agrees, live, desired, message };
}

function where(r: ReleaseState): string {
  const step = r.phase === 'step' ? ` ${r.stepIndex + 1}/${r.spec.steps.length}` : '';
  return `${r.status} in ${r.phase}${step}, ${r.spec.targetColor} at ${r.targetWeight}%`;
}

/**
 * Called before a manual traffic change is applied. Without a live release it does nothing; with one it
 * refuses (409) unless `force`, and when forced makes the release yield first (rather than after the change),
 * so no engine step can move traffic between the change and the pause. Returns the release's new state
 * when it yielded.
 */
export async function claimTraffic(
  port: ReleasePort | undefined,
  change: string,
  /** `unchanged`: the request asks for the traffic already in place, which fights nobody. */
  opts: { force: boolean; actor: string; unchanged: boolean },
): Promise<ReleaseState | null> {
  const release = port?.current();
  if (!port || !release || !isLive(release.status) || opts.unchanged) return null;
  const id = release.spec.id;
  if (!opts.force) {
    throw new ControlError(
      409,
      'release_in_progress',
      `release ${id} is ${where(release)}: it owns traffic until it ends. Promote, abort or wait for it, or force the change (--force / "force": true), which pauses the release`,
      { release: id, status: release.status, phase: release.phase },
    );
  }
  return port.yieldTraffic(`traffic moved by hand: ${change} (by ${opts.actor})`);
}
