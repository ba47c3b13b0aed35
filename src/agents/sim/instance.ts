/**
 * One virtual simulator instance: the epoch it has accepted, its current session and what it tells
 * Neuro about itself. It holds no timer, socket or env until a session needs one, so an agent can
 * host thousands of them.
 */
import { create, type DescMessage, type MessageInitShape } from '@bufbuild/protobuf';
import type { Logger } from 'pino';
import { BindEnvServerRequestSchema } from '../../gen/isaac/v1/isaac_sim_pb.js';
import type {
  BindEnvServerRequest,
  BindEnvServerResponseSchema,
  CreateSessionRequest,
  CreateSessionResponseSchema,
  DestroySessionRequest,
  DestroySessionResponseSchema,
  GetStatusResponseSchema,
  SetControlSourceRequest,
  SetControlSourceResponseSchema,
  StartSimulationResponseSchema,
  StopSimulationResponseSchema,
} from '../../gen/isaac/v1/isaac_sim_pb.js';
import { SessionMode, type Position, type SimulationStatusSchema } from '../../gen/neuro/v1/common_pb.js';
import { InstanceKind } from '../../gen/neuro/v1/registry_pb.js';
import { NeuroError, type FieldViolation } from '../../core/errors.js';
import type { HostedInstance, InstanceBeatInit, InstanceSpecInit, RegistryClient } from '../common/registry-client.js';
import { loadRobot, RobotAssetError, type ObstacleShape, type ObstacleSpec, type RobotModel, type Vec3 } from '../env/index.js';
import { EnvServer, handleEnvRequest } from './env-server.js';
import { AI, SimSession, type ControlReturnReason, type InstanceStats } from './session.js';

type Init<S extends DescMessage> = MessageInitShape<S>;

/** What every instance of an agent process shares. */
export interface AgentContext {
  /** Advertised address for clients (control WebSocket, ZeroMQ). */
  host: string;
  /** Topology host reported to Neuro. */
  hostLabel: string;
  zone: string;
  httpPort: number;
  grpcAddress: string;
  assetsDir: string;
  gpusPerInstance: number;
  memoryGb: number;
  labels: Record<string, string>;
  logger: Logger;
  registry?: RegistryClient;
}

const SHAPES = new Set<string>(['box', 'sphere', 'cylinder']);
const TRANSPORTS = new Set(['', 'webrtc', 'none']);
const DEFAULT_IDLE_SECONDS = 60;
const DEFAULT_STREAM_FPS = 30;
const MAX_ID_LENGTH = 256;
const ENDPOINT = /^tcp:\/\/([^:/\s]+|\[[0-9a-fA-F:.]+\]):(\d{1,5}|\*)$/;

function staleEpoch(instanceId: string, epoch: bigint, held: bigint): NeuroError {
  return new NeuroError('FAILED_PRECONDITION', 'STALE_EPOCH', `epoch ${epoch} is stale: ${instanceId} holds epoch ${held}`, {
    resource: { type: 'instance', name: instanceId },
    metadata: { held_epoch: String(held), epoch: String(epoch) },
  });
}

function wrongMode(what: string, mode: SessionMode): NeuroError {
  return new NeuroError('FAILED_PRECONDITION', 'WRONG_MODE', `${what} is not available in a ${SessionMode[mode]} session`);
}

const vec = (p: Position | undefined): Vec3 => ({ x: p?.x ?? 0, y: p?.y ?? 0, z: p?.z ?? 0 });

/**
 * A virtual simulator: serves IsaacSimService commands under the epoch rule (a command must carry
 * its session's epoch; a create must carry a higher one than any seen), and reports to Neuro
 * through the agent's registry client.
 */
export class SimInstance implements HostedInstance {
  readonly stats: InstanceStats = { aiStepsApplied: 0, aiStepsRefused: 0, humanActionsApplied: 0, demonstrationsRecorded: 0 };
  /** The highest epoch this instance has accepted: anything at or below it is history. */
  private highestEpoch = 0n;
  private current?: SimSession;
  /** Teardown of the previous session, which a new bind on the same port must wait for. */
  private teardown: Promise<void> = Promise.resolve();
  private dead = false;
  private warm?: Set<string>;

  constructor(
    readonly id: string,
    private readonly ctx: AgentContext,
    readonly zmqPortMin: number,
    readonly zmqPortMax: number,
  ) {}

  get logger(): Logger {
    return this.ctx.logger;
  }

  get instanceId(): string {
    return this.id;
  }

  get session(): SimSession | undefined {
    return this.current;
  }

  get alive(): boolean {
    return !this.dead;
  }

  get controlWsBase(): string {
    return `ws://${this.ctx.host}:${this.ctx.httpPort}/i/${this.id}`;
  }

  // ---- HostedInstance ----------------------------------------------------------------------

  spec(): InstanceSpecInit {
    const c = this.ctx;
    return {
      instanceId: this.id,
      kind: InstanceKind.SIMULATOR,
      grpcAddress: c.grpcAddress,
      host: c.hostLabel,
      zone: c.zone,
      gpus: Array.from({ length: c.gpusPerInstance }, (_, i) => ({ id: `GPU-${i}`, memoryMb: 24_576 })),
      memoryGb: c.memoryGb,
      labels: c.labels,
      controlWsBase: this.controlWsBase,
      zmqHost: c.host,
      zmqPortMin: this.zmqPortMin,
      zmqPortMax: this.zmqPortMax,
    };
  }

  beat(): InstanceBeatInit {
    const s = this.current;
    return {
      instanceId: this.id,
      sessions: s ? [{ sessionId: s.id, epoch: s.epoch }] : [],
      fps: s?.fps() ?? 0,
      gpuUtilization: s?.gpuUtilization() ?? 0.01,
      warmRobots: this.warm ? [...this.warm] : [],
    };
  }

  stopSession(sessionId: string, epoch: bigint, reason: string): void {
    const s = this.current;
    if (!s || s.id !== sessionId || s.epoch !== epoch) return;
    this.end(`stopped by Neuro: ${reason || 'session ended'}`).catch((e: Error) => this.logger.warn({ err: e, instance: this.id }, 'stopping a session failed'));
  }

  // ---- commands ----------------------------------------------------------------------------

  async createSession(req: CreateSessionRequest): Promise<Init<typeof CreateSessionResponseSchema>> {
    this.ensureAlive();
    const live = this.current;
    if (live && live.id === req.sessionId && live.epoch === req.epoch) {
      // Neuro retrying a create whose answer it lost: same session, same answer.
      await this.teardown;
      if (req.zmqEndpoint) await this.bindEnvServer(this.bindRequest(req));
      return this.created(live, 'session already created');
    }
    if (req.epoch === 0n) throw NeuroError.invalid([{ field: 'epoch', description: 'must be greater than 0' }]);
    if (req.epoch <= this.highestEpoch) throw staleEpoch(this.id, req.epoch, this.highestEpoch);
    const session = new SimSession(this.sessionParams(req), {
      instanceId: this.id,
      stats: this.stats,
      logger: this.logger,
      controlReturned: (s, reason) => this.controlReturned(s, reason),
    });
    // Accept synchronously so a concurrent command already sees the new epoch; tear down after.
    this.highestEpoch = req.epoch;
    if (live) this.logger.info({ instance: this.id, old: live.id, session: session.id }, 'a newer epoch replaces the session');
    const previous = this.end('replaced by a newer session');
    this.current = session;
    (this.warm ??= new Set()).add(session.robot.name);
    await previous;
    if (req.zmqEndpoint) {
      try {
        await this.bindEnvServer(this.bindRequest(req));
      } catch (e) {
        if (this.current === session) await this.end(`env server not bound: ${(e as Error).message}`);
        throw e;
      }
    }
    return this.created(session, 'session created');
  }

  private bindRequest(req: CreateSessionRequest): BindEnvServerRequest {
    return create(BindEnvServerRequestSchema, { instanceId: req.instanceId, sessionId: req.sessionId, epoch: req.epoch, zmqEndpoint: req.zmqEndpoint, envs: req.envs });
  }

  async destroySession(req: DestroySessionRequest): Promise<Init<typeof DestroySessionResponseSchema>> {
    this.ensureAlive();
    const s = this.current;
    if (!s || s.id !== req.sessionId) return { success: true, message: 'no such live session: nothing to destroy' };
    if (s.epoch !== req.epoch) throw staleEpoch(this.id, req.epoch, s.epoch);
    await this.end(req.reason || 'destroyed');
    return { success: true, message: 'session destroyed' };
  }

  startSimulation(sessionId: string, epoch: bigint): Init<typeof StartSimulationResponseSchema> {
    const s = this.live(sessionId, epoch);
    s.start();
    return { success: true, message: 'simulation running', status: this.status(s) };
  }

  stopSimulation(sessionId: string, epoch: bigint): Init<typeof StopSimulationResponseSchema> {
    const s = this.live(sessionId, epoch);
    s.stop();
    return { success: true, message: 'simulation stopped', status: this.status(s) };
  }

  async bindEnvServer(req: BindEnvServerRequest): Promise<Init<typeof BindEnvServerResponseSchema>> {
    const s = this.live(req.sessionId, req.epoch);
    if (s.mode === SessionMode.MANUAL) throw wrongMode('an env server', s.mode);
    if (!ENDPOINT.test(req.zmqEndpoint)) {
      throw NeuroError.invalid([{ field: 'zmq_endpoint', description: `expected "tcp://host:port", got ${JSON.stringify(req.zmqEndpoint)}` }]);
    }
    const envs = req.envs || 1;
    if (envs > 1024) throw NeuroError.invalid([{ field: 'envs', description: 'at most 1024 envs per simulator' }]);
    const bound = s.envServer;
    if (bound && bound.requested === req.zmqEndpoint && s.aiEnvs === envs) {
      return { success: true, message: 'env server already bound', zmqEndpoint: bound.endpoint };
    }
    await this.teardown;
    await bound?.close();
    s.envServer = undefined;
    if (s.closed || this.current !== s) throw NeuroError.notFound('session', req.sessionId);
    s.useAiEnvs(envs);
    const channel = { closed: false };
    let server: EnvServer;
    try {
      server = await EnvServer.bind(
        req.zmqEndpoint,
        (msg) => handleEnvRequest(s, this.id, this.stats, channel, msg),
        (err) => this.logger.warn({ err, instance: this.id, session: s.id }, 'env server failed'),
      );
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      const inUse = err.code === 'EADDRINUSE';
      throw new NeuroError('UNAVAILABLE', inUse ? 'PORT_IN_USE' : 'BIND_FAILED', `cannot bind ${req.zmqEndpoint}: ${err.message}`, {
        resource: { type: 'zmq_endpoint', name: req.zmqEndpoint },
      });
    }
    if (s.closed || this.current !== s) {
      // The session ended while binding: do not leave its port held.
      await server.close();
      throw NeuroError.notFound('session', req.sessionId);
    }
    s.envServer = server;
    this.logger.debug({ instance: this.id, session: s.id, endpoint: server.endpoint, envs }, 'env server bound');
    return { success: true, message: `env server bound with ${envs} env${envs === 1 ? '' : 's'}`, zmqEndpoint: server.endpoint };
  }

  setControlSource(req: SetControlSourceRequest): Init<typeof SetControlSourceResponseSchema> {
    const s = this.live(req.sessionId, req.epoch);
    if (s.mode !== SessionMode.HYBRID) throw wrongMode('switching the control source', s.mode);
    const controller = req.controller.trim();
    if (!controller || controller.length > MAX_ID_LENGTH) {
      throw NeuroError.invalid([{ field: 'controller', description: '"ai" or the human\'s name' }]);
    }
    s.setController(controller);
    return { success: true, message: `${controller} controls ${this.id}`, controller, demonstrations: BigInt(s.demonstrations) };
  }

  getStatus(): Init<typeof GetStatusResponseSchema> {
    this.ensureAlive();
    const s = this.current;
    // Idle, the epoch is the highest accepted: what a recovering Neuro must exceed to allocate this instance.
    if (!s) return { status: { status: 'IDLE', fps: 0, gpuUtilization: 0.01 }, sessionId: '', epoch: this.highestEpoch };
    return { status: this.status(s), sessionId: s.id, epoch: s.epoch };
  }

  /** Simulates this instance dying: it stops answering and its session's resources are released. */
  kill(): Promise<void> {
    this.dead = true;
    return this.end('instance killed');
  }

  /** Ends the current session (if any) on agent shutdown. */
  shutdown(): Promise<void> {
    return this.end('agent stopping');
  }

  /** The live session `sessionId` at `epoch`, or the error Neuro should get. */
  live(sessionId: string, epoch: bigint): SimSession {
    this.ensureAlive();
    const s = this.current;
    if (s && s.id === sessionId) {
      if (s.epoch !== epoch) throw staleEpoch(this.id, epoch, s.epoch);
      return s;
    }
    if (epoch < this.highestEpoch) throw staleEpoch(this.id, epoch, this.highestEpoch);
    throw NeuroError.notFound('session', sessionId);
  }

  // ---- internals ---------------------------------------------------------------------------

  private ensureAlive(): void {
    if (this.dead) throw new NeuroError('UNAVAILABLE', 'INSTANCE_DOWN', `${this.id} is down`, { resource: { type: 'instance', name: this.id } });
  }

  private end(reason: string): Promise<void> {
    const s = this.current;
    if (!s) return this.teardown;
    this.current = undefined;
    const done = this.teardown.then(() => s.close(reason));
    this.teardown = done.catch((e: Error) => this.logger.warn({ err: e, instance: this.id, session: s.id }, 'session teardown failed'));
    return this.teardown;
  }

  private created(s: SimSession, message: string): Init<typeof CreateSessionResponseSchema> {
    return { success: true, message, controlWsUrl: `${this.controlWsBase}/control/${encodeURIComponent(s.id)}`, status: this.status(s) };
  }

  private status(s: SimSession): Init<typeof SimulationStatusSchema> {
    return { status: s.status, fps: s.fps(), gpuUtilization: s.gpuUtilization() };
  }

  private controlReturned(s: SimSession, reason: ControlReturnReason): void {
    const registry = this.ctx.registry;
    if (!registry || this.current !== s) return;
    registry
      .reportProgress({
        instanceId: this.id,
        sessionId: s.id,
        epoch: s.epoch,
        control: { isaacInstanceId: this.id, controller: AI, reason, demonstrations: BigInt(s.demonstrations) },
      })
      .catch((e: Error) => this.logger.warn({ err: e, instance: this.id, session: s.id }, 'reporting a control change to Neuro failed'));
  }

  /** Validates a CreateSession request into session parameters (INVALID_ARGUMENT naming each bad field). */
  private sessionParams(req: CreateSessionRequest): ConstructorParameters<typeof SimSession>[0] {
    const violations: FieldViolation[] = [];
    if (!req.sessionId || req.sessionId.length > MAX_ID_LENGTH) {
      violations.push({ field: 'session_id', description: `required, at most ${MAX_ID_LENGTH} characters` });
    }
    const scene = req.sceneConfig;
    let robot: RobotModel | undefined;
    if (!scene?.robotUrdf) {
      violations.push({ field: 'scene_config.robot_urdf', description: 'required: an asset name such as "franka_panda.urdf"' });
    } else {
      try {
        robot = loadRobot(this.ctx.assetsDir, scene.robotUrdf);
      } catch (e) {
        if (!(e instanceof RobotAssetError)) throw e;
        violations.push({ field: e.field, description: e.message });
      }
    }
    const obstacles: ObstacleSpec[] = [];
    (scene?.obstacles ?? []).forEach((o, i) => {
      if (!SHAPES.has(o.shape)) {
        violations.push({ field: `scene_config.obstacles[${i}].shape`, description: 'one of "box", "sphere", "cylinder"' });
      }
      const size = vec(o.size);
      if (![size.x, size.y, size.z].every((v) => Number.isFinite(v) && v >= 0)) {
        violations.push({ field: `scene_config.obstacles[${i}].size`, description: 'finite and non-negative' });
      }
      obstacles.push({ id: o.id || `obstacle-${i}`, shape: o.shape as ObstacleShape, position: vec(o.position), size });
    });
    const stream = req.streamConfig;
    const transport = stream?.transport ?? '';
    if (!TRANSPORTS.has(transport)) violations.push({ field: 'stream_config.transport', description: '"webrtc" or "none"' });
    if (violations.length || !robot) throw NeuroError.invalid(violations);

    const mode = req.mode === SessionMode.SESSION_MODE_UNSPECIFIED ? SessionMode.MANUAL : req.mode;
    const initial = req.initialController.trim();
    return {
      id: req.sessionId,
      epoch: req.epoch,
      mode,
      robot,
      scene: { obstacles, start: vec(scene?.startPosition), goal: scene?.goalPosition ? vec(scene.goalPosition) : undefined },
      stream: { width: stream?.width || 1280, height: stream?.height || 720, fps: stream?.fps || DEFAULT_STREAM_FPS, transport: transport || 'webrtc' },
      initialController: mode === SessionMode.HYBRID ? initial || AI : mode === SessionMode.MANUAL ? initial || 'human' : AI,
      recordDemonstrations: req.recordDemonstrations,
      humanIdleTimeoutMs: (req.humanIdleTimeoutSeconds || DEFAULT_IDLE_SECONDS) * 1000,
    };
  }
}
