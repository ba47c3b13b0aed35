/**
 * One session on a virtual simulator instance: the scene, the envs built from it (lazily: most
 * sessions in a benchmark never step), who drives (the AI or a named human), the demonstrations a
 * human leaves behind, the control WebSocket peers and the ZeroMQ env server.
 */
import type { Logger } from 'pino';
import { SessionMode } from '../../gen/neuro/v1/common_pb.js';
import type { Transition } from '../common/env-protocol.js';
import { ReachEnv, type RobotModel, type SceneSpec } from '../env/index.js';
import type { EnvServer } from './env-server.js';

/** Counters an instance keeps over its lifetime (every session it ran). */
export interface InstanceStats {
  /** Env-server step requests applied. */
  aiStepsApplied: number;
  /** Env-server step requests refused because a human held control. */
  aiStepsRefused: number;
  humanActionsApplied: number;
  demonstrationsRecorded: number;
}

/** Why control went back to the AI without Neuro asking. */
export type ControlReturnReason = 'idle' | 'disconnected';

/** What a session needs from the instance that hosts it. */
export interface SessionHost {
  readonly instanceId: string;
  readonly stats: InstanceStats;
  readonly logger: Logger;
  /** The session handed control back to the AI by itself; tell Neuro. */
  controlReturned(session: SimSession, reason: ControlReturnReason): void;
}

/** A control WebSocket client, as the session sees it. */
export interface ControlPeer {
  /** The name the client gave in its hello, if any. */
  user?: string;
  send(frame: string): void;
  close(code: number, reason: string): void;
}

export interface SessionParams {
  id: string;
  epoch: bigint;
  mode: SessionMode;
  robot: RobotModel;
  scene: SceneSpec;
  stream: { width: number; height: number; fps: number; transport: string };
  /** "ai" or a human's name. */
  initialController: string;
  recordDemonstrations: boolean;
  humanIdleTimeoutMs: number;
}

export type SimulationState = 'READY' | 'RUNNING' | 'STOPPED';

/** The controller name of the learner. */
export const AI = 'ai';
const TICK_MS = 100;
/** Bounds the memory of a session whose trainer never fetches its demonstrations. */
const MAX_PENDING_DEMOS = 50_000;
const MAX_ENVS = 1024;

/** Counts events per second over the last whole second, without a timer. */
class RateMeter {
  private start = 0;
  private current = 0;
  private previous = 0;

  mark(n: number, now = Date.now()): void {
    this.roll(now);
    this.current += n;
  }

  rate(now = Date.now()): number {
    this.roll(now);
    return this.previous;
  }

  private roll(now: number): void {
    const age = now - this.start;
    if (age < 1000) return;
    this.previous = age < 2000 ? this.current / (age / 1000) : 0;
    this.current = 0;
    this.start = now;
  }
}

/** FNV-1a: a stable seed from the session id, so a session's envs replay identically. */
function seedOf(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

export class SimSession {
  readonly id: string;
  readonly epoch: bigint;
  readonly mode: SessionMode;
  readonly robot: RobotModel;
  readonly scene: SceneSpec;
  readonly stream: SessionParams['stream'];
  readonly recordDemonstrations: boolean;
  status: SimulationState = 'READY';
  envServer?: EnvServer;
  /** Envs the trainer steps (the first `aiEnvs` of `envs`); 0 until an env server is bound. */
  aiEnvs = 0;
  /** Running return of each AI env's current episode. */
  readonly returns: number[] = [];
  private readonly host: SessionHost;
  private readonly idleTimeoutMs: number;
  private readonly seed: number;
  /** envs[0] is the one humans see and drive. */
  private readonly envs: ReachEnv[] = [];
  private controllerName: string;
  private readonly demos: Transition[] = [];
  private recorded = 0;
  private readonly peers = new Set<ControlPeer>();
  private tickTimer?: NodeJS.Timeout;
  private idleTimer?: NodeJS.Timeout;
  private simTime = 0;
  private readonly meter = new RateMeter();
  private ended = false;

  constructor(params: SessionParams, host: SessionHost) {
    this.id = params.id;
    this.epoch = params.epoch;
    this.mode = params.mode;
    this.robot = params.robot;
    this.scene = params.scene;
    this.stream = params.stream;
    this.recordDemonstrations = params.recordDemonstrations;
    this.idleTimeoutMs = params.humanIdleTimeoutMs;
    this.host = host;
    this.seed = seedOf(params.id);
    this.controllerName = params.initialController;
    if (this.isHumanControlled()) this.armIdleTimer();
  }

  get controller(): string {
    return this.controllerName;
  }

  /** Demonstrations recorded over the session (including those already fetched). */
  get demonstrations(): number {
    return this.recorded;
  }

  get closed(): boolean {
    return this.ended;
  }

  isHumanControlled(): boolean {
    return this.mode === SessionMode.HYBRID && this.controllerName !== AI;
  }

  /** The env humans see; built on first use. */
  displayEnv(): ReachEnv {
    return this.env(0);
  }

  /** Env `i`, built (and its first episode started) on first use. */
  env(i: number): ReachEnv {
    while (this.envs.length <= i) {
      const env = new ReachEnv(this.robot, this.scene, (this.seed + this.envs.length) >>> 0);
      env.reset();
      this.envs.push(env);
    }
    return this.envs[i]!;
  }

  /** Makes the first `n` envs the trainer's. */
  useAiEnvs(n: number): void {
    if (n < 1 || n > MAX_ENVS) throw new RangeError(`envs must be between 1 and ${MAX_ENVS}`);
    for (let i = 0; i < n; i++) this.env(i);
    this.aiEnvs = n;
    this.returns.length = 0;
    for (let i = 0; i < n; i++) this.returns.push(0);
  }

  /** Records env steps for the fps and GPU figures. */
  countSteps(n: number): void {
    this.meter.mark(n);
  }

  start(): void {
    this.status = 'RUNNING';
  }

  stop(): void {
    this.status = 'STOPPED';
  }

  /** Frames per second: the stream's rate while rendering, else the measured physics step rate. */
  fps(): number {
    const steps = this.meter.rate();
    return this.rendering() ? Math.max(this.stream.fps, steps) : steps;
  }

  /** A plausible GPU load: rendering costs a share, physics steps the rest. */
  gpuUtilization(): number {
    const load = 0.05 + (this.rendering() ? 0.3 : 0) + Math.min(0.6, this.meter.rate() / 5000);
    return Math.round(Math.min(load, 0.98) * 1000) / 1000;
  }

  /** MANUAL renders only for a connected viewer; TRAINING and HYBRID render whenever running. */
  private rendering(): boolean {
    return this.status === 'RUNNING' && this.stream.transport !== 'none' && (this.mode !== SessionMode.MANUAL || this.peers.size > 0);
  }

  /** Switches who drives. A human gets an idle timer; the AI does not. */
  setController(name: string): void {
    this.controllerName = name;
    if (this.isHumanControlled()) this.armIdleTimer();
    else this.disarmIdleTimer();
    this.broadcast(JSON.stringify({ type: 'control', controller: name }));
  }

  /** Returns up to `max` pending demonstrations (oldest first) and forgets them. */
  takeDemos(max?: number): { transitions: Transition[]; remaining: number } {
    const n = max === undefined ? this.demos.length : Math.max(0, Math.min(max, this.demos.length));
    const transitions = this.demos.splice(0, n);
    return { transitions, remaining: this.demos.length };
  }

  // ---- control WebSocket -------------------------------------------------------------------

  attach(peer: ControlPeer): void {
    this.peers.add(peer);
    const env = this.displayEnv();
    peer.send(
      JSON.stringify({
        type: 'hello',
        session_id: this.id,
        instance_id: this.host.instanceId,
        mode: SessionMode[this.mode],
        controller: this.controllerName,
        robot: { name: this.robot.name, joints: this.robot.joints.map((j) => ({ name: j.name, lower: j.lower, upper: j.upper })) },
        obstacles: this.scene.obstacles,
        goal: env.goal,
        start: this.scene.start,
      }),
    );
    peer.send(this.stateFrame());
    if (!this.tickTimer) {
      this.tickTimer = setInterval(() => this.tick(), TICK_MS);
      this.tickTimer.unref();
    }
  }

  detach(peer: ControlPeer): void {
    if (!this.peers.delete(peer)) return;
    if (this.peers.size === 0 && this.tickTimer) {
      clearInterval(this.tickTimer);
      this.tickTimer = undefined;
    }
    if (this.ended || !this.isHumanControlled() || !this.mayDrive(peer)) return;
    if (![...this.peers].some((p) => this.mayDrive(p))) this.returnToAi('disconnected');
  }

  /** A peer drives in MANUAL mode, or in HYBRID as the named controller (an anonymous peer counts as the human). */
  mayDrive(peer: ControlPeer): boolean {
    if (this.mode === SessionMode.MANUAL) return true;
    return this.isHumanControlled() && (peer.user === undefined || peer.user === this.controllerName);
  }

  /**
   * Applies a human's action to the display env, or returns the error frame to answer with.
   * Each applied action is one env step and, when recording, one demonstration.
   */
  humanAction(peer: ControlPeer, action: number[]): { error: string; message: string; controller?: string } | undefined {
    if (this.status === 'STOPPED') return { error: 'STOPPED', message: 'the simulation is stopped' };
    if (!this.mayDrive(peer)) {
      return { error: 'NOT_CONTROLLER', message: `${this.controllerName} controls this simulator`, controller: this.controllerName };
    }
    const env = this.displayEnv();
    if (action.length !== env.actDim) return { error: 'BAD_REQUEST', message: `action needs ${env.actDim} values` };
    const obs = env.observe();
    const applied = action.map((a) => Math.max(-1, Math.min(1, a)));
    const r = env.step(applied);
    this.host.stats.humanActionsApplied++;
    this.countSteps(1);
    if (this.recordDemonstrations) {
      this.demos.push({ obs, action: applied, reward: r.reward, done: r.done, next_obs: r.obs });
      if (this.demos.length > MAX_PENDING_DEMOS) this.demos.shift();
      this.recorded++;
      this.host.stats.demonstrationsRecorded++;
    }
    const frame = this.stateFrame();
    if (r.done) env.reset();
    if (this.isHumanControlled()) this.idleTimer?.refresh();
    this.broadcast(frame);
    return undefined;
  }

  stateFrame(): string {
    const env = this.displayEnv();
    return JSON.stringify({
      type: 'state',
      t: Math.round(this.simTime * 1000) / 1000,
      joints: env.joints,
      ee: env.eePosition,
      goal: env.goal,
      reward: env.reward,
      done: env.done,
      controller: this.controllerName,
      demonstrations: this.recorded,
      episode: env.episode,
    });
  }

  private tick(): void {
    if (this.status === 'RUNNING') this.simTime += TICK_MS / 1000;
    this.broadcast(this.stateFrame());
  }

  private broadcast(frame: string): void {
    for (const p of this.peers) p.send(frame);
  }

  // ---- human control ----------------------------------------------------------------------

  private armIdleTimer(): void {
    this.disarmIdleTimer();
    this.idleTimer = setTimeout(() => this.returnToAi('idle'), this.idleTimeoutMs);
    this.idleTimer.unref();
  }

  private disarmIdleTimer(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
  }

  private returnToAi(reason: ControlReturnReason): void {
    if (this.ended || !this.isHumanControlled()) return;
    this.host.logger.info({ session: this.id, human: this.controllerName, reason }, 'control returned to the AI');
    this.controllerName = AI;
    this.disarmIdleTimer();
    this.broadcast(JSON.stringify({ type: 'control', controller: AI, reason }));
    this.host.controlReturned(this, reason);
  }

  // ---- end --------------------------------------------------------------------------------

  /** Ends the session: peers are told why and disconnected, the env server's port is released. */
  async close(reason: string): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    this.disarmIdleTimer();
    if (this.tickTimer) clearInterval(this.tickTimer);
    this.tickTimer = undefined;
    for (const p of this.peers) p.close(4410, `session ended: ${reason}`.slice(0, 120));
    this.peers.clear();
    await this.envServer?.close();
    this.envServer = undefined;
  }
}
