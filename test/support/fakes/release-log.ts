/** The release log in memory: what the controller saved, read back as the file would give it (copies). */
import type { ReleaseEvent, ReleaseState } from '../../../src/release/types.js';
import type { ReleaseLog } from '../../../src/store/release-store.js';

const copy = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T;

export class InMemoryReleaseLog implements ReleaseLog {
  private readonly releases = new Map<string, ReleaseState>();
  private readonly order: string[] = [];
  private readonly allEvents: ReleaseEvent[] = [];
  /** Every save, in order: what a crash at any point would have left. */
  readonly saves: Array<{ state: ReleaseState; events: ReleaseEvent[] }> = [];
  closed = false;

  save(state: ReleaseState, events: readonly ReleaseEvent[] = []): void {
    if (this.closed) throw new Error('release log is closed');
    const saved = { state: copy(state), events: copy([...events]) };
    this.saves.push(saved);
    if (!this.releases.has(state.spec.id)) this.order.push(state.spec.id);
    this.releases.set(state.spec.id, saved.state);
    this.allEvents.push(...saved.events);
  }

  get(id: string): ReleaseState | undefined {
    const r = this.releases.get(id);
    return r && copy(r);
  }

  latest(): ReleaseState | undefined {
    const id = this.order[this.order.length - 1];
    return id === undefined ? undefined : this.get(id);
  }

  list(limit = 20): ReleaseState[] {
    return this.order
      .slice(-limit)
      .reverse()
      .map((id) => copy(this.releases.get(id) as ReleaseState));
  }

  events(releaseId?: string): ReleaseEvent[] {
    return copy(releaseId === undefined ? this.allEvents : this.allEvents.filter((e) => e.releaseId === releaseId));
  }

  close(): void {
    this.closed = true;
  }

  /** The same records, for a controller started after this one (a restart). */
  reopen(): InMemoryReleaseLog {
    const next = new InMemoryReleaseLog();
    for (const s of this.saves) next.save(s.state, s.events);
    next.saves.length = 0;
    return next;
  }
}
