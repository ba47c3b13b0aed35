/**
 * The scheduler, in the manner of Nomad's: candidates come from indexed sources in topology order,
 * pass feasibility filters, get ranked, and the best are selected. A read-only view of the pool in,
 * a placement out: applying it is the engine's job. Every score is kept per stage so GetSession can say
 * why an instance was chosen.
 *
 * Cost: each placement examines at most `candidateLimit` feasible candidates beyond what it needs, taken
 * from hash-indexed sets, so it does not grow with the pool (a selective label filter can make it scan,
 * and then the filtered counts say so).
 */
import { NeuroError } from '../errors.js';
import type { Instance, Placement, ScoreComponent } from '../model.js';
import type { Pool } from '../pool.js';

export interface SchedulerOptions {
  /** pack: fill hosts that are already busy; spread: prefer hosts with the most idle simulators. */
  policy: 'pack' | 'spread';
  /** Feasible candidates ranked per placement beyond those needed (Nomad's limit iterator). */
  candidateLimit: number;
}

export const DEFAULT_SCHEDULER_OPTIONS: SchedulerOptions = { policy: 'spread', candidateLimit: 8 };

export interface ManualAsk {
  robot: string;
  labels: Record<string, string>;
}

export interface GangAsk {
  robot: string;
  labels: Record<string, string>;
  gpus: number;
  memoryGb: number;
  simulators: number;
}

export interface ManualPlacement {
  simulator: Instance;
  placement: Placement;
}

export interface GangPlacement {
  trainer: Instance;
  simulators: Instance[];
  placements: Placement[];
}

interface Ranked {
  inst: Instance;
  scores: ScoreComponent[];
  total: number;
  why: string[];
}

function matchesLabels(i: Instance, labels: Record<string, string>): boolean {
  for (const k in labels) if (i.spec.labels[k] !== labels[k]) return false;
  return true;
}

function bump(filtered: Record<string, number>, why: string): void {
  filtered[why] = (filtered[why] ?? 0) + 1;
}

/** Yields each instance of the sources once, in source order. */
function* candidates(sources: (ReadonlyMap<string, Instance> | undefined)[]): Generator<Instance> {
  const seen = new Set<string>();
  for (const src of sources) {
    if (!src) continue;
    for (const i of src.values()) {
      if (seen.has(i.spec.id)) continue;
      seen.add(i.spec.id);
      yield i;
    }
  }
}

function hostScore(pool: Pool, i: Instance, opts: SchedulerOptions): ScoreComponent {
  const free = pool.freeSimCountOnHost(i.spec.host);
  // pack: the fewer idle simulators a host has left, the better; spread: the more, the better.
  const value = opts.policy === 'pack' ? 1 / (1 + free) : free / (1 + free);
  return { name: opts.policy, value: round(value) };
}

function round(v: number): number {
  return Math.round(v * 1000) / 1000;
}

function placement(r: Ranked, role: Instance['spec']['kind'], considered: number, filtered: Record<string, number>): Placement {
  return {
    instanceId: r.inst.spec.id,
    role,
    score: round(r.total),
    scores: r.scores,
    reason: r.why.join('; '),
    candidatesConsidered: considered,
    filtered: { ...filtered },
  };
}

/** MANUAL: the best idle simulator, preferring one warm for the robot. */
export function placeManual(pool: Pool, ask: ManualAsk, opts: SchedulerOptions = DEFAULT_SCHEDULER_OPTIONS): ManualPlacement {
  const filtered: Record<string, number> = {};
  const ranked: Ranked[] = [];
  let considered = 0;
  for (const i of candidates([pool.freeSimsWarmFor(ask.robot), pool.freeOf('simulator')])) {
    considered++;
    if (!matchesLabels(i, ask.labels)) {
      bump(filtered, 'labels');
      continue;
    }
    const warm = i.warm.includes(ask.robot) ? 1 : 0;
    const spread = hostScore(pool, i, opts);
    const why = [warm ? `warm (${ask.robot} loaded before)` : 'idle', `${opts.policy} score ${spread.value} on host ${i.spec.host}`];
    ranked.push({ inst: i, scores: [{ name: 'warm', value: warm }, spread], total: warm + spread.value, why });
    if (ranked.length >= opts.candidateLimit) break;
  }
  const best = ranked.reduce<Ranked | undefined>((b, r) => (!b || r.total > b.total ? r : b), undefined);
  if (!best) throw exhausted(pool, { simulators: 1, labels: ask.labels });
  return { simulator: best.inst, placement: placement(best, 'simulator', considered, filtered) };
}

/** TRAINING/HYBRID: a trainer first, then the N best simulators relative to it; all or nothing. */
export function placeGang(pool: Pool, ask: GangAsk, opts: SchedulerOptions = DEFAULT_SCHEDULER_OPTIONS): GangPlacement {
  // Trainer: feasible by GPUs, memory and labels; ranked by how many idle simulators sit on its host and
  // zone (so the channels stay local), then by how snugly it fits (leave big trainers for big jobs).
  const tFiltered: Record<string, number> = {};
  const tRanked: Ranked[] = [];
  let tConsidered = 0;
  const n = ask.simulators;
  for (const t of pool.freeOf('trainer').values()) {
    tConsidered++;
    if (t.spec.gpus.length < ask.gpus) {
      bump(tFiltered, 'gpus');
      continue;
    }
    if (t.spec.memoryGb < ask.memoryGb) {
      bump(tFiltered, 'memory');
      continue;
    }
    if (!matchesLabels(t, ask.labels)) {
      bump(tFiltered, 'labels');
      continue;
    }
    const onHost = Math.min(n, pool.freeSimCountOnHost(t.spec.host)) / n;
    const inZone = Math.min(n, pool.freeSimCountInZone(t.spec.zone)) / n;
    const fit = 1 / (1 + t.spec.gpus.length - ask.gpus);
    const scores = [
      { name: 'simulators_on_host', value: round(onHost) },
      { name: 'simulators_in_zone', value: round(inZone) },
      { name: 'gpu_fit', value: round(fit) },
    ];
    const why = [
      `${pool.freeSimCountOnHost(t.spec.host)} idle simulators on host ${t.spec.host}`,
      `${pool.freeSimCountInZone(t.spec.zone)} in zone ${t.spec.zone}`,
      `${t.spec.gpus.length} GPUs for ${ask.gpus} asked`,
    ];
    tRanked.push({ inst: t, scores, total: 2 * onHost + inZone + 0.5 * fit, why });
    if (tRanked.length >= opts.candidateLimit) break;
  }
  const trainer = tRanked.reduce<Ranked | undefined>((b, r) => (!b || r.total > b.total ? r : b), undefined);

  // Simulators: same host as the trainer first, then its zone, then anywhere.
  const sFiltered: Record<string, number> = {};
  const sRanked: Ranked[] = [];
  let sConsidered = 0;
  const host = trainer?.inst.spec.host;
  const zone = trainer?.inst.spec.zone;
  const sources = trainer
    ? [pool.freeSimsOnHost(host!), pool.freeSimsInZone(zone!), pool.freeSimsWarmFor(ask.robot), pool.freeOf('simulator')]
    : [pool.freeOf('simulator')];
  for (const s of candidates(sources)) {
    sConsidered++;
    if (!matchesLabels(s, ask.labels)) {
      bump(sFiltered, 'labels');
      continue;
    }
    const topo = s.spec.host === host ? 1 : s.spec.zone === zone ? 0.5 : 0;
    const warm = s.warm.includes(ask.robot) ? 1 : 0;
    const why = [
      topo === 1 ? `same host as ${trainer?.inst.spec.id} (${host})` : topo === 0.5 ? `same zone as ${trainer?.inst.spec.id} (${zone})` : `other zone (${s.spec.zone})`,
    ];
    if (warm) why.push(`warm (${ask.robot} loaded before)`);
    sRanked.push({ inst: s, scores: [{ name: 'topology', value: topo }, { name: 'warm', value: warm }], total: 2 * topo + 0.5 * warm, why });
    if (sRanked.length >= n + opts.candidateLimit) break;
  }
  if (!trainer || sRanked.length < n) {
    throw exhausted(pool, { simulators: n, labels: ask.labels, trainer: { gpus: ask.gpus, memoryGb: ask.memoryGb, found: !!trainer }, simsFound: sRanked.length });
  }
  // Stable: among equal scores the topology order of the sources stands.
  const chosen = sRanked
    .map((r, idx) => ({ r, idx }))
    .sort((a, b) => b.r.total - a.r.total || a.idx - b.idx)
    .slice(0, n)
    .map((x) => x.r);
  return {
    trainer: trainer.inst,
    simulators: chosen.map((r) => r.inst),
    placements: [placement(trainer, 'trainer', tConsidered, tFiltered), ...chosen.map((r) => placement(r, 'simulator', sConsidered, sFiltered))],
  };
}

/** RESOURCE_EXHAUSTED that says what is missing. Only on the failure path, so it may scan. */
function exhausted(
  pool: Pool,
  need: { simulators: number; labels: Record<string, string>; trainer?: { gpus: number; memoryGb: number; found: boolean }; simsFound?: number },
): NeuroError {
  const hasLabels = Object.keys(need.labels).length > 0;
  const labelText = hasLabels ? ` matching ${Object.entries(need.labels).map(([k, v]) => `${k}=${v}`).join(',')}` : '';
  const problems: string[] = [];
  const quota: { subject: string; description: string }[] = [];
  let idleSims = 0;
  for (const s of pool.freeOf('simulator').values()) if (matchesLabels(s, need.labels)) idleSims++;
  if (idleSims < need.simulators) {
    const text = `need ${need.simulators} idle simulator${need.simulators === 1 ? '' : 's'}${labelText}, ${idleSims} idle`;
    problems.push(text);
    quota.push({ subject: 'simulators', description: text });
  }
  if (need.trainer && !need.trainer.found) {
    let largest: Instance | undefined;
    for (const t of pool.freeOf('trainer').values()) {
      if (!matchesLabels(t, need.labels)) continue;
      if (!largest || t.spec.gpus.length > largest.spec.gpus.length || (t.spec.gpus.length === largest.spec.gpus.length && t.spec.memoryGb > largest.spec.memoryGb)) largest = t;
    }
    const has = largest ? `largest idle has ${largest.spec.gpus.length} GPUs and ${largest.spec.memoryGb} GB` : 'no trainer idle';
    const text = `need a trainer with ${need.trainer.gpus} GPUs and ${need.trainer.memoryGb} GB${labelText}, ${has}`;
    problems.push(text);
    quota.push({ subject: 'trainers', description: text });
  }
  if (!problems.length) problems.push(`need ${need.simulators} idle simulators${labelText}, found ${need.simsFound ?? 0} among the candidates`);
  return new NeuroError('RESOURCE_EXHAUSTED', 'POOL_EXHAUSTED', problems.join('; '), { quotaViolations: quota });
}
