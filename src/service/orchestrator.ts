/**
 * The application service: runs the engine's commands, persists their changes before answering, carries
 * out their effects on the instances, and tells watchers. This is where time and I/O enter; the rules
 * stay in the engine.
 */
import type { Logger } from 'pino';
import { NeuroError } from '../core/errors.js';
import { AI, Engine, type Beat, type Effect, type EngineOptions, type ProgressReport } from '../core/engine.js';
import { isLive, requestKey, type CreateRequest, type Instance, type InstanceSpec, type Session, type SessionEvent, type SimStatus } from '../core/model.js';
import type { SqliteStore } from '../store/sqlite.js';
import type { InstanceClients } from '../workers/instance-clients.js';
import { modeToProto, sceneToProto } from '../rpc/convert.js';

export interface OrchestratorOptions {
  engine?: Partial<EngineOptions>;
  /** How often silent instances are looked for. */
  sweepIntervalMs: number;
  /** Neuro's gRPC address as instances should dial it (progress reports). */
  reportAddress: string;
  logger: Logger;
  /** A clock for tests; Date.now by default. */
  now?: () => number;
}

type SessionListener = (e: SessionEvent, s: Session) => void;
type PoolListener = (changed: Instance[], removed: string[]) => void;

export class Orchestrator {
  readonly engine: Engine;
  private readonly now: () => number;
  private readonly inflight = new Map<string, Promise<Session>>();
  private readonly sessionListeners = new Map<string, Set<SessionListener>>();
  private readonly poolListeners = new Set<PoolListener>();
  private sweepTimer?: NodeJS.Timeout;
  private readonly log: Logger;
  /** Effects under way, so shutdown can wait for them. */
  private readonly pending = new Set<Promise<unknown>>();

  constructor(
    private readonly store: SqliteStore,
    private readonly clients: InstanceClients,
    private readonly opts: OrchestratorOptions,
  ) {
    this.engine = new Engine(opts.engine);
    this.now = opts.now ?? Date.now;
    this.log = opts.logger;
  }

  /** Loads the store, repairs what a crash left half-done, and starts the sweep. */
  start(): { sessions: number; instances: number } {
    const snap = this.store.load();
    const { effects, toFinish } = this.engine.restore(snap, this.now());
    this.commit();
    const live = snap.sessions.filter(isLive).length;
    this.log.info({ sessions: snap.sessions.length, live, instances: snap.instances.length, epoch: snap.epoch }, 'state restored');
    this.track(
      this.perform(effects).then(() => {
        for (const id of toFinish) this.engine.finishTerminate(id, this.now());
        this.commit();
      }),
    );
    this.sweepTimer = setInterval(() => this.sweep(), this.opts.sweepIntervalMs);
    this.sweepTimer.unref();
    return { sessions: snap.sessions.length, instances: snap.instances.length };
  }

  /** Where instances send progress reports (known only once the gRPC port is bound). */
  setReportAddress(address: string): void {
    this.opts.reportAddress = address;
  }

  /** Stops the sweep and waits for effects under way (bounded by the instance call deadline). */
  async stop(): Promise<void> {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    await Promise.allSettled([...this.pending, ...this.inflight.values()]);
    this.commit();
  }

  // ------------------------------------------------------------------------------------------
  // Sessions

  /**
   * Creates a session of any mode. Idempotent on session_id: a retry of the same request (even while
   * the first is under way) gets the same session; a different request gets ALREADY_EXISTS.
   */
  create(req: CreateRequest): Promise<Session> {
    const running = this.inflight.get(req.sessionId);
    if (running) {
      const s = this.engine.get(req.sessionId);
      if (s && s.requestKey !== requestKey(req)) this.engine.existing(req);
      return running;
    }
    const existing = this.engine.existing(req);
    this.commit();
    if (existing) return Promise.resolve(existing);
    const p = this.doCreate(req).finally(() => this.inflight.delete(req.sessionId));
    this.inflight.set(req.sessionId, p);
    return p;
  }

  private async doCreate(req: CreateRequest): Promise<Session> {
    let s: Session;
    try {
      s = this.engine.create(req, this.now());
    } finally {
      this.commit();
    }
    const epoch = BigInt(s.epoch);
    let failedOn = '';
    try {
      if (s.mode === 'MANUAL') {
        const sim = this.instance(s.simulators[0]!);
        failedOn = `simulator ${sim.spec.id}`;
        const res = await this.clients.sim(sim.spec.address).createSession(
          { instanceId: sim.spec.id, sessionId: s.id, epoch, sceneConfig: sceneToProto(req.scene), streamConfig: req.stream ?? undefined, mode: modeToProto(s.mode), reportAddress: this.opts.reportAddress },
          this.clients.timeout,
        );
        const status: SimStatus = { status: res.status?.status || 'READY', fps: res.status?.fps ?? 0, gpuUtilization: res.status?.gpuUtilization ?? 0 };
        this.engine.acknowledge(s.id, this.now(), status);
      } else {
        const envs = req.training!.parallelEnvs / s.simulators.length;
        const h = req.hybrid;
        await Promise.all(
          s.channels.map(async (c) => {
            const sim = this.instance(c.simulatorId);
            const client = this.clients.sim(sim.spec.address);
            failedOn = `simulator ${sim.spec.id}`;
            await client.createSession(
              {
                instanceId: sim.spec.id,
                sessionId: s.id,
                epoch,
                sceneConfig: sceneToProto(req.scene),
                streamConfig: req.stream ?? undefined,
                mode: modeToProto(s.mode),
                initialController: h?.initialController ?? AI,
                recordDemonstrations: h?.recordDemonstrations ?? false,
                humanIdleTimeoutSeconds: h?.idleTimeoutSeconds ?? 0,
                reportAddress: this.opts.reportAddress,
              },
              this.clients.timeout,
            );
            await client.bindEnvServer({ instanceId: sim.spec.id, sessionId: s.id, epoch, zmqEndpoint: c.endpoint, envs }, this.clients.timeout);
          }),
        );
        const trainer = this.instance(s.trainer!);
        failedOn = `trainer ${trainer.spec.id}`;
        await this.clients.trainer(trainer.spec.address).startTraining(
          {
            instanceId: trainer.spec.id,
            sessionId: s.id,
            epoch,
            trainingConfig: req.training!,
            channels: s.channels.map((c) => ({ isaacInstanceId: c.simulatorId, zmqEndpoint: c.endpoint, protocol: 'REQ-REP', state: c.state })),
            reportAddress: this.opts.reportAddress,
            mode: modeToProto(s.mode),
          },
          this.clients.timeout,
        );
        this.engine.acknowledge(s.id, this.now());
      }
      this.commit();
    } catch (e) {
      const err = NeuroError.from(e);
      const reason = `${failedOn} refused the session: ${err.message}`;
      const effects = this.engine.fail(s.id, reason, this.now());
      this.commit();
      this.track(this.perform(effects));
      this.log.warn({ session: s.id, err: err.message, code: err.code }, 'create failed; everything released');
      if (err.code === 'INVALID_ARGUMENT') throw new NeuroError('INVALID_ARGUMENT', err.reason, `${failedOn}: ${err.message}`, err.details);
      if (err.code === 'UNAVAILABLE' || err.code === 'DEADLINE_EXCEEDED' || err.code === 'INTERNAL') {
        throw new NeuroError('UNAVAILABLE', 'INSTANCE_UNAVAILABLE', `${reason}; nothing is held, retry the create`, { resource: { type: 'instance', name: failedOn } });
      }
      throw new NeuroError('FAILED_PRECONDITION', 'INSTANCE_REFUSED', reason, { resource: { type: 'instance', name: failedOn } });
    }
    const now = this.engine.get(s.id)!;
    if (now.state === 'FAILED') throw new NeuroError('ABORTED', 'SESSION_FAILED', `session failed while being created: ${now.failureReason}`);
    return now;
  }

  /** Ends a session and releases everything; ending an ended session is a no-op. */
  async terminate(id: string, reason: string): Promise<Session> {
    const { session, effects } = this.engine.beginTerminate(id, reason, this.now());
    this.commit();
    if (!isLive(session)) return session;
    await this.perform(effects);
    this.engine.finishTerminate(id, this.now());
    this.commit();
    return session;
  }

  /** Start or stop the simulation on every simulator of a session. */
  async simulation(id: string, start: boolean): Promise<{ session: Session; status: SimStatus }> {
    const s = this.engine.mustGet(id);
    if (!(s.state === 'READY' || s.state === 'RUNNING' || (s.state === 'INITIALIZING' && s.acknowledged))) {
      throw new NeuroError('FAILED_PRECONDITION', 'SESSION_NOT_READY', `session ${id} is ${s.state.toLowerCase()}; ${start ? 'start' : 'stop'} needs a ready or running session`);
    }
    let status: SimStatus = s.simStatus;
    for (const simId of s.simulators) {
      const sim = this.instance(simId);
      const c = this.clients.sim(sim.spec.address);
      const req = { instanceId: simId, sessionId: id, epoch: BigInt(s.epoch) };
      try {
        const res = start ? await c.startSimulation(req, this.clients.timeout) : await c.stopSimulation(req, this.clients.timeout);
        if (res.status) status = { status: res.status.status, fps: res.status.fps, gpuUtilization: res.status.gpuUtilization };
      } catch (e) {
        const err = NeuroError.from(e);
        throw new NeuroError(err.code === 'UNAVAILABLE' || err.code === 'DEADLINE_EXCEEDED' ? 'UNAVAILABLE' : err.code, err.reason, `simulator ${simId}: ${err.message}`, err.details);
      }
    }
    if (isLive(s)) this.engine.setSimStatus(id, status, this.now());
    this.commit();
    return { session: s, status };
  }

  async takeControl(id: string, simulatorId: string, user: string, force: boolean): Promise<Session> {
    const { session, effects, previous } = this.engine.takeControl(id, simulatorId, user, force, this.now());
    this.commit();
    await this.applyControl(session, simulatorId, previous, effects);
    return session;
  }

  async releaseControl(id: string, simulatorId: string, user: string): Promise<Session> {
    const before = this.engine.get(id)?.controllers[simulatorId]?.controller ?? AI;
    const { session, effects } = this.engine.releaseControl(id, simulatorId, user, this.now());
    this.commit();
    await this.applyControl(session, simulatorId, before, effects);
    return session;
  }

  private async applyControl(s: Session, simulatorId: string, previous: string, effects: Effect[]): Promise<void> {
    try {
      for (const e of effects) await this.performOne(e, true);
    } catch (e) {
      const err = NeuroError.from(e);
      this.engine.revertControl(s.id, simulatorId, previous, err.message, this.now());
      this.commit();
      throw new NeuroError(err.code === 'FAILED_PRECONDITION' ? 'FAILED_PRECONDITION' : 'UNAVAILABLE', 'CONTROL_NOT_APPLIED', `control change not applied: ${err.message}`);
    }
  }

  drain(id: string, draining: boolean): Instance {
    const i = this.engine.drain(id, draining);
    this.commit();
    return i;
  }

  // ------------------------------------------------------------------------------------------
  // Registry

  register(specs: InstanceSpec[], isStatic = false): void {
    this.engine.register(specs, this.now(), isStatic);
    this.commit();
  }

  deregister(ids: string[]): void {
    const effects = this.engine.deregister(ids, this.now());
    this.commit();
    this.track(this.perform(effects));
  }

  heartbeat(beats: Beat[]) {
    const { directives, effects } = this.engine.heartbeat(beats, this.now());
    this.commit();
    if (effects.length) this.track(this.perform(effects));
    return directives;
  }

  report(instanceId: string, sessionId: string, epoch: number, r: ProgressReport): { stop: boolean; session?: Session } {
    const { stop, effects, session } = this.engine.report(instanceId, sessionId, epoch, r, this.now());
    this.commit();
    if (effects.length) this.track(this.perform(effects));
    return { stop, session };
  }

  sweep(): void {
    const effects = this.engine.sweep(this.now());
    this.commit();
    if (effects.length) this.track(this.perform(effects));
  }

  // ------------------------------------------------------------------------------------------
  // Watchers

  /** Calls `fn` on each event of a session until the returned function is called. */
  watchSession(id: string, fn: SessionListener): () => void {
    let set = this.sessionListeners.get(id);
    if (!set) this.sessionListeners.set(id, (set = new Set()));
    set.add(fn);
    return () => {
      set.delete(fn);
      if (!set.size) this.sessionListeners.delete(id);
    };
  }

  watchPool(fn: PoolListener): () => void {
    this.poolListeners.add(fn);
    return () => this.poolListeners.delete(fn);
  }

  // ------------------------------------------------------------------------------------------
  // Internals

  private instance(id: string): Instance {
    const i = this.engine.pool.get(id);
    if (!i) throw new NeuroError('UNAVAILABLE', 'INSTANCE_GONE', `instance ${id} has left the pool`);
    return i;
  }

  /** Persists the engine's changes, then tells watchers: nothing is shown that was not stored. */
  private commit(): void {
    const c = this.engine.takeChanges();
    this.store.commit(c);
    if (this.sessionListeners.size) {
      for (const e of c.events) {
        const set = this.sessionListeners.get(e.sessionId);
        if (!set) continue;
        const s = this.engine.get(e.sessionId);
        if (s) for (const fn of [...set]) fn(e, s);
      }
    }
    if (this.poolListeners.size && (c.instances.length || c.removedInstances.length)) {
      for (const fn of [...this.poolListeners]) fn(c.instances, c.removedInstances);
    }
  }

  private track(p: Promise<unknown>): void {
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
  }

  /** Carries out effects; failures are logged: heartbeat reconciliation stops whatever they missed. */
  private async perform(effects: Effect[]): Promise<void> {
    if (!effects.length) return;
    await Promise.all(
      effects.map((e) =>
        this.performOne(e, false).catch((err: unknown) => {
          this.log.warn({ effect: e.kind, session: e.sessionId, err: NeuroError.from(err).message }, 'instance command failed; reconciliation will retry');
        }),
      ),
    );
  }

  private async performOne(e: Effect, strict: boolean): Promise<void> {
    const epoch = BigInt(e.epoch);
    const t = this.clients.timeout;
    switch (e.kind) {
      case 'destroy-simulator':
        await this.clients.sim(e.address).destroySession({ instanceId: e.instanceId, sessionId: e.sessionId, epoch, reason: e.reason }, t);
        return;
      case 'stop-trainer':
        await this.clients.trainer(e.address).stopTraining({ instanceId: e.instanceId, sessionId: e.sessionId, epoch, reason: e.reason }, t);
        return;
      case 'set-control': {
        const calls: Promise<unknown>[] = [];
        if (e.simulatorAddress) calls.push(this.clients.sim(e.simulatorAddress).setControlSource({ instanceId: e.simulatorId, sessionId: e.sessionId, epoch, controller: e.controller }, t));
        if (e.trainerAddress) {
          calls.push(
            this.clients.trainer(e.trainerAddress).setEnvControl({ instanceId: e.trainerId, sessionId: e.sessionId, epoch, isaacInstanceId: e.simulatorId, controller: e.controller }, t),
          );
        }
        const results = await Promise.allSettled(calls);
        const bad = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
        if (bad && strict) throw bad.reason;
        return;
      }
    }
  }
}
