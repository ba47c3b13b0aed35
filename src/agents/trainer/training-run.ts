/**
 * One training session on one trainer instance: connect a REQ socket to every simulator, learn from
 * their envs until `total_episodes` are done, and report progress on the way. Every channel is
 * stepped by its own loop, so each REQ socket has one request in flight and a slow simulator never
 * holds the others back; the learner is shared and chains returns per env stream.
 *
 * HYBRID: a channel whose simulator a human holds is paused (no steps are sent), its recorded
 * demonstrations are fetched every `demoPollIntervalMs` and fed to the learner's behaviour cloning;
 * when the AI gets it back the rest is fetched, the env is reset and stepping resumes.
 */
import type { Logger } from 'pino';
import { TrainingStatus } from '../../gen/neuro/v1/common_pb.js';
import { createLearner, type Learner } from '../../learn/index.js';
import type { EnvRequest, Transition } from '../common/env-protocol.js';
import { EnvChannel, EnvChannelError, type ReplyOf } from './env-channel.js';

/** A channel's state as Neuro shows it (neuro.v1.ZmqChannel.state). */
export type ChannelState = 'PENDING' | 'CONNECTED' | 'PAUSED' | 'FAILED' | 'CLOSED';

/** neuro.v1.TrainingProgress, every field set. */
export interface TrainingProgressReport {
  episodesDone: bigint;
  totalEpisodes: bigint;
  /** Mean return of the last 20 episodes. */
  meanReward: number;
  lastReward: number;
  /** Mean return of the first 20 episodes: where the learning curve starts. */
  firstMeanReward: number;
  envStepsPerSecond: number;
  envSteps: bigint;
  channels: { isaacInstanceId: string; zmqEndpoint: string; protocol: string; state: ChannelState }[];
  /** Demonstration transitions received per simulator. */
  demonstrations: Record<string, bigint>;
  policyLoss: number;
}

/** What a trainer tells Neuro about a session (neuro.v1.ReportProgressRequest without `control`). */
export interface TrainerProgressReport {
  instanceId: string;
  sessionId: string;
  epoch: bigint;
  channelsConnected: boolean;
  completed: boolean;
  /** Non-empty: the training failed for this reason. */
  failure: string;
  progress: TrainingProgressReport;
}

/** Neuro's answer to a report: `stop` when the session has ended on its side. */
export type ReportAnswer = { stop?: boolean } | void;

export interface TrainingRunOptions {
  instanceId: string;
  sessionId: string;
  epoch: bigint;
  algorithm: string;
  hyperparameters: Record<string, string>;
  /** 0: no limit, train until stopped. */
  totalEpisodes: number;
  channels: { isaacInstanceId: string; zmqEndpoint: string }[];
  /** Learner seed. */
  seed: number;
  receiveTimeoutMs: number;
  progressIntervalMs: number;
  demoPollIntervalMs: number;
  /** Delivers a report; reports of one run are delivered one at a time, in order. */
  report: (r: TrainerProgressReport) => Promise<ReportAnswer>;
  /** Observes demonstrations as they reach the learner. */
  onDemonstrations?: (d: { sessionId: string; isaacInstanceId: string; transitions: readonly Transition[] }) => void;
  logger: Logger;
}

/** Episodes the reported means are taken over. */
const WINDOW = 20;
/** Demos fetched per request, so one reply stays small. */
const DEMO_BATCH = 512;
/** A resume drains at most this many demo batches before resetting (a human still recording cannot hold it up forever). */
const MAX_DRAIN_BATCHES = 64;

type Ending = { kind: 'completed' } | { kind: 'failed'; reason: string } | { kind: 'stopped'; reason: string } | { kind: 'killed' };

class ChannelRun {
  state: ChannelState = 'PENDING';
  /** Who controls the simulator according to Neuro (SetEnvControl). */
  neuroController = 'ai';
  /** Who controls it according to the simulator's own answers. */
  simController = 'ai';
  envs = 0;
  demos = 0;
  obs: number[][] = [];
  needsReset = true;
  /** The env was paused: before it resumes, the rest of the human's demonstrations are fetched. */
  handedBack = false;
  private wake?: () => void;

  constructor(
    readonly channel: EnvChannel,
    readonly isaacInstanceId: string,
    readonly endpoint: string,
  ) {}

  get paused(): boolean {
    return this.neuroController !== 'ai' || this.simController !== 'ai';
  }

  /** Sleeps up to `ms`, or until {@link poke}. */
  nap(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }

  poke(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }
}

/** A running (or finished) training session. */
export class TrainingRun {
  private readonly channels: ChannelRun[];
  private learner?: Learner;
  private ending?: Ending;
  private status_: TrainingStatus = TrainingStatus.INITIALIZING;
  private connected = false;
  private readonly returns: number[] = [];
  private readonly firstReturns: number[] = [];
  private episodes = 0;
  private lastReturn = 0;
  private steps = 0;
  private rateMark = { at: 0, steps: 0 };
  private rate = 0;
  private busyMs = 0;
  private busyMark = { at: 0, busy: 0 };
  private progressTimer?: NodeJS.Timeout;
  private reports: Promise<unknown> = Promise.resolve();
  private failure = '';
  /** Resolves when the run has ended and released its sockets (and sent its final report). */
  readonly done: Promise<void>;

  constructor(private readonly opts: TrainingRunOptions) {
    this.channels = opts.channels.map(
      (c) => new ChannelRun(new EnvChannel(c.isaacInstanceId, c.zmqEndpoint, { receiveTimeoutMs: opts.receiveTimeoutMs }), c.isaacInstanceId, c.zmqEndpoint),
    );
    this.done = this.run();
  }

  get sessionId(): string {
    return this.opts.sessionId;
  }

  get epoch(): bigint {
    return this.opts.epoch;
  }

  get status(): TrainingStatus {
    return this.status_;
  }

  /** Still connecting or training. */
  get live(): boolean {
    return this.status_ === TrainingStatus.INITIALIZING || this.status_ === TrainingStatus.RUNNING;
  }

  get episodesDone(): number {
    return this.episodes;
  }

  get envSteps(): number {
    return this.steps;
  }

  /** Mean return of the last 20 episodes (0 before any). */
  get meanReward(): number {
    return mean(this.returns);
  }

  get failureReason(): string {
    return this.failure;
  }

  /** Simulators whose env is paused (a human holds it). */
  get pausedEnvs(): string[] {
    return this.channels.filter((c) => c.paused && this.live).map((c) => c.isaacInstanceId);
  }

  get demonstrations(): Record<string, number> {
    return Object.fromEntries(this.channels.map((c) => [c.isaacInstanceId, c.demos]));
  }

  hasSimulator(isaacInstanceId: string): boolean {
    return this.channels.some((c) => c.isaacInstanceId === isaacInstanceId);
  }

  /**
   * Share of wall time the learner computed since the last call (the trainer's stand-in for GPU
   * utilisation in heartbeats).
   */
  computeShare(): number {
    const now = performance.now();
    const dt = now - this.busyMark.at;
    const share = dt > 0 && this.busyMark.at > 0 ? Math.min(1, (this.busyMs - this.busyMark.busy) / dt) : 0;
    this.busyMark = { at: now, busy: this.busyMs };
    return share;
  }

  /** HYBRID: `controller` ("ai" or a human's name) now holds `isaacInstanceId`. */
  setControl(isaacInstanceId: string, controller: string): void {
    const c = this.channels.find((x) => x.isaacInstanceId === isaacInstanceId);
    if (!c) throw new Error(`no channel to ${isaacInstanceId}`);
    c.neuroController = controller;
    // Neuro's word on a hand-back is news the simulator's last answer may not reflect yet; the next
    // step tells (a refusal pauses the env again).
    if (controller === 'ai') c.simController = 'ai';
    this.opts.logger.info({ isaacInstanceId, controller }, 'env control changed');
    c.poke();
  }

  /** Stops training and frees everything; no further reports. Resolves once the sockets are closed. */
  stop(reason: string): Promise<void> {
    this.end({ kind: 'stopped', reason });
    return this.done;
  }

  /** Simulated death: stops at once, silently. */
  kill(): void {
    this.end({ kind: 'killed' });
  }

  /** The progress as reported to Neuro. */
  snapshot(): TrainingProgressReport {
    return {
      episodesDone: BigInt(this.episodes),
      totalEpisodes: BigInt(this.opts.totalEpisodes),
      meanReward: mean(this.returns),
      lastReward: this.lastReturn,
      firstMeanReward: mean(this.firstReturns),
      envStepsPerSecond: this.rate,
      envSteps: BigInt(this.steps),
      channels: this.channels.map((c) => ({
        isaacInstanceId: c.isaacInstanceId,
        zmqEndpoint: c.endpoint,
        protocol: 'REQ-REP',
        state: c.state === 'CONNECTED' && c.paused ? 'PAUSED' : c.state,
      })),
      demonstrations: Object.fromEntries(this.channels.map((c) => [c.isaacInstanceId, BigInt(c.demos)])),
      policyLoss: this.learner?.lastLoss ?? 0,
    };
  }

  private end(e: Ending): void {
    if (this.ending) return;
    this.ending = e;
    if (e.kind === 'failed') this.failure = e.reason;
    if (this.progressTimer) clearInterval(this.progressTimer);
    if (e.kind !== 'completed') {
      // Unblocks loops waiting on a reply; they see `ending` and leave.
      for (const c of this.channels) c.channel.close();
    }
    for (const c of this.channels) c.poke();
  }

  private async run(): Promise<void> {
    const log = this.opts.logger;
    try {
      await this.connect();
      if (!this.ending) {
        this.connected = true;
        this.status_ = TrainingStatus.RUNNING;
        this.rateMark = { at: performance.now(), steps: 0 };
        log.info({ channels: this.channels.length, envs: this.channels.reduce((s, c) => s + c.envs, 0) }, 'channels connected, training');
        this.enqueueReport();
        this.progressTimer = setInterval(() => this.enqueueReport(), this.opts.progressIntervalMs);
        this.progressTimer.unref();
        await Promise.all(this.channels.map((c) => this.loop(c)));
      }
    } catch (e) {
      this.end({ kind: 'failed', reason: (e as Error).message });
    }
    const ending = this.ending ?? { kind: 'failed', reason: 'training ended unexpectedly' };
    if (ending.kind === 'completed') await Promise.all(this.channels.map((c) => this.sayGoodbye(c)));
    for (const c of this.channels) {
      c.channel.close();
      if (c.state !== 'FAILED') c.state = 'CLOSED';
    }
    switch (ending.kind) {
      case 'completed':
        this.status_ = TrainingStatus.COMPLETED;
        log.info({ episodes: this.episodes, meanReward: mean(this.returns), firstMeanReward: mean(this.firstReturns) }, 'training completed');
        break;
      case 'failed':
        this.status_ = TrainingStatus.FAILED;
        log.warn({ reason: ending.reason }, 'training failed');
        break;
      case 'stopped':
        this.status_ = TrainingStatus.STOPPED;
        log.info({ reason: ending.reason }, 'training stopped');
        break;
      case 'killed':
        this.status_ = TrainingStatus.STOPPED;
        break;
    }
    if (ending.kind === 'completed' || ending.kind === 'failed') this.enqueueReport({ completed: ending.kind === 'completed', failure: this.failure });
    await this.reports;
  }

  /** hello on every channel at once; all must answer with the same dimensions. */
  private async connect(): Promise<void> {
    const hellos = await Promise.all(
      this.channels.map(async (c) => {
        try {
          const h = await c.channel.request({ type: 'hello', session_id: this.opts.sessionId, epoch: this.opts.epoch.toString() });
          c.state = 'CONNECTED';
          c.envs = h.envs;
          c.simController = h.controller || 'ai';
          return h;
        } catch (e) {
          if (!this.ending) c.state = 'FAILED';
          throw e;
        }
      }),
    );
    if (this.ending) return;
    const first = hellos[0];
    if (!first) throw new Error('no channels');
    for (const h of hellos) {
      if (h.obs_dim !== first.obs_dim || h.act_dim !== first.act_dim) {
        throw new Error(`simulators disagree on the env: ${first.instance_id} has obs ${first.obs_dim}/act ${first.act_dim}, ${h.instance_id} obs ${h.obs_dim}/act ${h.act_dim}`);
      }
      if (!(Number.isInteger(h.envs) && h.envs > 0)) throw new Error(`simulator ${h.instance_id} offers ${h.envs} envs`);
    }
    this.learner = createLearner(this.opts.algorithm, this.opts.hyperparameters, { obsDim: first.obs_dim, actDim: first.act_dim }, this.opts.seed);
  }

  private async loop(c: ChannelRun): Promise<void> {
    const learner = this.learner!;
    const streams = Array.from({ length: c.envs }, (_, i) => `${c.isaacInstanceId}/${i}`);
    const epoch = this.opts.epoch.toString();
    try {
      while (!this.ending) {
        if (c.paused) {
          c.needsReset = true;
          c.handedBack = true;
          const remaining = await this.fetchDemos(c, 1);
          if (!this.ending && c.paused && remaining <= 0) await c.nap(this.opts.demoPollIntervalMs);
          continue;
        }
        if (c.needsReset) {
          if (c.handedBack) {
            // What the human recorded since our last poll belongs to this hand-over: fetch it first.
            await this.fetchDemos(c, MAX_DRAIN_BATCHES);
            c.handedBack = false;
            continue;
          }
          const r = await this.send(c, { type: 'reset', epoch });
          if (!r) continue;
          c.obs = r.obs;
          c.needsReset = false;
          continue;
        }
        const obs = c.obs;
        const t0 = performance.now();
        const actions = learner.act(obs);
        this.busyMs += performance.now() - t0;
        const r = await this.send(c, { type: 'step', epoch, actions });
        if (!r || this.ending) continue;
        const t1 = performance.now();
        learner.observe(obs, actions, r.rewards, r.dones, r.obs, streams);
        this.busyMs += performance.now() - t1;
        c.obs = r.obs;
        this.steps += r.dones.length;
        r.dones.forEach((d, i) => {
          const ret = r.episode_returns[i];
          if (d && typeof ret === 'number') this.episodeEnded(ret);
        });
        if (this.opts.totalEpisodes > 0 && this.episodes >= this.opts.totalEpisodes) this.end({ kind: 'completed' });
      }
    } catch (e) {
      if (this.ending) return;
      c.state = 'FAILED';
      this.end({ kind: 'failed', reason: (e as Error).message });
    }
  }

  /**
   * One request; a refusal because a human holds the simulator pauses the channel (returns
   * undefined). Any other failure ends the run through the loop's catch.
   */
  private async send<T extends 'reset' | 'step'>(c: ChannelRun, req: Extract<EnvRequest, { type: T }>): Promise<ReplyOf<T> | undefined> {
    try {
      return await c.channel.request(req);
    } catch (e) {
      if (e instanceof EnvChannelError && e.refusal?.error === 'HUMAN_CONTROL') {
        c.simController = e.refusal.controller || 'human';
        this.opts.logger.info({ isaacInstanceId: c.isaacInstanceId, controller: c.simController }, 'simulator is under human control: env paused');
        return undefined;
      }
      throw e;
    }
  }

  /** Fetches up to `batches` batches of demonstrations and learns from them; returns how many are left. */
  private async fetchDemos(c: ChannelRun, batches: number): Promise<number> {
    let remaining = 0;
    for (let i = 0; i < batches && !this.ending; i++) {
      const r = await c.channel.request({ type: 'demos', epoch: this.opts.epoch.toString(), max: DEMO_BATCH });
      if (r.transitions.length) this.learnFrom(c, r.transitions);
      // The simulator is the authority on whether its human still drives.
      c.simController = r.controller || 'ai';
      remaining = r.remaining;
      if (remaining <= 0) break;
    }
    return remaining;
  }

  private learnFrom(c: ChannelRun, transitions: Transition[]): void {
    c.demos += transitions.length;
    const t0 = performance.now();
    const kept = this.learner!.addDemonstrations(transitions);
    this.busyMs += performance.now() - t0;
    this.opts.onDemonstrations?.({ sessionId: this.opts.sessionId, isaacInstanceId: c.isaacInstanceId, transitions });
    if (kept < transitions.length) this.opts.logger.warn({ isaacInstanceId: c.isaacInstanceId, ignored: transitions.length - kept }, 'demonstrations of the wrong shape ignored');
  }

  private async sayGoodbye(c: ChannelRun): Promise<void> {
    if (c.channel.broken) return;
    try {
      await c.channel.request({ type: 'close', epoch: this.opts.epoch.toString() });
    } catch {
      // The simulator is told to stop by Neuro as well; a lost goodbye only delays its cleanup.
    }
  }

  private episodeEnded(ret: number): void {
    if (this.opts.totalEpisodes > 0 && this.episodes >= this.opts.totalEpisodes) return;
    this.episodes++;
    this.lastReturn = ret;
    this.returns.push(ret);
    if (this.returns.length > WINDOW) this.returns.shift();
    if (this.firstReturns.length < WINDOW) this.firstReturns.push(ret);
  }

  private enqueueReport(final?: { completed: boolean; failure: string }): void {
    if (this.ending && !final) return;
    const now = performance.now();
    if (now > this.rateMark.at) {
      this.rate = ((this.steps - this.rateMark.steps) * 1000) / (now - this.rateMark.at);
      this.rateMark = { at: now, steps: this.steps };
    }
    const report: TrainerProgressReport = {
      instanceId: this.opts.instanceId,
      sessionId: this.opts.sessionId,
      epoch: this.opts.epoch,
      channelsConnected: this.connected,
      completed: final?.completed ?? false,
      failure: final?.failure ?? '',
      progress: this.snapshot(),
    };
    this.reports = this.reports.then(async () => {
      try {
        const answer = await this.opts.report(report);
        if (answer && answer.stop && !this.ending) {
          this.opts.logger.info('Neuro says the session has ended: stopping');
          this.end({ kind: 'stopped', reason: 'session ended in Neuro' });
        }
      } catch (e) {
        this.opts.logger.debug({ err: e }, 'progress report not delivered');
      }
    });
  }
}

function mean(a: readonly number[]): number {
  return a.length ? a.reduce((s, x) => s + x, 0) / a.length : 0;
}
