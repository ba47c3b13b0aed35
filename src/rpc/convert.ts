/**
 * Protobuf ⇄ domain. The only place that knows both the generated types and the core's model.
 */
import type { MessageInitShape } from '@bufbuild/protobuf';
import { timestampFromMs, type Timestamp } from '@bufbuild/protobuf/wkt';
import { SessionMode, TrainingStatus, type Position, type SceneConfig, type StreamConfig, type TrainingConfig, type ResourceRequirements, type ZmqChannelSchema } from '../gen/neuro/v1/common_pb.js';
import {
  SessionState,
  type CreateHybridSessionRequest,
  type CreateSessionRequest,
  type CreateTrainingSessionRequest,
  type HybridConfig,
  type SessionSchema,
  type SessionEventSchema,
  type TrainingProgress,
  type TrainingProgressSchema,
  type PlacementSchema,
} from '../gen/neuro/v1/neuro_orchestrator_pb.js';
import type { InstanceInfoSchema, PoolStatusSchema } from '../gen/neuro/v1/resource_pb.js';
import { InstanceKind, type InstanceSpec as InstanceSpecPb, type InstanceBeat } from '../gen/neuro/v1/registry_pb.js';
import type { Beat } from '../core/engine.js';
import type { Pool } from '../core/pool.js';
import { statusOf, type Instance, type InstanceKind as Kind, type InstanceSpec, type Mode, type Progress, type Scene, type Session, type SessionEvent, type SessionState as State, type Stream, type TrainingStatus as TStatus, type Vec3 } from '../core/model.js';
import type { RawCreate } from '../core/validate.js';

const ZERO: Vec3 = { x: 0, y: 0, z: 0 };

function vec(p: Position | undefined): Vec3 {
  return p ? { x: p.x, y: p.y, z: p.z } : { ...ZERO };
}

function scene(s: SceneConfig | undefined): Scene | null {
  if (!s) return null;
  return {
    robotUrdf: s.robotUrdf,
    obstacles: s.obstacles.map((o) => ({ id: o.id, shape: o.shape || 'box', position: vec(o.position), size: vec(o.size) })),
    start: vec(s.startPosition),
    goal: s.goalPosition ? vec(s.goalPosition) : null,
  };
}

function stream(s: StreamConfig | undefined): Stream | null {
  return s ? { width: s.width, height: s.height, fps: s.fps, transport: s.transport } : null;
}

function modeName(m: SessionMode): string {
  if (m === SessionMode.SESSION_MODE_UNSPECIFIED) return '';
  return SessionMode[m] ?? `UNKNOWN(${m})`;
}

function training(t: TrainingConfig | undefined) {
  return t ? { algorithm: t.algorithm, totalEpisodes: t.totalEpisodes, parallelEnvs: t.parallelEnvs, hyperparameters: { ...t.hyperparameters } } : null;
}

function requirements(r: ResourceRequirements | undefined) {
  return r ? { trainingGpus: r.trainingGpus, trainingMemoryGb: r.trainingMemoryGb, simulators: r.isaacSimInstances, labels: { ...r.labels } } : null;
}

function hybrid(h: HybridConfig | undefined) {
  return h
    ? { initialController: h.initialController, recordDemonstrations: h.recordDemonstrations, idleTimeoutSeconds: h.humanIdleTimeoutSeconds, allowForceTakeover: h.allowForceTakeover }
    : null;
}

export function rawManual(r: CreateSessionRequest): RawCreate {
  return { sessionId: r.sessionId, mode: modeName(r.mode), scene: scene(r.sceneConfig), stream: stream(r.streamConfig), training: null, requirements: null, hybrid: null, labels: { ...r.labels } };
}

export function rawTraining(r: CreateTrainingSessionRequest): RawCreate {
  return {
    sessionId: r.sessionId,
    mode: modeName(r.mode),
    scene: scene(r.sceneConfig),
    stream: null,
    training: training(r.trainingConfig),
    requirements: requirements(r.resourceRequirements),
    hybrid: null,
    labels: {},
  };
}

export function rawHybrid(r: CreateHybridSessionRequest): RawCreate {
  return {
    sessionId: r.sessionId,
    mode: modeName(r.mode),
    scene: scene(r.sceneConfig),
    stream: stream(r.streamConfig),
    training: training(r.trainingConfig),
    requirements: requirements(r.resourceRequirements),
    hybrid: hybrid(r.hybridConfig),
    labels: {},
  };
}

export function modeToProto(m: Mode): SessionMode {
  return SessionMode[m];
}

export function modeFromProto(m: SessionMode): Mode | null {
  return m === SessionMode.MANUAL ? 'MANUAL' : m === SessionMode.TRAINING ? 'TRAINING' : m === SessionMode.HYBRID ? 'HYBRID' : null;
}

export function stateToProto(s: State): SessionState {
  return SessionState[s];
}

export function stateFromProto(s: SessionState): State | null {
  return s === SessionState.UNSPECIFIED ? null : ((SessionState[s] as State | undefined) ?? null);
}

export function trainingStatusToProto(t: TStatus): TrainingStatus {
  return t ? TrainingStatus[t] : TrainingStatus.TRAINING_STATUS_UNSPECIFIED;
}

function ts(ms: number | null): Timestamp | undefined {
  return ms === null ? undefined : timestampFromMs(ms);
}

export function sceneToProto(s: Scene): MessageInitShape<typeof import('../gen/neuro/v1/common_pb.js').SceneConfigSchema> {
  return {
    robotUrdf: s.robotUrdf,
    obstacles: s.obstacles.map((o) => ({ id: o.id, shape: o.shape, position: o.position, size: o.size })),
    startPosition: s.start,
    goalPosition: s.goal ?? undefined,
  };
}

export function progressToProto(p: Progress): MessageInitShape<typeof TrainingProgressSchema> {
  return {
    episodesDone: BigInt(p.episodesDone),
    totalEpisodes: BigInt(p.totalEpisodes),
    meanReward: p.meanReward,
    lastReward: p.lastReward,
    firstMeanReward: p.firstMeanReward,
    envStepsPerSecond: p.envStepsPerSecond,
    envSteps: BigInt(p.envSteps),
    channels: p.channels.map((c) => ({ isaacInstanceId: c.simulatorId, zmqEndpoint: c.endpoint, protocol: 'REQ-REP', state: c.state })),
    demonstrations: Object.fromEntries(Object.entries(p.demonstrations).map(([k, v]) => [k, BigInt(v)])),
    policyLoss: p.policyLoss,
  };
}

export function progressFromProto(p: TrainingProgress): Progress {
  return {
    episodesDone: Number(p.episodesDone),
    totalEpisodes: Number(p.totalEpisodes),
    meanReward: p.meanReward,
    lastReward: p.lastReward,
    firstMeanReward: p.firstMeanReward,
    envStepsPerSecond: p.envStepsPerSecond,
    envSteps: Number(p.envSteps),
    channels: p.channels.map((c) => ({ simulatorId: c.isaacInstanceId, endpoint: c.zmqEndpoint, state: c.state })),
    demonstrations: Object.fromEntries(Object.entries(p.demonstrations).map(([k, v]) => [k, Number(v)])),
    policyLoss: p.policyLoss,
  };
}

export function channelsToProto(s: Session): MessageInitShape<typeof ZmqChannelSchema>[] {
  return s.channels.map((c) => ({ isaacInstanceId: c.simulatorId, zmqEndpoint: c.endpoint, protocol: 'REQ-REP', state: c.state }));
}

export function eventToProto(e: SessionEvent): MessageInitShape<typeof SessionEventSchema> {
  return {
    sessionId: e.sessionId,
    sequence: BigInt(e.sequence),
    time: ts(e.time),
    type: e.type,
    state: stateToProto(e.state),
    message: e.message,
    isaacInstanceId: e.simulatorId ?? '',
    controller: e.controller ?? '',
    progress: e.progress ? progressToProto(e.progress) : undefined,
  };
}

/** Renders URLs that depend on Neuro's configuration (the WebRTC signalling template). */
export interface UrlRenderer {
  webrtc(sessionId: string, instanceId: string): string;
}

export function simulatorEndpoints(s: Session, urls: UrlRenderer) {
  return s.simulators.map((id) => ({ isaacInstanceId: id, controlWsUrl: s.controlUrls[id] ?? '', webrtcSignalingUrl: urls.webrtc(s.id, id) }));
}

function placementToProto(p: Session['placements'][number]): MessageInitShape<typeof PlacementSchema> {
  return { instanceId: p.instanceId, role: p.role, score: p.score, scores: p.scores, reason: p.reason, candidatesConsidered: p.candidatesConsidered, filtered: p.filtered };
}

export function sessionToProto(s: Session, urls: UrlRenderer, withEvents = true): MessageInitShape<typeof SessionSchema> {
  const r = s.request;
  const manual = s.mode === 'MANUAL';
  const sim = s.simulators[0] ?? '';
  return {
    sessionId: s.id,
    mode: modeToProto(s.mode),
    state: stateToProto(s.state),
    epoch: BigInt(s.epoch),
    instanceId: manual ? sim : '',
    controlWsUrl: manual ? (s.controlUrls[sim] ?? '') : '',
    webrtcSignalingUrl: manual ? urls.webrtc(s.id, sim) : '',
    trainingInstanceId: s.trainer ?? '',
    isaacInstanceIds: manual ? [] : s.simulators,
    zmqChannels: channelsToProto(s),
    trainingStatus: trainingStatusToProto(s.trainingStatus),
    progress: s.progress ? progressToProto(s.progress) : undefined,
    simulatorEndpoints: s.mode === 'HYBRID' ? simulatorEndpoints(s, urls) : [],
    controllers: Object.entries(s.controllers).map(([id, c]) => ({ isaacInstanceId: id, controller: c.controller, since: ts(c.since), demonstrations: BigInt(c.demonstrations) })),
    sceneConfig: sceneToProto(r.scene),
    streamConfig: r.stream ?? undefined,
    trainingConfig: r.training ?? undefined,
    resourceRequirements: r.requirements ? { trainingGpus: r.requirements.trainingGpus, trainingMemoryGb: r.requirements.trainingMemoryGb, isaacSimInstances: r.requirements.simulators, labels: r.requirements.labels } : undefined,
    hybridConfig: r.hybrid
      ? { initialController: r.hybrid.initialController, recordDemonstrations: r.hybrid.recordDemonstrations, humanIdleTimeoutSeconds: r.hybrid.idleTimeoutSeconds, allowForceTakeover: r.hybrid.allowForceTakeover }
      : undefined,
    placements: s.placements.map(placementToProto),
    failureReason: s.failureReason,
    createdAt: ts(s.createdAt),
    updatedAt: ts(s.updatedAt),
    endedAt: ts(s.endedAt),
    events: withEvents ? s.events.map(eventToProto) : [],
    status: s.simStatus,
  };
}

export function instanceInfo(i: Instance): MessageInitShape<typeof InstanceInfoSchema> {
  return {
    instanceId: i.spec.id,
    gpuId: i.spec.gpus[0]?.id ?? '',
    status: statusOf(i),
    pairedWith: i.pairedWith ?? '',
    sessionId: i.sessionId ?? '',
    kind: i.spec.kind,
    host: i.spec.host,
    zone: i.spec.zone,
    gpuIds: i.spec.gpus.map((g) => g.id),
    memoryGb: i.spec.memoryGb,
    labels: i.spec.labels,
    address: i.spec.address,
    fps: i.fps,
    gpuUtilization: i.gpuUtilization,
    lastHeartbeat: ts(i.lastHeartbeat),
    draining: i.draining,
    pairedInstances: i.paired,
  };
}

export function poolStatus(pool: Pool, kind: Kind, withInstances: boolean): MessageInitShape<typeof PoolStatusSchema> {
  const c = pool.counts[kind];
  const total = c.idle + c.running + c.unhealthy + c.draining + c.joining;
  const instances: MessageInitShape<typeof InstanceInfoSchema>[] = [];
  if (withInstances) for (const i of pool.instances.values()) if (i.spec.kind === kind) instances.push(instanceInfo(i));
  return {
    totalInstances: total,
    idleInstances: c.idle,
    runningInstances: c.running,
    unhealthyInstances: c.unhealthy,
    drainingInstances: c.draining,
    joiningInstances: c.joining,
    totalGpus: pool.gpus[kind].total,
    idleGpus: pool.gpus[kind].idle,
    instances,
  };
}

/**
 * One copy of each repeated string (hosts, zones, addresses, GPU ids, labels): every decoded message
 * brings its own copies, and a pool of 100,000 instances repeats a few hundred distinct values.
 */
const interned = new Map<string, string>();
function intern(v: string): string {
  const have = interned.get(v);
  if (have !== undefined) return have;
  if (interned.size < 100_000) interned.set(v, v);
  return v;
}

export function specFromProto(s: InstanceSpecPb): InstanceSpec {
  const labels: Record<string, string> = {};
  for (const [k, v] of Object.entries(s.labels)) labels[intern(k)] = intern(v);
  return {
    id: s.instanceId,
    kind: s.kind === InstanceKind.TRAINER ? 'trainer' : 'simulator',
    address: intern(s.grpcAddress),
    host: intern(s.host),
    zone: intern(s.zone),
    gpus: s.gpus.map((g) => ({ id: intern(g.id), memoryMb: g.memoryMb })),
    memoryGb: s.memoryGb,
    labels,
    controlWsBase: s.controlWsBase,
    zmqHost: intern(s.zmqHost),
    zmqPortMin: s.zmqPortMin,
    zmqPortMax: s.zmqPortMax,
  };
}

export function beatFromProto(b: InstanceBeat): Beat {
  return {
    instanceId: b.instanceId,
    sessions: b.sessions.map((s) => ({ sessionId: s.sessionId, epoch: Number(s.epoch) })),
    fps: b.fps,
    gpuUtilization: b.gpuUtilization,
    warmRobots: b.warmRobots,
  };
}

