/**
 * NeuroOrchestratorService handlers: validate at the edge, convert, call the application service,
 * convert back. No rules live here.
 */
import type { MessageInitShape } from '@bufbuild/protobuf';
import { NeuroError } from '../core/errors.js';
import { requireSessionId, validateCreate, type AlgorithmCatalog } from '../core/validate.js';
import { TERMINAL_STATES, type Session } from '../core/model.js';
import { NeuroOrchestratorService, type WatchResourcePoolResponseSchema } from '../gen/neuro/v1/neuro_orchestrator_pb.js';
import type { InstanceInfoSchema, PoolStatusSchema, ResourcePoolStatusRequest } from '../gen/neuro/v1/resource_pb.js';
import type { Orchestrator } from '../service/orchestrator.js';
import type { ServiceHandlers } from './grpc-adapter.js';
import {
  channelsToProto,
  eventToProto,
  instanceInfo,
  modeFromProto,
  poolStatus,
  rawHybrid,
  rawManual,
  rawTraining,
  sessionToProto,
  simulatorEndpoints,
  stateFromProto,
  trainingStatusToProto,
  type UrlRenderer,
} from './convert.js';
import type { GenService, GenServiceMethods } from '@bufbuild/protobuf/codegenv2';

type Methods<S> = S extends GenService<infer T extends GenServiceMethods> ? T : never;

export interface OrchestratorHandlersOptions {
  urls: UrlRenderer;
  algorithms: AlgorithmCatalog;
  /** How often WatchResourcePool sends the changes gathered since its last message. */
  poolWatchIntervalMs: number;
  /** Aborted when Neuro shuts down: open watch streams end so in-flight calls can drain. */
  shutdown: AbortSignal;
}

const MAX_PAGE = 1000;
/** Instances per WatchResourcePool snapshot message (about 150 bytes each). */
const SNAPSHOT_CHUNK = 2000;

function pools(req: { includeIsaacPool: boolean; includeTrainingPool: boolean }) {
  // The seed always sets both; a caller that sets neither wants everything rather than nothing.
  const both = !req.includeIsaacPool && !req.includeTrainingPool;
  return { isaac: both || req.includeIsaacPool, training: both || req.includeTrainingPool };
}

function userName(user: string, field = 'user'): string {
  const u = user.trim();
  if (!/^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/.test(u) || u === 'ai') {
    throw NeuroError.invalid([{ field, description: 'must be a user name of 1-64 letters, digits and . _ @ - (not "ai")' }]);
  }
  return u;
}

function simulatorId(id: string): string {
  if (!id) throw NeuroError.invalid([{ field: 'isaac_instance_id', description: 'is required' }]);
  return id;
}

export function orchestratorHandlers(o: Orchestrator, opts: OrchestratorHandlersOptions): ServiceHandlers<Methods<typeof NeuroOrchestratorService>> {
  const { urls, algorithms } = opts;
  const manualResponse = (s: Session) => {
    const sim = s.simulators[0] ?? '';
    return {
      success: true,
      message: s.state === 'READY' ? 'Session created successfully' : `Session is ${s.state.toLowerCase()}`,
      sessionId: s.id,
      instanceId: sim,
      controlWsUrl: s.controlUrls[sim] ?? '',
      webrtcSignalingUrl: urls.webrtc(s.id, sim),
      status: s.simStatus,
      epoch: BigInt(s.epoch),
    };
  };
  const gangResponse = (s: Session) => ({
    success: true,
    message: s.mode === 'HYBRID' ? 'Hybrid session created' : 'Training session created',
    sessionId: s.id,
    trainingInstanceId: s.trainer ?? '',
    isaacInstanceIds: s.simulators,
    zmqChannels: channelsToProto(s),
    trainingStatus: trainingStatusToProto(s.trainingStatus),
    epoch: BigInt(s.epoch),
  });

  return {
    async createSession(req) {
      const s = await o.create(validateCreate(rawManual(req), 'MANUAL', algorithms));
      return manualResponse(s);
    },
    async createTrainingSession(req) {
      const s = await o.create(validateCreate(rawTraining(req), 'TRAINING', algorithms));
      return gangResponse(s);
    },
    async createHybridSession(req) {
      const s = await o.create(validateCreate(rawHybrid(req), 'HYBRID', algorithms));
      return { ...gangResponse(s), simulatorEndpoints: simulatorEndpoints(s, urls) };
    },
    getResourcePoolStatus(req: ResourcePoolStatusRequest) {
      const p = pools(req);
      const pool = o.engine.pool;
      return {
        isaacPool: p.isaac ? poolStatus(pool, 'simulator', !req.summaryOnly) : undefined,
        trainingPool: p.training ? poolStatus(pool, 'trainer', !req.summaryOnly) : undefined,
        success: true,
        message: `${pool.instances.size} instances`,
      };
    },
    async startSimulation(req) {
      requireSessionId(req.sessionId);
      const { status } = await o.simulation(req.sessionId, true);
      return { success: true, message: 'Simulation started', sessionId: req.sessionId, status };
    },
    async stopSimulation(req) {
      requireSessionId(req.sessionId);
      const { status } = await o.simulation(req.sessionId, false);
      return { success: true, message: 'Simulation stopped', sessionId: req.sessionId, status };
    },
    getSession(req) {
      requireSessionId(req.sessionId);
      const s = o.engine.mustGet(req.sessionId);
      return { session: sessionToProto(s, urls), success: true, message: '' };
    },
    listSessions(req) {
      if (req.pageSize > MAX_PAGE) throw NeuroError.invalid([{ field: 'page_size', description: `is ${req.pageSize}; at most ${MAX_PAGE}` }]);
      const mode = req.mode ? modeFromProto(req.mode) : null;
      if (req.mode && !mode) throw NeuroError.invalid([{ field: 'mode', description: `unknown value ${req.mode}` }]);
      const state = req.state ? stateFromProto(req.state) : null;
      if (req.state && !state) throw NeuroError.invalid([{ field: 'state', description: `unknown value ${req.state}` }]);
      let offset = 0;
      if (req.pageToken) {
        offset = Number.parseInt(Buffer.from(req.pageToken, 'base64url').toString('utf8'), 10);
        if (!Number.isInteger(offset) || offset < 0) throw NeuroError.invalid([{ field: 'page_token', description: 'is not a token this server gave' }]);
      }
      const size = req.pageSize || 100;
      const all = [...o.engine.sessions.values()].filter((s) => (!mode || s.mode === mode) && (!state || s.state === state));
      // Newest first: what an operator looks for.
      all.reverse();
      const page = all.slice(offset, offset + size);
      const next = offset + size < all.length ? Buffer.from(String(offset + size)).toString('base64url') : '';
      return { sessions: page.map((s) => sessionToProto(s, urls, false)), nextPageToken: next, totalSize: all.length };
    },
    async terminateSession(req) {
      requireSessionId(req.sessionId);
      if (req.reason.length > 512) throw NeuroError.invalid([{ field: 'reason', description: 'is longer than 512 characters' }]);
      const before = o.engine.mustGet(req.sessionId).state;
      const s = await o.terminate(req.sessionId, req.reason);
      const already = TERMINAL_STATES.has(before);
      return {
        success: true,
        message: already ? `Session had already ended (${before.toLowerCase()})` : 'Session terminated',
        sessionId: s.id,
        state: sessionToProto(s, urls, false).state,
      };
    },
    async watchSession(req, stream, ctx) {
      requireSessionId(req.sessionId);
      const s = o.engine.mustGet(req.sessionId);
      stream.send({ session: sessionToProto(s, urls) });
      if (TERMINAL_STATES.has(s.state)) return;
      await new Promise<void>((resolve) => {
        const stop = o.watchSession(req.sessionId, (e, cur) => {
          stream.send({ session: sessionToProto(cur, urls, false), event: eventToProto(e) });
          if (e.type === 'state' && TERMINAL_STATES.has(e.state)) done();
        });
        const done = () => {
          stop();
          opts.shutdown.removeEventListener('abort', done);
          resolve();
        };
        ctx.onCancel(done);
        opts.shutdown.addEventListener('abort', done);
      });
    },
    async watchResourcePool(req, stream, ctx) {
      const p = pools(req);
      const pool = o.engine.pool;
      // The snapshot: counts and the first SNAPSHOT_CHUNK instances, then the rest as `changed` in
      // messages of the same size, so no message outgrows the message limit at any pool size.
      const all: MessageInitShape<typeof InstanceInfoSchema>[] = [];
      for (const i of pool.instances.values()) if ((i.spec.kind === 'simulator' && p.isaac) || (i.spec.kind === 'trainer' && p.training)) all.push(instanceInfo(i));
      const first = all.slice(0, SNAPSHOT_CHUNK);
      const counts = (kind: 'simulator' | 'trainer'): MessageInitShape<typeof PoolStatusSchema> =>
        Object.assign(poolStatus(pool, kind, false), { instances: first.filter((i) => i.kind === kind) }) as MessageInitShape<typeof PoolStatusSchema>;
      stream.send({ snapshot: true, isaacPool: p.isaac ? counts('simulator') : undefined, trainingPool: p.training ? counts('trainer') : undefined });
      for (let k = SNAPSHOT_CHUNK; k < all.length && !ctx.cancelled(); k += SNAPSHOT_CHUNK) {
        await stream.drained();
        stream.send({ snapshot: false, changed: all.slice(k, k + SNAPSHOT_CHUNK) });
      }
      // Changes are gathered and sent at most every poolWatchIntervalMs: a busy pool must not turn into
      // one message per heartbeat.
      const changed = new Set<string>();
      const removed = new Set<string>();
      await new Promise<void>((resolve) => {
        const stop = o.watchPool((c, r) => {
          for (const i of c) if ((i.spec.kind === 'simulator' && p.isaac) || (i.spec.kind === 'trainer' && p.training)) changed.add(i.spec.id);
          for (const id of r) removed.add(id);
        });
        const timer = setInterval(() => {
          if (!changed.size && !removed.size) return;
          const msg: MessageInitShape<typeof WatchResourcePoolResponseSchema> = {
            snapshot: false,
            isaacPool: p.isaac ? poolStatus(pool, 'simulator', false) : undefined,
            trainingPool: p.training ? poolStatus(pool, 'trainer', false) : undefined,
            changed: [...changed].map((id) => pool.get(id)).filter((i) => !!i).map(instanceInfo),
            removed: [...removed],
          };
          changed.clear();
          removed.clear();
          stream.send(msg);
        }, opts.poolWatchIntervalMs);
        const done = () => {
          clearInterval(timer);
          stop();
          opts.shutdown.removeEventListener('abort', done);
          resolve();
        };
        ctx.onCancel(done);
        opts.shutdown.addEventListener('abort', done);
      });
    },
    async takeControl(req) {
      requireSessionId(req.sessionId);
      const sim = simulatorId(req.isaacInstanceId);
      const user = userName(req.user);
      const s = await o.takeControl(req.sessionId, sim, user, req.force);
      return { success: true, message: `${user} controls ${sim}`, sessionId: s.id, isaacInstanceId: sim, controller: user, controlWsUrl: s.controlUrls[sim] ?? '' };
    },
    async releaseControl(req) {
      requireSessionId(req.sessionId);
      const sim = simulatorId(req.isaacInstanceId);
      const user = req.user ? userName(req.user) : '';
      const s = await o.releaseControl(req.sessionId, sim, user);
      return { success: true, message: `the AI controls ${sim}`, sessionId: s.id, isaacInstanceId: sim, controller: s.controllers[sim]?.controller ?? 'ai' };
    },
    async drainInstance(req) {
      if (!req.instanceId) throw NeuroError.invalid([{ field: 'instance_id', description: 'is required' }]);
      const i = await o.drain(req.instanceId, true);
      return { success: true, message: i.sessionId ? `draining: ${i.spec.id} finishes ${i.sessionId} and takes no new session` : `${i.spec.id} takes no new session`, instance: instanceInfo(i) };
    },
    async undrainInstance(req) {
      if (!req.instanceId) throw NeuroError.invalid([{ field: 'instance_id', description: 'is required' }]);
      const i = await o.drain(req.instanceId, false);
      return { success: true, message: `${i.spec.id} takes sessions again`, instance: instanceInfo(i) };
    },
  };
}
