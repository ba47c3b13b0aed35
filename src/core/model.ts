/**
 * The domain's vocabulary: instances, sessions and what callers ask for. Plain data, so the store can
 * persist it as JSON and property tests can build it freely. Times are milliseconds since the epoch,
 * always passed in by the caller: the core never reads a clock.
 */

export type InstanceKind = 'simulator' | 'trainer';
export type Mode = 'MANUAL' | 'TRAINING' | 'HYBRID';

export interface Vec3 {
  x: number;
  y: number;
  z: number;
}

export interface Obstacle {
  id: string;
  shape: string;
  position: Vec3;
  size: Vec3;
}

export interface Scene {
  robotUrdf: string;
  obstacles: Obstacle[];
  start: Vec3;
  goal: Vec3 | null;
}

export interface Stream {
  width: number;
  height: number;
  fps: number;
  transport: string;
}

export interface TrainingSpec {
  algorithm: string;
  totalEpisodes: number;
  parallelEnvs: number;
  hyperparameters: Record<string, string>;
}

export interface Requirements {
  trainingGpus: number;
  trainingMemoryGb: number;
  simulators: number;
  labels: Record<string, string>;
}

export interface HybridSpec {
  /** 'ai' or a human's name. */
  initialController: string;
  recordDemonstrations: boolean;
  idleTimeoutSeconds: number;
  allowForceTakeover: boolean;
}

/** A create request of any mode, as validated at the edge. */
export interface CreateRequest {
  sessionId: string;
  mode: Mode;
  scene: Scene;
  stream: Stream | null;
  training: TrainingSpec | null;
  requirements: Requirements | null;
  hybrid: HybridSpec | null;
  /** MANUAL: simulators must carry these labels. */
  labels: Record<string, string>;
}

/** What an instance tells about itself when it registers. */
export interface InstanceSpec {
  id: string;
  kind: InstanceKind;
  address: string;
  host: string;
  zone: string;
  gpus: { id: string; memoryMb: number }[];
  memoryGb: number;
  labels: Record<string, string>;
  controlWsBase: string;
  zmqHost: string;
  zmqPortMin: number;
  zmqPortMax: number;
}

/** Health as heartbeats tell it; `joining` until the first beat after (re)registration or a restart. */
export type Health = 'joining' | 'healthy' | 'unhealthy';

/** What the pool reports for an instance (the seed's lower-case `status`). */
export type InstanceStatus = 'joining' | 'idle' | 'running' | 'unhealthy' | 'draining';

export interface Instance {
  spec: InstanceSpec;
  health: Health;
  draining: boolean;
  /** Listed in the config file rather than registered. */
  static: boolean;
  sessionId: string | null;
  /** Epoch of the current allocation (0 when idle). */
  epoch: number;
  /** A simulator's trainer while in a TRAINING/HYBRID session. */
  pairedWith: string | null;
  /** A trainer's simulators while in a session. */
  paired: string[];
  lastHeartbeat: number;
  fps: number;
  gpuUtilization: number;
  /** Robots the simulator has loaded before: it starts them faster. */
  warm: string[];
  /** Where the next ZeroMQ port search starts, so a just-freed port is not reused at once. */
  portCursor: number;
}

export type SessionState = 'PENDING' | 'INITIALIZING' | 'READY' | 'RUNNING' | 'STOPPING' | 'TERMINATED' | 'COMPLETED' | 'FAILED';

export type TrainingStatus = 'INITIALIZING' | 'RUNNING' | 'COMPLETED' | 'FAILED' | 'STOPPED' | null;

export interface Channel {
  simulatorId: string;
  endpoint: string;
  host: string;
  port: number;
  state: string;
}

export interface ScoreComponent {
  name: string;
  value: number;
}

/** Why an instance was chosen, kept so GetSession can explain the placement. */
export interface Placement {
  instanceId: string;
  role: InstanceKind;
  score: number;
  scores: ScoreComponent[];
  reason: string;
  candidatesConsidered: number;
  filtered: Record<string, number>;
}

export interface ControlState {
  controller: string;
  since: number;
  demonstrations: number;
}

export interface Progress {
  episodesDone: number;
  totalEpisodes: number;
  meanReward: number;
  lastReward: number;
  firstMeanReward: number;
  envStepsPerSecond: number;
  envSteps: number;
  channels: { simulatorId: string; endpoint: string; state: string }[];
  demonstrations: Record<string, number>;
  policyLoss: number;
}

export interface SimStatus {
  status: string;
  fps: number;
  gpuUtilization: number;
}

export type EventType = 'state' | 'progress' | 'control' | 'instance';

export interface SessionEvent {
  sessionId: string;
  sequence: number;
  time: number;
  type: EventType;
  state: SessionState;
  message: string;
  simulatorId?: string;
  controller?: string;
  progress?: Progress;
}

export interface Session {
  id: string;
  mode: Mode;
  request: CreateRequest;
  /** Canonical form of the request: a retry with the same key is the same create. */
  requestKey: string;
  state: SessionState;
  epoch: number;
  simulators: string[];
  trainer: string | null;
  channels: Channel[];
  placements: Placement[];
  controllers: Record<string, ControlState>;
  /** Simulator id → its control WebSocket URL for this session (control base + /control/{session_id}). */
  controlUrls: Record<string, string>;
  progress: Progress | null;
  trainingStatus: TrainingStatus;
  simStatus: SimStatus;
  failureReason: string;
  createdAt: number;
  updatedAt: number;
  endedAt: number | null;
  /** The caller was told the create succeeded; an unacknowledged session lost in a crash may be redone. */
  acknowledged: boolean;
  /** The most recent events, oldest first (bounded). */
  events: SessionEvent[];
  eventSeq: number;
}

export const TERMINAL_STATES: ReadonlySet<SessionState> = new Set(['TERMINATED', 'COMPLETED', 'FAILED']);

/** The spec's rule for a simulator's control URL. */
export function controlUrl(base: string, sessionId: string): string {
  return `${base.replace(/\/+$/, '')}/control/${sessionId}`;
}

export function isLive(s: Session): boolean {
  return !TERMINAL_STATES.has(s.state);
}

/** The seed's lower-case status of an instance. */
export function statusOf(i: Instance): InstanceStatus {
  if (i.health === 'unhealthy') return 'unhealthy';
  if (i.sessionId) return 'running';
  if (i.draining) return 'draining';
  if (i.health === 'joining') return 'joining';
  return 'idle';
}

/** Whether the scheduler may give this instance a new session. */
export function isAllocatable(i: Instance): boolean {
  return i.health === 'healthy' && !i.draining && i.sessionId === null;
}

/** A stable serialisation of a create request, key order fixed, for idempotency checks. */
export function requestKey(r: CreateRequest): string {
  return stableStringify(r);
}

function stableStringify(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'null';
  if (Array.isArray(v)) return `[${v.map(stableStringify).join(',')}]`;
  const o = v as Record<string, unknown>;
  return `{${Object.keys(o)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${stableStringify(o[k])}`)
    .join(',')}}`;
}
