/**
 * One virtual training instance: the epoch rule, the one session it runs at a time, and what it
 * tells Neuro about itself (spec and beats).
 */
import type { Logger } from 'pino';
import { SessionMode, TrainingStatus, type TrainingConfig, type ZmqChannel } from '../../gen/neuro/v1/common_pb.js';
import { InstanceKind } from '../../gen/neuro/v1/registry_pb.js';
import type {
  GetTrainingStatusRequest,
  SetEnvControlRequest,
  StartTrainingRequest,
  StopTrainingRequest,
} from '../../gen/training/v1/training_pb.js';
import { NeuroError, type FieldViolation } from '../../core/errors.js';
import { validateHyperparameters } from '../../learn/index.js';
import type { HostedInstance, InstanceBeatInit, InstanceSpecInit } from '../common/registry-client.js';
import { TrainingRun, type ReportAnswer, type TrainerProgressReport, type TrainingRunOptions } from './training-run.js';

/** What every instance of an agent shares. */
export interface TrainerContext {
  grpcAddress: string;
  hostLabel: string;
  zone: string;
  gpusPerInstance: number;
  gpuMemoryMb: number;
  memoryGb: number;
  labels: Record<string, string>;
  receiveTimeoutMs: number;
  progressIntervalMs: number;
  demoPollIntervalMs: number;
  logger: Logger;
  /** Delivers a report to Neuro (and to the agent's observer). */
  report(r: TrainerProgressReport, reportAddress: string): Promise<ReportAnswer>;
  /** Observes demonstrations as they reach the learner (tests check their content). */
  onDemonstrations?: TrainingRunOptions['onDemonstrations'];
}

/** The reason every command with an outdated epoch is refused with. */
export const STALE_EPOCH = 'STALE_EPOCH';

const ENDPOINT = /^(tcp:\/\/[^\s:]+:\d{1,5}|ipc:\/\/\S+|inproc:\/\/\S+)$/;

function staleEpoch(message: string): NeuroError {
  return new NeuroError('FAILED_PRECONDITION', STALE_EPOCH, message);
}

/** A training instance hosted by a trainer agent. */
export class TrainerInstance implements HostedInstance {
  /** The highest epoch ever accepted: anything at or below it is stale. */
  private highestEpoch = 0n;
  private run?: TrainingRun;
  private mode = SessionMode.SESSION_MODE_UNSPECIFIED;
  private dead = false;
  private readonly logger: Logger;

  constructor(
    readonly id: string,
    private readonly ctx: TrainerContext,
  ) {
    this.logger = ctx.logger.child({ instance: id });
  }

  get alive(): boolean {
    return !this.dead;
  }

  /** The current or last session's run. */
  get session(): TrainingRun | undefined {
    return this.run;
  }

  spec(): InstanceSpecInit {
    const { ctx } = this;
    return {
      instanceId: this.id,
      kind: InstanceKind.TRAINER,
      grpcAddress: ctx.grpcAddress,
      host: ctx.hostLabel,
      zone: ctx.zone,
      gpus: Array.from({ length: ctx.gpusPerInstance }, (_, i) => ({ id: `GPU-${i}`, memoryMb: ctx.gpuMemoryMb })),
      memoryGb: ctx.memoryGb,
      labels: ctx.labels,
    };
  }

  beat(): InstanceBeatInit {
    const run = this.run?.live ? this.run : undefined;
    return {
      instanceId: this.id,
      sessions: run ? [{ sessionId: run.sessionId, epoch: run.epoch }] : [],
      gpuUtilization: run ? run.computeShare() : 0,
    };
  }

  /** Neuro's heartbeat directive: the session has ended there. */
  stopSession(sessionId: string, epoch: bigint, reason: string): void {
    const run = this.run;
    if (!run?.live || run.sessionId !== sessionId || run.epoch !== epoch) return;
    this.logger.info({ sessionId, epoch, reason }, 'Neuro ended the session');
    void run.stop(reason || 'stopped by Neuro');
  }

  startTraining(req: StartTrainingRequest): { success: boolean; message: string } {
    this.ensureAlive();
    const current = this.run;
    if (current && current.sessionId === req.sessionId && current.epoch === req.epoch) {
      return { success: true, message: `session ${req.sessionId} (epoch ${req.epoch}) already started` };
    }
    if (req.epoch <= this.highestEpoch) {
      throw staleEpoch(`epoch ${req.epoch} is not newer than ${this.highestEpoch}, the latest this instance accepted`);
    }
    const config = validateStart(req);
    if (current?.live) {
      // A newer allocation wins: Neuro has given up on the old session (e.g. it restarted and
      // reallocated), and an instance runs one session at a time.
      this.logger.warn({ old: current.sessionId, new: req.sessionId }, 'a newer epoch supersedes the running session');
      void current.stop(`superseded by session ${req.sessionId} (epoch ${req.epoch})`);
    }
    this.highestEpoch = req.epoch;
    this.mode = req.mode;
    const reportAddress = req.reportAddress;
    this.run = new TrainingRun({
      instanceId: this.id,
      sessionId: req.sessionId,
      epoch: req.epoch,
      algorithm: config.algorithm,
      hyperparameters: { ...config.hyperparameters },
      totalEpisodes: config.totalEpisodes,
      channels: req.channels.map((c) => ({ isaacInstanceId: c.isaacInstanceId, zmqEndpoint: c.zmqEndpoint })),
      seed: seedOf(req.sessionId, req.epoch),
      receiveTimeoutMs: this.ctx.receiveTimeoutMs,
      progressIntervalMs: this.ctx.progressIntervalMs,
      demoPollIntervalMs: this.ctx.demoPollIntervalMs,
      report: (r) => this.ctx.report(r, reportAddress),
      onDemonstrations: this.ctx.onDemonstrations,
      logger: this.logger.child({ sessionId: req.sessionId, epoch: String(req.epoch) }),
    });
    this.logger.info({ sessionId: req.sessionId, epoch: String(req.epoch), channels: req.channels.length, algorithm: config.algorithm }, 'training started');
    return { success: true, message: `training ${req.sessionId} on ${req.channels.length} simulator(s)` };
  }

  async stopTraining(req: StopTrainingRequest): Promise<{ success: boolean; message: string }> {
    this.ensureAlive();
    const run = this.run;
    if (!run || run.sessionId !== req.sessionId || !run.live) {
      return { success: true, message: `session ${req.sessionId} is not running here` };
    }
    if (run.epoch !== req.epoch) throw staleEpoch(`epoch ${req.epoch} is not session ${req.sessionId}'s (${run.epoch})`);
    await run.stop(req.reason || 'stopped by Neuro');
    return { success: true, message: `session ${req.sessionId} stopped` };
  }

  setEnvControl(req: SetEnvControlRequest): { success: boolean; message: string } {
    this.ensureAlive();
    const run = this.run;
    if (!run || run.sessionId !== req.sessionId) throw NeuroError.notFound('session', req.sessionId);
    if (run.epoch !== req.epoch) throw staleEpoch(`epoch ${req.epoch} is not session ${req.sessionId}'s (${run.epoch})`);
    if (!run.live) throw new NeuroError('FAILED_PRECONDITION', 'SESSION_ENDED', `session ${req.sessionId} has ended`);
    if (this.mode === SessionMode.TRAINING) {
      throw new NeuroError('FAILED_PRECONDITION', 'NOT_HYBRID', `session ${req.sessionId} is a TRAINING session: only HYBRID sessions hand simulators to humans`);
    }
    if (!req.controller.trim()) throw NeuroError.invalid([{ field: 'controller', description: 'must be "ai" or the name of a human' }]);
    if (!run.hasSimulator(req.isaacInstanceId)) throw NeuroError.notFound('simulator', req.isaacInstanceId);
    run.setControl(req.isaacInstanceId, req.controller.trim());
    return { success: true, message: `${req.isaacInstanceId} is controlled by ${req.controller.trim()}` };
  }

  getTrainingStatus(req: GetTrainingStatusRequest): { sessionId: string; status: TrainingStatus; episodesDone: bigint; meanReward: number } {
    this.ensureAlive();
    const run = this.run;
    if (!run || (req.sessionId && run.sessionId !== req.sessionId)) {
      if (!req.sessionId) return { sessionId: '', status: TrainingStatus.TRAINING_STATUS_UNSPECIFIED, episodesDone: 0n, meanReward: 0 };
      throw NeuroError.notFound('session', req.sessionId);
    }
    return { sessionId: run.sessionId, status: run.status, episodesDone: BigInt(run.episodesDone), meanReward: run.meanReward };
  }

  /** Simulated death: everything stops silently and RPCs answer UNAVAILABLE. */
  kill(): void {
    this.dead = true;
    this.run?.kill();
  }

  /** Agent shutdown: stops the session and waits for its sockets to close. */
  async shutdown(): Promise<void> {
    if (this.run?.live) await this.run.stop('trainer agent shutting down');
  }

  private ensureAlive(): void {
    if (this.dead) throw new NeuroError('UNAVAILABLE', 'INSTANCE_UNAVAILABLE', `instance ${this.id} is not available`);
  }
}

/** Checks a StartTrainingRequest beyond the epoch; returns its training config. */
function validateStart(req: StartTrainingRequest): { algorithm: string; totalEpisodes: number; hyperparameters: Record<string, string> } {
  const violations: FieldViolation[] = [];
  if (!req.sessionId.trim()) violations.push({ field: 'session_id', description: 'required' });
  const cfg: TrainingConfig | undefined = req.trainingConfig;
  if (!cfg) {
    violations.push({ field: 'training_config', description: 'required' });
  } else {
    violations.push(...validateHyperparameters(cfg.algorithm, cfg.hyperparameters));
  }
  if (!req.channels.length) violations.push({ field: 'channels', description: 'at least one channel is required' });
  const seen = new Set<string>();
  req.channels.forEach((c: ZmqChannel, i) => {
    if (!c.isaacInstanceId) violations.push({ field: `channels[${i}].isaac_instance_id`, description: 'required' });
    else if (seen.has(c.isaacInstanceId)) violations.push({ field: `channels[${i}].isaac_instance_id`, description: `${c.isaacInstanceId} appears twice` });
    seen.add(c.isaacInstanceId);
    if (!ENDPOINT.test(c.zmqEndpoint)) violations.push({ field: `channels[${i}].zmq_endpoint`, description: `must be tcp://host:port, got ${JSON.stringify(c.zmqEndpoint)}` });
    if (c.protocol && c.protocol !== 'REQ-REP') violations.push({ field: `channels[${i}].protocol`, description: `only "REQ-REP" is supported, got ${JSON.stringify(c.protocol)}` });
  });
  if (violations.length) throw NeuroError.invalid(violations);
  return { algorithm: cfg!.algorithm, totalEpisodes: cfg!.totalEpisodes, hyperparameters: cfg!.hyperparameters };
}

/** A 32-bit learner seed from the session and epoch (FNV-1a), so a rerun of a session replays alike. */
function seedOf(sessionId: string, epoch: bigint): number {
  let h = 0x811c9dc5;
  for (const ch of `${sessionId}#${epoch}`) {
    h ^= ch.codePointAt(0)!;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}
