/**
 * The engine: the pools, the sessions and every rule that ties them together. Pure and synchronous —
 * each command runs to completion in one turn of the event loop, which is what makes gang allocation
 * atomic — and it says what must happen outside as `Effect`s that the service layer carries out.
 * Changes accumulate until `takeChanges()`, which the service layer persists in one transaction before
 * it answers anyone.
 *
 * The invariants of the spec live here:
 *  1. an instance belongs to at most one live session (`allocate` only takes allocatable instances, and
 *     `release` only frees what still points at the session);
 *  2. a gang session holds its trainer and all N simulators or nothing (placement is computed first, then
 *     applied in one synchronous step);
 *  3. every instance is released when a session ends, whichever way (`end` is the only way to end);
 *  4. the same create under the same id returns the same session; a different one is ALREADY_EXISTS;
 *  6. an instance past its heartbeat grace is unhealthy, never allocated, and its session fails; every
 *     allocation raises the epoch that commands carry.
 */
import { NeuroError } from './errors.js';
import {
  controlUrl,
  isLive,
  requestKey,
  type Channel,
  type CreateRequest,
  type EventType,
  type Instance,
  type InstanceSpec,
  type Progress,
  type Session,
  type SessionEvent,
  type SessionState,
  type SimStatus,
} from './model.js';
import { Pool } from './pool.js';
import { DEFAULT_SCHEDULER_OPTIONS, placeGang, placeManual, type SchedulerOptions } from './scheduler/index.js';
import { planPorts } from './channels.js';

export interface EngineOptions {
  /** An instance silent this long is unhealthy. */
  heartbeatGraceMs: number;
  scheduler: SchedulerOptions;
  /** Events kept per session for GetSession. */
  maxEventsPerSession: number;
  /** Ended sessions are forgotten this long after they end. */
  retentionMs: number;
  /** Consecutive beats without a session the instance should run before the session fails. */
  missedBeatsToFail: number;
  /**
   * After a restart, how long instances have to re-attach before they count as silent. Longer than the
   * grace: agents notice the restart and reconnect with backoff, and failing every running session
   * because Neuro itself was down would turn a restart into an outage.
   */
  recoveryGraceMs: number;
}

export const DEFAULT_ENGINE_OPTIONS: EngineOptions = {
  heartbeatGraceMs: 3000,
  scheduler: DEFAULT_SCHEDULER_OPTIONS,
  maxEventsPerSession: 100,
  retentionMs: 24 * 3600 * 1000,
  missedBeatsToFail: 2,
  recoveryGraceMs: 10_000,
};

/** Something the service layer must do to an instance. */
export type Effect =
  | { kind: 'destroy-simulator'; instanceId: string; address: string; sessionId: string; epoch: number; reason: string }
  | { kind: 'stop-trainer'; instanceId: string; address: string; sessionId: string; epoch: number; reason: string }
  | {
      kind: 'set-control';
      sessionId: string;
      epoch: number;
      simulatorId: string;
      /** Empty when the simulator itself made the change and only the trainer needs telling. */
      simulatorAddress: string;
      trainerId: string;
      trainerAddress: string;
      controller: string;
    };

export interface Beat {
  instanceId: string;
  sessions: { sessionId: string; epoch: number }[];
  fps: number;
  gpuUtilization: number;
  warmRobots: string[];
}

export interface Directive {
  instanceId: string;
  stop: { sessionId: string; epoch: number; reason: string }[];
  reregister: boolean;
}

export interface ProgressReport {
  progress: Progress | null;
  channelsConnected: boolean;
  completed: boolean;
  failure: string;
  control: { simulatorId: string; controller: string; reason: string; demonstrations: number } | null;
}

export interface Changes {
  sessions: Session[];
  purgedSessions: string[];
  /** Instances whose stored form changed. */
  instances: Instance[];
  /** Every instance that changed in a way watchers see (a superset of `instances`). */
  shownInstances: Instance[];
  removedInstances: string[];
  events: SessionEvent[];
  epoch: number | null;
}

export interface Snapshot {
  epoch: number;
  instances: Instance[];
  sessions: Session[];
}

const ALLOWED: Record<SessionState, readonly SessionState[]> = {
  PENDING: ['INITIALIZING', 'FAILED'],
  INITIALIZING: ['READY', 'RUNNING', 'STOPPING', 'FAILED'],
  READY: ['STOPPING', 'FAILED'],
  RUNNING: ['STOPPING', 'COMPLETED', 'FAILED'],
  STOPPING: ['TERMINATED', 'FAILED'],
  TERMINATED: [],
  COMPLETED: [],
  FAILED: [],
};

export const AI = 'ai';

/**
 * The empty list every idle instance shares: instance lists are replaced, never changed in place, and
 * a pool of 100,000 should not hold 200,000 empty arrays.
 */
const NONE: string[] = Object.freeze([]) as unknown as string[];

/** Epochs reserved per store write (see `epochReserved`). */
const EPOCH_BLOCK = 1024;

export class Engine {
  readonly pool = new Pool();
  readonly sessions = new Map<string, Session>();
  readonly opts: EngineOptions;
  private epoch = 0;
  /**
   * Epochs are reserved in blocks and the block's end is what the store keeps: a restart resumes past
   * every epoch that may have been handed out, even one whose allocation never reached the store.
   */
  private epochReserved = 0;
  private epochDirty = false;
  /**
   * Instances restored from the store that have not beaten since: they have until `reattachBy`.
   * (The sweep scans the pool — about a millisecond per 100,000 instances — rather than keeping beats
   * in an ordered map: moving 100,000 entries a second in a Map made V8 rehash it constantly, and the
   * discarded tables were most of Neuro's memory at that size.)
   */
  private readonly reattaching = new Set<string>();
  private reattachBy = 0;
  /** Ended session id → end time, in end order, for retention. */
  private readonly ended = new Map<string, number>();
  /** ZeroMQ host → ports held by live sessions. */
  private readonly usedPorts = new Map<string, Set<number>>();
  private readonly missedBeats = new Map<string, number>();
  private readonly dirtySessions = new Set<string>();
  private readonly purged = new Set<string>();
  private events: SessionEvent[] = [];

  constructor(opts: Partial<EngineOptions> = {}) {
    this.opts = { ...DEFAULT_ENGINE_OPTIONS, ...opts };
  }

  get currentEpoch(): number {
    return this.epoch;
  }

  // ------------------------------------------------------------------------------------------
  // Recovery

  /**
   * Loads what the store kept and repairs what a crash can leave half-done. Instances come back
   * `joining` with a fresh grace period: they re-attach on their next heartbeat.
   */
  restore(snap: Snapshot, now: number): { effects: Effect[]; toFinish: string[] } {
    this.epoch = snap.epoch;
    this.epochReserved = snap.epoch;
    // A restored instance is given the recovery grace to re-attach.
    this.reattachBy = now + Math.max(this.opts.recoveryGraceMs, this.opts.heartbeatGraceMs);
    for (const i of snap.instances) {
      i.health = 'joining';
      i.lastHeartbeat = now;
      this.pool.add(i);
      this.reattaching.add(i.spec.id);
    }
    for (const s of snap.sessions) {
      this.sessions.set(s.id, s);
      if (isLive(s)) for (const c of s.channels) this.portsOf(c.host).add(c.port);
    }
    const ended = snap.sessions.filter((s) => !isLive(s)).sort((a, b) => (a.endedAt ?? now) - (b.endedAt ?? now));
    for (const s of ended) this.ended.set(s.id, s.endedAt ?? now);
    // An instance pointing at a session that is not live (or not its) is free: invariant 1 and 3.
    for (const i of this.pool.instances.values()) {
      if (!i.sessionId) continue;
      const s = this.sessions.get(i.sessionId);
      if (!s || !isLive(s) || s.epoch !== i.epoch) this.pool.update(i, (x) => this.clearAllocation(x));
    }
    const effects: Effect[] = [];
    const toFinish: string[] = [];
    for (const s of this.sessions.values()) {
      if (!isLive(s)) continue;
      const missing = this.heldIds(s).filter((id) => this.pool.get(id)?.sessionId !== s.id);
      if (missing.length) {
        effects.push(...this.end(s, 'FAILED', `instance ${missing.join(', ')} left while Neuro was down`, now));
      } else if (s.state === 'PENDING' || (s.state === 'INITIALIZING' && !s.acknowledged)) {
        effects.push(...this.end(s, 'FAILED', 'Neuro restarted before the session was created; retry the create', now));
      } else if (s.state === 'STOPPING') {
        effects.push(...this.stopEffects(s, 'terminated'));
        toFinish.push(s.id);
      }
    }
    this.pool.takeChanged();
    return { effects, toFinish };
  }

  // ------------------------------------------------------------------------------------------
  // Registry

  /** Registers or re-registers instances. A known instance keeps its allocation and drain flag. */
  register(specs: InstanceSpec[], now: number, isStatic = false): void {
    for (const spec of specs) {
      const known = this.pool.get(spec.id);
      if (known) {
        if (known.spec.kind !== spec.kind) {
          throw NeuroError.invalid([{ field: 'instances.kind', description: `instance ${spec.id} is registered as a ${known.spec.kind}` }]);
        }
        this.pool.update(known, (i) => {
          i.spec = spec;
          if (i.health === 'unhealthy') i.health = 'joining';
        });
      } else {
        this.pool.add({
          spec,
          health: 'joining',
          draining: false,
          static: isStatic,
          sessionId: null,
          epoch: 0,
          pairedWith: null,
          paired: NONE,
          lastHeartbeat: now,
          fps: 0,
          gpuUtilization: 0,
          warm: NONE,
          portCursor: 0,
        });
      }
      this.pool.get(spec.id)!.lastHeartbeat = now;
    }
  }

  /** Instances leave the pool; a session one of them held fails. */
  deregister(ids: string[], now: number): Effect[] {
    const effects: Effect[] = [];
    for (const id of ids) {
      const i = this.pool.get(id);
      if (!i) continue;
      if (i.sessionId) {
        const s = this.sessions.get(i.sessionId);
        if (s && isLive(s)) effects.push(...this.end(s, 'FAILED', `instance ${id} deregistered`, now, new Set([id])));
      }
      this.pool.remove(id);
      this.reattaching.delete(id);
      this.missedBeats.delete(id);
    }
    return effects;
  }

  /**
   * Beats from instances. Reconciles: a session an instance runs that Neuro has ended is stopped
   * (directive); a session Neuro thinks the instance runs and the instance does not report, for
   * `missedBeatsToFail` beats in a row, fails.
   */
  heartbeat(beats: Beat[], now: number): { directives: Directive[]; effects: Effect[] } {
    const directives: Directive[] = [];
    const effects: Effect[] = [];
    for (const b of beats) {
      const i = this.pool.get(b.instanceId);
      if (!i) {
        directives.push({ instanceId: b.instanceId, stop: [], reregister: true });
        continue;
      }
      if (this.reattaching.size) this.reattaching.delete(b.instanceId);
      const warmChanged = b.warmRobots.length !== i.warm.length || b.warmRobots.some((r, k) => i.warm[k] !== r);
      if (i.health !== 'healthy' || warmChanged) {
        this.pool.update(
          i,
          (x) => {
            x.health = 'healthy';
            if (warmChanged) x.warm = [...b.warmRobots];
          },
          false,
        );
      }
      i.lastHeartbeat = now;
      i.fps = b.fps;
      i.gpuUtilization = b.gpuUtilization;
      let reportsOwn = false;
      let stop: Directive['stop'] | undefined;
      for (const r of b.sessions) {
        if (i.sessionId === r.sessionId && i.epoch === r.epoch) reportsOwn = true;
        else (stop ??= []).push({ sessionId: r.sessionId, epoch: r.epoch, reason: 'the session has ended in Neuro' });
      }
      if (stop) directives.push({ instanceId: i.spec.id, stop, reregister: false });
      if (i.sessionId && !reportsOwn) {
        const s = this.sessions.get(i.sessionId);
        // A beat built before the instance accepted the session can arrive after READY when beats queue
        // up under load: misses count only once the session is older than the grace.
        if (s && (s.state === 'READY' || s.state === 'RUNNING') && now - s.createdAt > this.opts.heartbeatGraceMs) {
          const n = (this.missedBeats.get(i.spec.id) ?? 0) + 1;
          if (n >= this.opts.missedBeatsToFail) {
            this.missedBeats.delete(i.spec.id);
            effects.push(...this.end(s, 'FAILED', `instance ${i.spec.id} no longer runs the session`, now));
          } else this.missedBeats.set(i.spec.id, n);
        }
      } else if (this.missedBeats.size) this.missedBeats.delete(i.spec.id);
    }
    return { directives, effects };
  }

  /** Marks silent instances unhealthy (failing their sessions) and forgets old ended sessions. */
  sweep(now: number): Effect[] {
    const effects: Effect[] = [];
    const grace = this.opts.heartbeatGraceMs;
    for (const i of this.pool.instances.values()) {
      if (i.health === 'unhealthy') continue;
      const id = i.spec.id;
      const last = i.lastHeartbeat;
      if (this.reattaching.size && this.reattaching.has(id)) {
        if (now <= this.reattachBy) continue;
        this.reattaching.delete(id);
      } else if (now - last <= grace) continue;
      this.pool.update(i, (x) => (x.health = 'unhealthy'), false);
      if (i.sessionId) {
        const s = this.sessions.get(i.sessionId);
        if (s && isLive(s)) {
          effects.push(...this.end(s, 'FAILED', `instance ${id} missed heartbeats for ${Math.round((now - last) / 100) / 10} s`, now, new Set([id])));
        }
      }
    }
    for (const [id, endedAt] of this.ended) {
      if (now - endedAt < this.opts.retentionMs) break;
      this.ended.delete(id);
      this.sessions.delete(id);
      this.dirtySessions.delete(id);
      this.purged.add(id);
    }
    return effects;
  }

  drain(id: string, draining: boolean): Instance {
    const i = this.pool.get(id);
    if (!i) throw NeuroError.notFound('instance', id);
    if (i.draining !== draining) this.pool.update(i, (x) => (x.draining = draining));
    return i;
  }

  // ------------------------------------------------------------------------------------------
  // Sessions

  /**
   * Looks up an earlier create under the same id. Returns the session when the request is the same
   * (a retry), undefined when the id is free, and throws ALREADY_EXISTS when it is a different request.
   * A same-request session that failed before its create was ever acknowledged is forgotten so the retry
   * runs afresh (a crash must not turn a retry into a permanent failure).
   */
  existing(req: CreateRequest): Session | undefined {
    const s = this.sessions.get(req.sessionId);
    if (!s) return undefined;
    if (s.requestKey !== requestKey(req)) {
      throw new NeuroError(
        'ALREADY_EXISTS',
        'SESSION_EXISTS',
        `session ${JSON.stringify(req.sessionId)} already exists with a different request (${s.mode}, ${s.state.toLowerCase()})`,
        { resource: { type: 'session', name: req.sessionId } },
      );
    }
    if (s.state === 'FAILED' && !s.acknowledged) {
      this.sessions.delete(s.id);
      this.ended.delete(s.id);
      this.purged.add(s.id);
      return undefined;
    }
    return s;
  }

  /** Allocates what a create needs, all or nothing, and records the session as INITIALIZING. */
  create(req: CreateRequest, now: number): Session {
    if (this.sessions.has(req.sessionId)) throw new Error(`create of existing session ${req.sessionId}; call existing() first`);
    const labels = req.mode === 'MANUAL' ? req.labels : (req.requirements?.labels ?? {});
    const s: Session = {
      id: req.sessionId,
      mode: req.mode,
      request: req,
      requestKey: requestKey(req),
      state: 'PENDING',
      epoch: 0,
      simulators: [],
      trainer: null,
      channels: [],
      placements: [],
      controllers: {},
      controlUrls: {},
      progress: null,
      trainingStatus: req.mode === 'MANUAL' ? null : 'INITIALIZING',
      simStatus: { status: 'INITIALIZING', fps: 0, gpuUtilization: 0 },
      failureReason: '',
      createdAt: now,
      updatedAt: now,
      endedAt: null,
      acknowledged: false,
      events: [],
      eventSeq: 0,
    };
    if (req.mode === 'MANUAL') {
      const p = placeManual(this.pool, { robot: req.scene.robotUrdf, labels }, this.opts.scheduler);
      s.epoch = this.nextEpoch();
      s.simulators = [p.simulator.spec.id];
      s.placements = [p.placement];
      this.pool.update(p.simulator, (i) => {
        i.sessionId = s.id;
        i.epoch = s.epoch;
      });
    } else {
      const r = req.requirements!;
      const p = placeGang(
        this.pool,
        { robot: req.scene.robotUrdf, labels, gpus: r.trainingGpus, memoryGb: r.trainingMemoryGb, simulators: r.simulators },
        this.opts.scheduler,
      );
      // Ports are planned before anything is taken, so a shortage leaves the pool untouched.
      const ports = planPorts(p.simulators, (host) => this.portsOf(host));
      s.epoch = this.nextEpoch();
      s.trainer = p.trainer.spec.id;
      s.simulators = p.simulators.map((i) => i.spec.id);
      s.placements = p.placements;
      s.channels = p.simulators.map((sim, k): Channel => {
        const port = ports[k]!;
        this.portsOf(sim.spec.zmqHost).add(port);
        return { simulatorId: sim.spec.id, host: sim.spec.zmqHost, port, endpoint: `tcp://${sim.spec.zmqHost}:${port}`, state: 'PENDING' };
      });
      for (const [k, sim] of p.simulators.entries()) {
        this.pool.update(sim, (i) => {
          i.sessionId = s.id;
          i.epoch = s.epoch;
          i.pairedWith = p.trainer.spec.id;
          i.portCursor = ports[k]! + 1;
        });
      }
      this.pool.update(p.trainer, (i) => {
        i.sessionId = s.id;
        i.epoch = s.epoch;
        i.paired = [...s.simulators];
      });
      if (req.mode === 'HYBRID') {
        const first = req.hybrid?.initialController || AI;
        for (const id of s.simulators) s.controllers[id] = { controller: first, since: now, demonstrations: 0 };
      }
    }
    for (const id of s.simulators) s.controlUrls[id] = controlUrl(this.pool.get(id)!.spec.controlWsBase, s.id);
    this.sessions.set(s.id, s);
    this.transition(s, 'INITIALIZING', `allocated ${[s.trainer, ...s.simulators].filter(Boolean).join(', ')} (epoch ${s.epoch})`, now);
    return s;
  }

  /** The instances said yes: the caller is told it succeeded. MANUAL becomes READY. */
  acknowledge(id: string, now: number, simStatus?: SimStatus): Session {
    const s = this.mustGet(id);
    if (!isLive(s)) return s;
    s.acknowledged = true;
    if (simStatus) s.simStatus = simStatus;
    if (s.mode === 'MANUAL' && s.state === 'INITIALIZING') this.transition(s, 'READY', 'scene loaded, stream open', now);
    else if (s.channels.length) {
      for (const c of s.channels) if (c.state === 'PENDING') c.state = 'BOUND';
      this.touch(s, now);
    }
    return s;
  }

  /** Ends a live session as FAILED and releases it. `skip`: instances not to send commands to (dead). */
  fail(id: string, reason: string, now: number, skip?: Set<string>): Effect[] {
    const s = this.sessions.get(id);
    if (!s || !isLive(s)) return [];
    return this.end(s, 'FAILED', reason, now, skip);
  }

  /**
   * Starts a terminate: STOPPING, with the stop commands to send. Idempotent: an ended session answers
   * with nothing to do; a stopping one repeats its commands.
   */
  beginTerminate(id: string, reason: string, now: number): { session: Session; effects: Effect[] } {
    const s = this.mustGet(id);
    if (!isLive(s)) return { session: s, effects: [] };
    if (s.state !== 'STOPPING') this.transition(s, 'STOPPING', reason ? `terminating: ${reason}` : 'terminating', now);
    return { session: s, effects: this.stopEffects(s, reason || 'terminated') };
  }

  /** Completes a terminate once the stop commands were sent: TERMINATED, everything released. */
  finishTerminate(id: string, now: number): Session {
    const s = this.mustGet(id);
    if (s.state === 'STOPPING') this.end(s, 'TERMINATED', 'terminated', now, undefined, false);
    return s;
  }

  /** The simulator's status after Start/StopSimulation. */
  setSimStatus(id: string, status: SimStatus, now: number): void {
    const s = this.mustGet(id);
    s.simStatus = status;
    this.emit(s, 'state', `simulation ${status.status.toLowerCase()}`, now);
  }

  /** A trainer's (or a simulator's) report on its session. */
  report(instanceId: string, sessionId: string, epoch: number, r: ProgressReport, now: number): { stop: boolean; effects: Effect[]; session?: Session } {
    const s = this.sessions.get(sessionId);
    if (!s || !isLive(s) || s.epoch !== epoch || !this.heldIds(s).includes(instanceId)) return { stop: true, effects: [] };
    const effects: Effect[] = [];
    if (r.control) effects.push(...this.controlReturned(s, r.control, now));
    if (instanceId !== s.trainer) return { stop: false, effects, session: s };
    if (r.failure) return { stop: true, effects: [...effects, ...this.end(s, 'FAILED', `training failed: ${r.failure}`, now)], session: s };
    if (r.progress) {
      s.progress = r.progress;
      for (const [sim, n] of Object.entries(r.progress.demonstrations)) {
        const c = s.controllers[sim];
        if (c) c.demonstrations = n;
      }
      for (const ch of s.channels) {
        const rc = r.progress.channels.find((x) => x.simulatorId === ch.simulatorId);
        if (rc) ch.state = rc.state;
      }
      this.emit(s, 'progress', `${r.progress.episodesDone}/${r.progress.totalEpisodes} episodes, mean reward ${r.progress.meanReward.toFixed(3)}`, now, {
        progress: r.progress,
      });
    }
    if (r.channelsConnected && s.state === 'INITIALIZING') {
      for (const c of s.channels) c.state = 'CONNECTED';
      s.trainingStatus = 'RUNNING';
      this.transition(s, 'RUNNING', `trainer connected to ${s.channels.length} simulator${s.channels.length === 1 ? '' : 's'}`, now);
    }
    if (r.completed && s.state === 'RUNNING') {
      effects.push(...this.end(s, 'COMPLETED', `training completed: ${s.progress?.episodesDone ?? 0} episodes`, now));
      return { stop: true, effects, session: s };
    }
    return { stop: false, effects, session: s };
  }

  /** HYBRID: a human takes a simulator over. */
  takeControl(sessionId: string, simulatorId: string, user: string, force: boolean, now: number): { session: Session; effects: Effect[]; previous: string } {
    const { s, c } = this.controlTarget(sessionId, simulatorId);
    const previous = c.controller;
    if (previous === user) return { session: s, effects: [], previous };
    if (previous !== AI) {
      if (!force) {
        throw new NeuroError('FAILED_PRECONDITION', 'CONTROL_HELD', `${simulatorId} is controlled by ${previous}; ask them to release it or take it with force`, {
          metadata: { controller: previous },
        });
      }
      if (!s.request.hybrid?.allowForceTakeover) {
        throw new NeuroError('PERMISSION_DENIED', 'FORCE_NOT_ALLOWED', `${simulatorId} is controlled by ${previous} and this session does not allow a forced take-over`, {
          metadata: { controller: previous },
        });
      }
    }
    return { session: s, effects: this.setController(s, simulatorId, user, previous === AI ? `${user} took control` : `${user} took control from ${previous}`, now, true), previous };
  }

  /** HYBRID: the human hands the simulator back to the AI. */
  releaseControl(sessionId: string, simulatorId: string, user: string, now: number): { session: Session; effects: Effect[] } {
    const { s, c } = this.controlTarget(sessionId, simulatorId);
    if (c.controller === AI) return { session: s, effects: [] };
    if (user && c.controller !== user) {
      throw new NeuroError('FAILED_PRECONDITION', 'CONTROL_HELD', `${simulatorId} is controlled by ${c.controller}, not ${user}`, { metadata: { controller: c.controller } });
    }
    return { session: s, effects: this.setController(s, simulatorId, AI, `${c.controller} released control`, now, true) };
  }

  /** Undoes a take/release whose commands the instances refused. */
  revertControl(sessionId: string, simulatorId: string, controller: string, why: string, now: number): void {
    const s = this.sessions.get(sessionId);
    const c = s?.controllers[simulatorId];
    if (!s || !c || !isLive(s)) return;
    c.controller = controller;
    c.since = now;
    this.emit(s, 'control', `control change undone: ${why}`, now, { simulatorId, controller });
  }

  takeChanges(): Changes {
    const { changed, stored, removed } = this.pool.takeChanged();
    const out: Changes = {
      sessions: [...this.dirtySessions].map((id) => this.sessions.get(id)!).filter(Boolean),
      purgedSessions: [...this.purged],
      instances: stored.map((id) => this.pool.get(id)!).filter(Boolean),
      shownInstances: changed.map((id) => this.pool.get(id)!).filter(Boolean),
      removedInstances: removed,
      events: this.events,
      epoch: this.epochDirty ? this.epochReserved : null,
    };
    this.dirtySessions.clear();
    this.purged.clear();
    this.events = [];
    this.epochDirty = false;
    return out;
  }

  get(id: string): Session | undefined {
    return this.sessions.get(id);
  }

  mustGet(id: string): Session {
    const s = this.sessions.get(id);
    if (!s) throw NeuroError.notFound('session', id);
    return s;
  }

  /** Instance ids a session holds (trainer first). */
  heldIds(s: Session): string[] {
    return s.trainer ? [s.trainer, ...s.simulators] : [...s.simulators];
  }

  // ------------------------------------------------------------------------------------------
  // Internals

  private nextEpoch(): number {
    if (++this.epoch > this.epochReserved) {
      this.epochReserved = this.epoch + EPOCH_BLOCK - 1;
      this.epochDirty = true;
    }
    return this.epoch;
  }

  private portsOf(host: string): Set<number> {
    let p = this.usedPorts.get(host);
    if (!p) this.usedPorts.set(host, (p = new Set()));
    return p;
  }

  private controlTarget(sessionId: string, simulatorId: string) {
    const s = this.mustGet(sessionId);
    if (s.mode !== 'HYBRID') {
      throw new NeuroError('FAILED_PRECONDITION', 'NOT_HYBRID', `session ${sessionId} is ${s.mode}; control can be taken only in a HYBRID session`);
    }
    if (!isLive(s)) throw new NeuroError('FAILED_PRECONDITION', 'SESSION_ENDED', `session ${sessionId} has ended (${s.state.toLowerCase()})`);
    const c = s.controllers[simulatorId];
    if (!c) {
      throw new NeuroError('INVALID_ARGUMENT', 'NOT_IN_SESSION', `isaac_instance_id: ${simulatorId} is not a simulator of session ${sessionId}`, {
        fieldViolations: [{ field: 'isaac_instance_id', description: `not a simulator of session ${sessionId} (${s.simulators.join(', ')})` }],
      });
    }
    return { s, c };
  }

  private setController(s: Session, simulatorId: string, controller: string, message: string, now: number, tellSimulator: boolean): Effect[] {
    const c = s.controllers[simulatorId]!;
    c.controller = controller;
    c.since = now;
    this.emit(s, 'control', message, now, { simulatorId, controller });
    const sim = this.pool.get(simulatorId);
    const trainer = s.trainer ? this.pool.get(s.trainer) : undefined;
    return [
      {
        kind: 'set-control',
        sessionId: s.id,
        epoch: s.epoch,
        simulatorId,
        simulatorAddress: tellSimulator ? (sim?.spec.address ?? '') : '',
        trainerId: s.trainer ?? '',
        trainerAddress: trainer?.spec.address ?? '',
        controller,
      },
    ];
  }

  private controlReturned(s: Session, n: NonNullable<ProgressReport['control']>, now: number): Effect[] {
    const c = s.controllers[n.simulatorId];
    if (!c || c.controller === n.controller) return [];
    const who = c.controller;
    c.demonstrations = Math.max(c.demonstrations, n.demonstrations);
    return this.setController(s, n.simulatorId, n.controller, `control returned to ${n.controller} from ${who}: ${n.reason}`, now, false);
  }

  private stopEffects(s: Session, reason: string, skip?: Set<string>): Effect[] {
    const effects: Effect[] = [];
    for (const id of this.heldIds(s)) {
      if (skip?.has(id)) continue;
      const i = this.pool.get(id);
      if (!i || i.sessionId !== s.id) continue;
      effects.push({
        kind: i.spec.kind === 'trainer' ? 'stop-trainer' : 'destroy-simulator',
        instanceId: id,
        address: i.spec.address,
        sessionId: s.id,
        epoch: s.epoch,
        reason,
      });
    }
    return effects;
  }

  /** The only way a session ends: state, reason, and every instance it held released (invariant 3). */
  private end(s: Session, to: 'FAILED' | 'COMPLETED' | 'TERMINATED', reason: string, now: number, skip?: Set<string>, sendStops = true): Effect[] {
    const effects = sendStops ? this.stopEffects(s, reason, skip) : [];
    if (to === 'FAILED') s.failureReason = reason;
    if (s.trainingStatus) s.trainingStatus = to === 'FAILED' ? 'FAILED' : to === 'COMPLETED' ? 'COMPLETED' : 'STOPPED';
    for (const [sim, c] of Object.entries(s.controllers)) {
      if (c.controller !== AI) {
        this.emit(s, 'control', `control of ${sim} by ${c.controller} ended: ${reason}`, now, { simulatorId: sim, controller: AI });
        c.controller = AI;
        c.since = now;
      }
    }
    for (const c of s.channels) {
      c.state = 'CLOSED';
      this.usedPorts.get(c.host)?.delete(c.port);
    }
    for (const id of this.heldIds(s)) {
      const i = this.pool.get(id);
      if (i && i.sessionId === s.id) this.pool.update(i, (x) => this.clearAllocation(x));
      this.missedBeats.delete(id);
    }
    s.endedAt = now;
    this.transition(s, to, reason, now);
    this.ended.set(s.id, now);
    return effects;
  }

  private clearAllocation(i: Instance): void {
    i.sessionId = null;
    i.epoch = 0;
    i.pairedWith = null;
    i.paired = NONE;
  }

  private transition(s: Session, to: SessionState, message: string, now: number): void {
    if (s.state === to) return;
    if (!ALLOWED[s.state].includes(to)) throw new Error(`session ${s.id}: ${s.state} → ${to} is not a transition`);
    s.state = to;
    this.emit(s, 'state', message, now);
  }

  private touch(s: Session, now: number): void {
    s.updatedAt = now;
    this.dirtySessions.add(s.id);
  }

  private emit(s: Session, type: EventType, message: string, now: number, extra: Partial<SessionEvent> = {}): void {
    const e: SessionEvent = { sessionId: s.id, sequence: ++s.eventSeq, time: now, type, state: s.state, message, ...extra };
    s.events.push(e);
    if (s.events.length > this.opts.maxEventsPerSession) s.events.splice(0, s.events.length - this.opts.maxEventsPerSession);
    this.events.push(e);
    this.touch(s, now);
  }
}

