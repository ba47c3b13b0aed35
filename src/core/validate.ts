/**
 * Validation of create requests at the edge of the domain: every violation is named by its proto field
 * path (snake_case, as Nexus sees it), and a request that fails changes nothing. What passes comes out
 * normalised (defaults filled), so the idempotency key of a retry does not depend on how it was spelt.
 */
import { NeuroError, type FieldViolation } from './errors.js';
import type { CreateRequest, HybridSpec, Mode, Obstacle, Requirements, Scene, Stream, TrainingSpec, Vec3 } from './model.js';

/** Algorithms the trainers run, and how their hyperparameters are checked (from the learning module). */
export interface AlgorithmCatalog {
  supported: readonly string[];
  check(algorithm: string, h: Record<string, string>): FieldViolation[];
}

/** A create request as it arrived: no checks done, absent messages are null, numbers as sent. */
export interface RawCreate {
  sessionId: string;
  /** The enum name, or `UNKNOWN(n)` for a number the contract does not define, or '' when unset. */
  mode: string;
  scene: Scene | null;
  stream: Stream | null;
  training: TrainingSpec | null;
  requirements: Requirements | null;
  hybrid: HybridSpec | null;
  labels: Record<string, string>;
}

export const LIMITS = {
  sessionIdMax: 128,
  width: [16, 7680] as const,
  height: [16, 4320] as const,
  fps: [1, 240] as const,
  obstacles: 256,
  coordinate: 1e4,
  totalEpisodes: [1, 10_000_000] as const,
  parallelEnvs: [1, 4096] as const,
  simulators: [1, 256] as const,
  gpus: [1, 64] as const,
  memoryGb: [0, 4096] as const,
  labels: 32,
  idleTimeoutSeconds: [0, 86_400] as const,
};

export const TRANSPORTS = ['webrtc', 'none'] as const;
export const SHAPES = ['box', 'sphere', 'cylinder'] as const;
const SESSION_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]*$/;
const ASSET = /^[A-Za-z0-9][A-Za-z0-9._-]*\.urdf$/;
const NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;
const LABEL_KEY = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$/;

/** The robot of a scene that names none (the seed's training example elides its scene). */
export const DEFAULT_ROBOT = 'franka_panda.urdf';

export const DEFAULT_STREAM: Stream = { width: 1280, height: 720, fps: 30, transport: 'webrtc' };
export const DEFAULT_IDLE_TIMEOUT_SECONDS = 60;

/** Checks a session id alone (Get/Terminate/Watch...). */
export function checkSessionId(id: string, field = 'session_id'): FieldViolation[] {
  if (!id) return [{ field, description: 'is required' }];
  if (id.length > LIMITS.sessionIdMax) return [{ field, description: `is ${id.length} characters; at most ${LIMITS.sessionIdMax}` }];
  if (!SESSION_ID.test(id)) return [{ field, description: 'may hold only letters, digits and . _ : - and must start with a letter or digit' }];
  return [];
}

/** Throws INVALID_ARGUMENT naming the field unless `id` is a well-formed session id. */
export function requireSessionId(id: string, field = 'session_id'): void {
  const v = checkSessionId(id, field);
  if (v.length) throw NeuroError.invalid(v);
}

/** A robot asset name; refuses anything path-like (`../`, absolute, NUL, separators). */
export function checkAssetName(name: string, field: string): FieldViolation[] {
  if (!name) return [{ field, description: 'is required (an asset name such as "franka_panda.urdf")' }];
  if (name.includes('\0')) return [{ field, description: 'contains a NUL byte' }];
  if (name.includes('/') || name.includes('\\') || name.includes('..')) {
    return [{ field, description: `must be an asset name, not a path: ${JSON.stringify(name.slice(0, 64))}` }];
  }
  if (name.length > 128 || !ASSET.test(name)) return [{ field, description: 'must be an asset name ending in .urdf (letters, digits, . _ -)' }];
  return [];
}

function range(v: FieldViolation[], field: string, value: number, [lo, hi]: readonly [number, number]): void {
  if (!Number.isFinite(value) || value < lo || value > hi) v.push({ field, description: `is ${value}; must be ${lo} to ${hi}` });
}

function vec(v: FieldViolation[], field: string, p: Vec3): void {
  for (const k of ['x', 'y', 'z'] as const) {
    if (!Number.isFinite(p[k]) || Math.abs(p[k]) > LIMITS.coordinate) v.push({ field: `${field}.${k}`, description: `must be a finite number within ±${LIMITS.coordinate}` });
  }
}

function labels(v: FieldViolation[], field: string, l: Record<string, string>): void {
  const keys = Object.keys(l);
  if (keys.length > LIMITS.labels) v.push({ field, description: `has ${keys.length} labels; at most ${LIMITS.labels}` });
  for (const k of keys) {
    if (!LABEL_KEY.test(k)) v.push({ field: `${field}[${k.slice(0, 64)}]`, description: 'label keys are 1-63 characters of letters, digits and . _ / -' });
    else if ((l[k] ?? '').length > 256) v.push({ field: `${field}[${k}]`, description: 'label values are at most 256 characters' });
  }
}

function scene(v: FieldViolation[], given: Scene | null): Scene {
  const s: Scene = given ? { ...given, robotUrdf: given.robotUrdf || DEFAULT_ROBOT } : { robotUrdf: DEFAULT_ROBOT, obstacles: [], start: { x: 0, y: 0, z: 0 }, goal: null };
  v.push(...checkAssetName(s.robotUrdf, 'scene_config.robot_urdf'));
  if (s.obstacles.length > LIMITS.obstacles) v.push({ field: 'scene_config.obstacles', description: `has ${s.obstacles.length}; at most ${LIMITS.obstacles}` });
  s.obstacles.slice(0, LIMITS.obstacles).forEach((o: Obstacle, k) => {
    const f = `scene_config.obstacles[${k}]`;
    if (!(SHAPES as readonly string[]).includes(o.shape)) v.push({ field: `${f}.shape`, description: `is ${JSON.stringify(o.shape)}; must be one of ${SHAPES.join(', ')}` });
    if (o.id.length > 64) v.push({ field: `${f}.id`, description: 'is longer than 64 characters' });
    vec(v, `${f}.position`, o.position);
    vec(v, `${f}.size`, o.size);
    for (const k2 of ['x', 'y', 'z'] as const) if (o.size[k2] < 0) v.push({ field: `${f}.size.${k2}`, description: 'must not be negative' });
  });
  vec(v, 'scene_config.start_position', s.start);
  if (s.goal) vec(v, 'scene_config.goal_position', s.goal);
  return s;
}

function stream(v: FieldViolation[], s: Stream | null): Stream {
  if (!s) return DEFAULT_STREAM;
  range(v, 'stream_config.width', s.width, LIMITS.width);
  range(v, 'stream_config.height', s.height, LIMITS.height);
  range(v, 'stream_config.fps', s.fps, LIMITS.fps);
  const transport = s.transport.toLowerCase();
  if (!(TRANSPORTS as readonly string[]).includes(transport)) {
    v.push({ field: 'stream_config.transport', description: `is ${JSON.stringify(s.transport.slice(0, 32))}; must be one of ${TRANSPORTS.join(', ')}` });
  }
  return { ...s, transport };
}

function training(v: FieldViolation[], t: TrainingSpec | null, r: Requirements | null, catalog: AlgorithmCatalog): { t: TrainingSpec; r: Requirements } | null {
  if (!t) v.push({ field: 'training_config', description: 'is required' });
  if (!r) v.push({ field: 'resource_requirements', description: 'is required' });
  if (!t || !r) return null;
  const algorithm = catalog.supported.find((a) => a.toLowerCase() === t.algorithm.toLowerCase());
  if (!algorithm) {
    v.push({ field: 'training_config.algorithm', description: `${t.algorithm ? `is ${JSON.stringify(t.algorithm.slice(0, 32))}` : 'is required'}; supported: ${catalog.supported.join(', ')}` });
  } else {
    v.push(...catalog.check(algorithm, t.hyperparameters));
  }
  range(v, 'training_config.total_episodes', t.totalEpisodes, LIMITS.totalEpisodes);
  range(v, 'training_config.parallel_envs', t.parallelEnvs, LIMITS.parallelEnvs);
  range(v, 'resource_requirements.isaac_sim_instances', r.simulators, LIMITS.simulators);
  const gpus = r.trainingGpus || 1;
  range(v, 'resource_requirements.training_gpus', gpus, LIMITS.gpus);
  range(v, 'resource_requirements.training_memory_gb', r.trainingMemoryGb, LIMITS.memoryGb);
  labels(v, 'resource_requirements.labels', r.labels);
  if (r.simulators >= 1 && t.parallelEnvs >= 1 && t.parallelEnvs % r.simulators !== 0) {
    v.push({
      field: 'training_config.parallel_envs',
      description: `is ${t.parallelEnvs}; must be a multiple of resource_requirements.isaac_sim_instances (${r.simulators}), each simulator running parallel_envs / isaac_sim_instances envs`,
    });
  }
  return { t: { ...t, algorithm: algorithm ?? t.algorithm }, r: { ...r, trainingGpus: gpus } };
}

function hybrid(v: FieldViolation[], h: HybridSpec | null): HybridSpec {
  const out: HybridSpec = {
    initialController: (h?.initialController || 'ai').trim(),
    recordDemonstrations: h ? h.recordDemonstrations : true,
    idleTimeoutSeconds: h?.idleTimeoutSeconds || DEFAULT_IDLE_TIMEOUT_SECONDS,
    allowForceTakeover: h?.allowForceTakeover ?? false,
  };
  if (out.initialController !== 'ai' && !NAME.test(out.initialController)) {
    v.push({ field: 'hybrid_config.initial_controller', description: 'must be "ai" or a user name of 1-64 letters, digits and . _ @ -' });
  }
  range(v, 'hybrid_config.human_idle_timeout_seconds', out.idleTimeoutSeconds, LIMITS.idleTimeoutSeconds);
  return out;
}

/**
 * Validates a create request for the RPC of mode `rpcMode`. An unset mode is taken as the RPC's own;
 * a different one is refused (CreateSession is MANUAL only, and so on).
 */
export function validateCreate(raw: RawCreate, rpcMode: Mode, catalog: AlgorithmCatalog): CreateRequest {
  const v: FieldViolation[] = [];
  v.push(...checkSessionId(raw.sessionId));
  if (raw.mode && raw.mode !== rpcMode) {
    const rpc = rpcMode === 'MANUAL' ? 'CreateSession' : rpcMode === 'TRAINING' ? 'CreateTrainingSession' : 'CreateHybridSession';
    v.push({ field: 'mode', description: `is ${raw.mode}; ${rpc} takes ${rpcMode}` });
  }
  const sc = scene(v, raw.scene);
  let out: CreateRequest;
  if (rpcMode === 'MANUAL') {
    const s = stream(v, raw.stream);
    labels(v, 'labels', raw.labels);
    out = { sessionId: raw.sessionId, mode: 'MANUAL', scene: sc, stream: s, training: null, requirements: null, hybrid: null, labels: raw.labels };
  } else {
    const tr = training(v, raw.training, raw.requirements, catalog);
    const h = rpcMode === 'HYBRID' ? hybrid(v, raw.hybrid) : null;
    const s = rpcMode === 'HYBRID' ? stream(v, raw.stream) : null;
    out = { sessionId: raw.sessionId, mode: rpcMode, scene: sc, stream: s, training: tr?.t ?? null, requirements: tr?.r ?? null, hybrid: h, labels: {} };
  }
  if (v.length) throw NeuroError.invalid(v);
  return out;
}
