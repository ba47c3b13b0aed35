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

/** Creates tried when a simulator finds its ZeroMQ port taken. */
const PORT_ATTEMPTS = 3;

type SessionListener = (e: SessionEvent, s: Session) => void;
type PoolListener = (changed: Instance[], removed: string[]) => void;

export class Orchestrator {
  readonly engine: Engine;
  private readonly now: () => number;
  private readonly inflight = new Map<string, Promise<Session>>();
  private readonly sessionListeners = new Map<string, Set<SessionListener>>();
  private readonly poolListeners = new Set<PoolListener>();
  private sweepTimer?: NodeJS.Timeout;
  /** Changes waiting for the next group commit, and the promise of that commit. */
  private batch?: {
    sessions: Map<string, Session>;
    instances: Map<string, Instance>;
    shown: Map<string, Instance>;
    removed: Set<string>;
    purged: Set<string>;
    events: SessionEvent[];
    epoch: number | null;
  };
  private flushing?: Promise<void>;
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
    void this.commit();
    this.flush();
    const live = snap.sessions.filter(isLive).length;
    this.log.info({ sessions: snap.sessions.length, live, instances: snap.instances.length, epoch: snap.epoch }, 'state restored');
    this.track(
      this.perform(effects).then(() => {
        for (const id of toFinish) this.engine.finishTerminate(id, this.now());
        return this.commit();
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
    await this.commit();
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
    void this.commit();
    if (existing) return Promise.resolve(existing);
    const p = this.createWithRetry(req).finally(() => this.inflight.delete(req.sessionId));
    this.inflight.set(req.sessionId, p);
    return p;
  }

  /**
   * A ZeroMQ port can be taken by something Neuro does not know of (an outgoing connection's ephemeral
   * port, another program): the create then fails, releases everything, and is run again — the next
   * attempt starts past that port, as each simulator's port search rotates.
   */
  private async createWithRetry(req: CreateRequest): Promise<Session> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.doCreate(req);
      } catch (e) {
        if (!(e instanceof NeuroError) || e.reason !== 'PORT_IN_USE' || attempt >= PORT_ATTEMPTS) throw e;
        this.log.info({ session: req.sessionId, attempt, err: e.message }, 'a ZeroMQ port was taken; creating again');
        this.engine.existing(req);
      }
    }
  }

  private async doCreate(req: CreateRequest): Promise<Session> {
    let s: Session;
    try {
      s = this.engine.create(req, this.now());
    } catch (e) {
      void this.commit();
      throw e;
    }
    // Not awaited: the commit runs while the instances are called. Were Neuro to die before it, the
    // caller has no answer, the epoch is past the store's reserved block anyway, and heartbeat
    // reconciliation stops whatever the instances started.
    void this.commit();
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
            failedOn = `simulator ${sim.spec.id}`;
            await this.clients.sim(sim.spec.address).createSession(
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
                // The env server is bound in the same call (one round trip per simulator, not two).
                zmqEndpoint: c.endpoint,
                envs,
              },
              this.clients.timeout,
            );
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
      await this.commit();
    } catch (e) {
      const err = NeuroError.from(e);
      const reason = `${failedOn} refused the session: ${err.message}`;
      const effects = this.engine.fail(s.id, reason, this.now());
      await this.commit();
      this.track(this.perform(effects));
      this.log.warn({ session: s.id, err: err.message, code: err.code }, 'create failed; everything released');
      if (err.code === 'INVALID_ARGUMENT') throw new NeuroError('INVALID_ARGUMENT', err.reason, `${failedOn}: ${err.message}`, err.details);
      if (err.reason === 'PORT_IN_USE') throw new NeuroError('UNAVAILABLE', 'PORT_IN_USE', `${reason}; nothing is held, retry the create`, err.details);
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
    if (!isLive(session)) return session;
    void this.commit();
    await this.perform(effects);
    this.engine.finishTerminate(id, this.now());
    await this.commit();
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
    await this.commit();
    return { session: s, status };
  }

  async takeControl(id: string, simulatorId: string, user: string, force: boolean): Promise<Session> {
    const { session, effects, previous } = this.engine.takeControl(id, simulatorId, user, force, this.now());
    await this.commit();
    await this.applyControl(session, simulatorId, previous, effects);
    return session;
  }

  async releaseControl(id: string, simulatorId: string, user: string): Promise<Session> {
    const before = this.engine.get(id)?.controllers[simulatorId]?.controller ?? AI;
    const { session, effects } = this.engine.releaseControl(id, simulatorId, user, this.now());
    await this.commit();
    await this.applyControl(session, simulatorId, before, effects);
    return session;
  }

  private async applyControl(s: Session, simulatorId: string, previous: string, effects: Effect[]): Promise<void> {
    try {
      for (const e of effects) await this.performOne(e, true);
    } catch (e) {
      const err = NeuroError.from(e);
      this.engine.revertControl(s.id, simulatorId, previous, err.message, this.now());
      await this.commit();
      throw new NeuroError(err.code === 'FAILED_PRECONDITION' ? 'FAILED_PRECONDITION' : 'UNAVAILABLE', 'CONTROL_NOT_APPLIED', `control change not applied: ${err.message}`);
    }
  }

  async drain(id: string, draining: boolean): Promise<Instance> {
    const i = this.engine.drain(id, draining);
    await this.commit();
    return i;
  }

  // ------------------------------------------------------------------------------------------
  // Registry

  register(specs: InstanceSpec[], isStatic = false): Promise<void> {
    this.engine.register(specs, this.now(), isStatic);
    return this.commit();
  }

  async deregister(ids: string[]): Promise<void> {
    const effects = this.engine.deregister(ids, this.now());
    await this.commit();
    this.track(this.perform(effects));
  }

  heartbeat(beats: Beat[]) {
    const { directives, effects } = this.engine.heartbeat(beats, this.now());
    void this.commit();
    if (effects.length) this.track(this.perform(effects));
    return directives;
  }

  async report(instanceId: string, sessionId: string, epoch: number, r: ProgressReport): Promise<{ stop: boolean; session?: Session }> {
    const { stop, effects, session } = this.engine.report(instanceId, sessionId, epoch, r, this.now());
    await this.commit();
    if (effects.length) this.track(this.perform(effects));
    return { stop, session };
  }

  sweep(): void {
    const effects = this.engine.sweep(this.now());
    void this.commit();
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

  /**
   * Takes the engine's changes into the next group commit and resolves once they are stored. All the
   * commands of one event-loop turn share one SQLite transaction (under load that is many creates and
   * terminates per transaction); anyone about to be told "done" awaits this first, and watchers hear of a
   * change only after it is stored.
   */
  private commit(): Promise<void> {
    const c = this.engine.takeChanges();
    // Most heartbeat messages change nothing stored or shown: no batch, no flush scheduled.
    const empty = !c.sessions.length && !c.purgedSessions.length && !c.instances.length && !c.shownInstances.length && !c.removedInstances.length && !c.events.length && c.epoch === null;
    if (empty) return this.flushing ?? Promise.resolve();
    const b = (this.batch ??= { sessions: new Map(), instances: new Map(), shown: new Map(), removed: new Set(), purged: new Set(), events: [] as SessionEvent[], epoch: null });
    for (const x of c.sessions) b.sessions.set(x.id, x);
    for (const id of c.purgedSessions) {
      b.sessions.delete(id);
      b.purged.add(id);
    }
    for (const i of c.instances) {
      b.instances.set(i.spec.id, i);
      b.removed.delete(i.spec.id);
    }
    for (const i of c.shownInstances) b.shown.set(i.spec.id, i);
    for (const id of c.removedInstances) {
      b.instances.delete(id);
      b.shown.delete(id);
      b.removed.add(id);
    }
    if (c.events.length) b.events.push(...c.events);
    if (c.epoch !== null) b.epoch = c.epoch;
    if (!this.flushing) {
      this.flushing = new Promise<void>((resolve, reject) => {
        setImmediate(() => {
          this.flushing = undefined;
          try {
            this.flush();
            resolve();
          } catch (e) {
            reject(e);
          }
        });
      });
    }
    return this.flushing;
  }

  /** Writes the batch in one transaction, then tells watchers. */
  private flush(): void {
    const b = this.batch;
    this.batch = undefined;
    if (!b) return;
    this.store.commit({
      sessions: [...b.sessions.values()],
      purgedSessions: [...b.purged],
      instances: [...b.instances.values()],
      shownInstances: [],
      removedInstances: [...b.removed],
      events: b.events,
      epoch: b.epoch,
    });
    if (this.sessionListeners.size) {
      for (const e of b.events) {
        const set = this.sessionListeners.get(e.sessionId);
        if (!set) continue;
        const s = this.engine.get(e.sessionId);
        if (s) for (const fn of [...set]) fn(e, s);
      }
    }
    if (this.poolListeners.size && (b.shown.size || b.removed.size)) {
      const changed = [...b.shown.values()];
      const removed = [...b.removed];
      for (const fn of [...this.poolListeners]) fn(changed, removed);
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
