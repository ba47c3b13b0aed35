/**
 * The two pools and their indexes. Every change to an instance goes through `update`, which keeps the
 * indexes and counts right, so the scheduler can find idle instances by host, zone or warmth without
 * scanning the pool (its cost must not grow with pool size).
 */
import { isAllocatable, statusOf, type Instance, type InstanceKind, type InstanceStatus } from './model.js';

/** An insertion-ordered index of instances under a key. */
class Index {
  private readonly byKey = new Map<string, Map<string, Instance>>();
  add(key: string, i: Instance): void {
    let m = this.byKey.get(key);
    if (!m) this.byKey.set(key, (m = new Map()));
    m.set(i.spec.id, i);
  }
  remove(key: string, i: Instance): void {
    const m = this.byKey.get(key);
    if (!m) return;
    m.delete(i.spec.id);
    if (m.size === 0) this.byKey.delete(key);
  }
  get(key: string): ReadonlyMap<string, Instance> | undefined {
    return this.byKey.get(key);
  }
  size(key: string): number {
    return this.byKey.get(key)?.size ?? 0;
  }
}

export type StatusCounts = Record<InstanceStatus, number>;

function zeroCounts(): StatusCounts {
  return { joining: 0, idle: 0, running: 0, unhealthy: 0, draining: 0 };
}

/** What the pool remembers of an instance's indexed facts, to undo them on change. */
interface Indexed {
  status: InstanceStatus;
  allocatable: boolean;
  host: string;
  zone: string;
  warm: string[];
  gpus: number;
}

export class Pool {
  readonly instances = new Map<string, Instance>();
  /** Allocatable instances per kind, insertion-ordered. */
  private readonly free: Record<InstanceKind, Map<string, Instance>> = { simulator: new Map(), trainer: new Map() };
  private readonly freeSimsByHost = new Index();
  private readonly freeSimsByZone = new Index();
  private readonly freeSimsByRobot = new Index();
  private readonly indexed = new Map<string, Indexed>();
  readonly counts: Record<InstanceKind, StatusCounts> = { simulator: zeroCounts(), trainer: zeroCounts() };
  readonly gpus: Record<InstanceKind, { total: number; idle: number }> = { simulator: { total: 0, idle: 0 }, trainer: { total: 0, idle: 0 } };
  /** Instances changed since the last `takeChanged` (what watchers see). */
  private changed = new Set<string>();
  /** Of those, the ones whose stored form changed (health and metrics are not stored). */
  private stored = new Set<string>();
  private removed = new Set<string>();

  get(id: string): Instance | undefined {
    return this.instances.get(id);
  }

  add(i: Instance): void {
    if (this.instances.has(i.spec.id)) throw new Error(`instance ${i.spec.id} already in the pool`);
    this.instances.set(i.spec.id, i);
    this.index(i);
    this.changed.add(i.spec.id);
    this.stored.add(i.spec.id);
    this.removed.delete(i.spec.id);
  }

  remove(id: string): Instance | undefined {
    const i = this.instances.get(id);
    if (!i) return undefined;
    this.unindex(i);
    this.instances.delete(id);
    this.changed.delete(id);
    this.stored.delete(id);
    this.removed.add(id);
    return i;
  }

  /**
   * Applies `mutate` to an instance and re-indexes it. The only way to change a pooled instance.
   * `store: false` for changes a restart discards anyway (health comes from heartbeats): a pool of
   * 100,000 coming back to life must not rewrite 100,000 rows.
   */
  update(i: Instance, mutate: (i: Instance) => void, store = true): void {
    this.unindex(i);
    mutate(i);
    this.index(i);
    this.changed.add(i.spec.id);
    if (store) this.stored.add(i.spec.id);
  }


  freeOf(kind: InstanceKind): ReadonlyMap<string, Instance> {
    return this.free[kind];
  }
  freeSimsOnHost(host: string): ReadonlyMap<string, Instance> | undefined {
    return this.freeSimsByHost.get(host);
  }
  freeSimsInZone(zone: string): ReadonlyMap<string, Instance> | undefined {
    return this.freeSimsByZone.get(zone);
  }
  freeSimsWarmFor(robot: string): ReadonlyMap<string, Instance> | undefined {
    return this.freeSimsByRobot.get(robot);
  }
  freeSimCountOnHost(host: string): number {
    return this.freeSimsByHost.size(host);
  }
  freeSimCountInZone(zone: string): number {
    return this.freeSimsByZone.size(zone);
  }

  /** Ids changed and removed since the last call. */
  takeChanged(): { changed: string[]; stored: string[]; removed: string[] } {
    const out = { changed: [...this.changed], stored: [...this.stored], removed: [...this.removed] };
    this.changed.clear();
    this.stored.clear();
    this.removed.clear();
    return out;
  }

  private index(i: Instance): void {
    const kind = i.spec.kind;
    const status = statusOf(i);
    const allocatable = isAllocatable(i);
    this.counts[kind][status]++;
    const gpus = i.spec.gpus.length;
    this.gpus[kind].total += gpus;
    if (allocatable) {
      this.gpus[kind].idle += gpus;
      this.free[kind].set(i.spec.id, i);
      if (kind === 'simulator') {
        this.freeSimsByHost.add(i.spec.host, i);
        this.freeSimsByZone.add(i.spec.zone, i);
        for (const r of i.warm) this.freeSimsByRobot.add(r, i);
      }
    }
    // i.warm is never mutated in place (a change assigns a new array), so it can be kept as it is.
    this.indexed.set(i.spec.id, { status, allocatable, host: i.spec.host, zone: i.spec.zone, warm: i.warm, gpus });
  }

  private unindex(i: Instance): void {
    const was = this.indexed.get(i.spec.id);
    if (!was) return;
    const kind = i.spec.kind;
    this.counts[kind][was.status]--;
    this.gpus[kind].total -= was.gpus;
    if (was.allocatable) {
      this.gpus[kind].idle -= was.gpus;
      this.free[kind].delete(i.spec.id);
      if (kind === 'simulator') {
        this.freeSimsByHost.remove(was.host, i);
        this.freeSimsByZone.remove(was.zone, i);
        for (const r of was.warm) this.freeSimsByRobot.remove(r, i);
      }
    }
    this.indexed.delete(i.spec.id);
  }
}
