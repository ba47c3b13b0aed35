/**
 * The pools as the dashboard knows them: WatchResourcePool's snapshot, then the changed and removed
 * instances of each message. No DOM here: the page renders from it, tests drive it directly.
 * Built for 10,000+ instances: an update touches only what changed; the sorted order is rebuilt only
 * when instances join or leave; filtering is one pass.
 */
import type { WatchResourcePoolResponse } from '../gen/neuro/v1/neuro_orchestrator_pb.js';
import type { InstanceInfo, PoolStatus } from '../gen/neuro/v1/resource_pb.js';

export const INSTANCE_STATES = ['idle', 'running', 'joining', 'draining', 'unhealthy', 'gone'] as const;
export type InstanceState = (typeof INSTANCE_STATES)[number];

export interface Counts {
  total: number;
  idle: number;
  running: number;
  unhealthy: number;
  draining: number;
  joining: number;
  totalGpus: number;
  idleGpus: number;
}

export const EMPTY_COUNTS: Counts = { total: 0, idle: 0, running: 0, unhealthy: 0, draining: 0, joining: 0, totalGpus: 0, idleGpus: 0 };

function counts(p: PoolStatus | undefined, prev: Counts): Counts {
  if (!p) return prev;
  return {
    total: p.totalInstances,
    idle: p.idleInstances,
    running: p.runningInstances,
    unhealthy: p.unhealthyInstances,
    draining: p.drainingInstances,
    joining: p.joiningInstances,
    totalGpus: p.totalGpus,
    idleGpus: p.idleGpus,
  };
}

export interface PoolFilter {
  /** '' = both kinds. */
  kind: '' | 'simulator' | 'trainer';
  /** Empty = every state. */
  states: ReadonlySet<string>;
  /** Matches id, host, zone, session and paired instance (case-insensitive). */
  text: string;
}

export interface ApplyResult {
  /** Some instance's session changed, joined or left: the session list is worth refreshing. */
  sessionsChanged: boolean;
  changed: number;
  removed: number;
}

const collator = new Intl.Collator('en', { numeric: true, sensitivity: 'base' });

/** Trainers first, then simulators; ids in natural order (sim-2 before sim-10). */
export function compareInstances(a: InstanceInfo, b: InstanceInfo): number {
  if (a.kind !== b.kind) return a.kind === 'trainer' ? -1 : 1;
  return collator.compare(a.instanceId, b.instanceId);
}

export class PoolModel {
  readonly instances = new Map<string, InstanceInfo>();
  simulators: Counts = { ...EMPTY_COUNTS };
  trainers: Counts = { ...EMPTY_COUNTS };
  /** Whether a snapshot has arrived. */
  loaded = false;
  /** Bumped by every applied message. */
  version = 0;
  private order: InstanceInfo[] | null = [];
  private filterCache?: { version: number; key: string; result: InstanceInfo[] };

  apply(msg: WatchResourcePoolResponse): ApplyResult {
    let sessionsChanged = false;
    if (msg.snapshot) {
      const before = new Map([...this.instances].map(([id, i]) => [id, i.sessionId]));
      this.instances.clear();
      for (const i of [...(msg.isaacPool?.instances ?? []), ...(msg.trainingPool?.instances ?? [])]) {
        this.instances.set(i.instanceId, i);
        if (before.get(i.instanceId) !== i.sessionId) sessionsChanged = true;
      }
      if (before.size !== this.instances.size) sessionsChanged = true;
      this.order = null;
      this.loaded = true;
    }
    for (const i of msg.changed) {
      const old = this.instances.get(i.instanceId);
      if (!old) this.order = null;
      else if (this.order) {
        // Keep the sorted array pointing at the current objects.
        const idx = this.indexOf(old);
        if (idx >= 0) this.order[idx] = i;
        else this.order = null;
      }
      if (!old || old.sessionId !== i.sessionId || old.status !== i.status) sessionsChanged = true;
      this.instances.set(i.instanceId, i);
    }
    for (const id of msg.removed) {
      if (this.instances.delete(id)) {
        this.order = null;
        sessionsChanged = true;
      }
    }
    this.simulators = counts(msg.isaacPool, this.simulators);
    this.trainers = counts(msg.trainingPool, this.trainers);
    this.version++;
    return { sessionsChanged, changed: msg.changed.length, removed: msg.removed.length };
  }

  private indexOf(i: InstanceInfo): number {
    const o = this.order!;
    let lo = 0;
    let hi = o.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const c = compareInstances(o[mid]!, i);
      if (c === 0) return mid;
      if (c < 0) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  /** Every instance, trainers first, ids in natural order. */
  sorted(): readonly InstanceInfo[] {
    if (!this.order) this.order = [...this.instances.values()].sort(compareInstances);
    return this.order;
  }

  /** The instances the filter lets through, in `sorted()` order (cached per version and filter). */
  filter(f: PoolFilter): readonly InstanceInfo[] {
    const key = `${f.kind}|${[...f.states].sort().join(',')}|${f.text.trim().toLowerCase()}`;
    const c = this.filterCache;
    if (c && c.version === this.version && c.key === key) return c.result;
    const text = f.text.trim().toLowerCase();
    const all = this.sorted();
    const result =
      !f.kind && !f.states.size && !text
        ? (all as InstanceInfo[])
        : all.filter(
            (i) =>
              (!f.kind || i.kind === f.kind) &&
              (!f.states.size || f.states.has(i.status)) &&
              (!text ||
                i.instanceId.toLowerCase().includes(text) ||
                i.host.toLowerCase().includes(text) ||
                i.zone.toLowerCase().includes(text) ||
                i.sessionId.toLowerCase().includes(text) ||
                i.pairedWith.toLowerCase().includes(text)),
          );
    this.filterCache = { version: this.version, key, result };
    return result;
  }

  /** Instances per state for one kind ('' = both), for the filter chips. */
  stateCounts(kind: PoolFilter['kind']): Record<string, number> {
    const out: Record<string, number> = {};
    for (const i of this.instances.values()) if (!kind || i.kind === kind) out[i.status] = (out[i.status] ?? 0) + 1;
    return out;
  }
}

/**
 * Rows of a virtualised grid: a group header per kind, then rows of `perRow` tiles, each the items
 * `start` to `end` (exclusive) of the list laid out — indices, so that instances replaced in place
 * by later messages are read fresh.
 */
export type GridRow = { type: 'head'; kind: string; count: number; top: number; height: number } | { type: 'tiles'; start: number; end: number; top: number; height: number };

export function layoutRows(items: readonly InstanceInfo[], perRow: number, tileRowHeight: number, headHeight: number): { rows: GridRow[]; height: number } {
  const rows: GridRow[] = [];
  let top = 0;
  let i = 0;
  const n = Math.max(1, perRow);
  while (i < items.length) {
    const kind = items[i]!.kind;
    let j = i;
    while (j < items.length && items[j]!.kind === kind) j++;
    rows.push({ type: 'head', kind, count: j - i, top, height: headHeight });
    top += headHeight;
    for (let k = i; k < j; k += n) {
      rows.push({ type: 'tiles', start: k, end: Math.min(k + n, j), top, height: tileRowHeight });
      top += tileRowHeight;
    }
    i = j;
  }
  return { rows, height: top };
}

/** Index of the first row whose bottom is below `y` (binary search over the row tops). */
export function firstVisibleRow(rows: readonly GridRow[], y: number): number {
  let lo = 0;
  let hi = rows.length - 1;
  let ans = rows.length;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const r = rows[mid]!;
    if (r.top + r.height > y) {
      ans = mid;
      hi = mid - 1;
    } else lo = mid + 1;
  }
  return ans;
}

/**
 * The pool map: one square per instance, as large as fits `width` × `maxHeight` (between 2 and 14 px,
 * with a 1 px gap from 5 px up), row after row.
 */
export function mapLayout(n: number, width: number, maxHeight: number): { cell: number; gap: number; cols: number; rows: number; height: number } {
  const count = Math.max(1, n);
  let cell = 14;
  for (; cell > 2; cell--) {
    const cols = Math.max(1, Math.floor(width / cell));
    if (Math.ceil(count / cols) * cell <= maxHeight) break;
  }
  const cols = Math.max(1, Math.floor(width / cell));
  const rows = Math.ceil(count / cols);
  return { cell, gap: cell >= 5 ? 1 : 0, cols, rows, height: rows * cell };
}
