/**
 * The trainer reference agent: one process hosting many virtual training instances behind one gRPC
 * server (TrainingService), registered with Neuro through one heartbeat stream. Each instance trains
 * a real policy (src/learn) against the simulators Neuro wires to it over ZeroMQ.
 */
import { isIP } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { pino, type Logger } from 'pino';
import { NeuroError } from '../../core/errors.js';
import { InstanceRegistryService } from '../../gen/neuro/v1/registry_pb.js';
import { TrainingService } from '../../gen/training/v1/training_pb.js';
import { addService, createClient, type ClientOf } from '../../rpc/grpc-adapter.js';
import type { AgentOptions } from '../common/agent-options.js';
import { RegistryClient } from '../common/registry-client.js';
import { TrainerInstance, type TrainerContext } from './trainer-instance.js';
import type { ReportAnswer, TrainerProgressReport } from './training-run.js';

/** The trainer agent's options: the common ones (default id prefix "training-", 4 GPUs, 32 GB) and its own. */
export interface TrainerAgentOptions extends AgentOptions {
  /** Memory of each advertised GPU. Default 81920 MB. */
  gpuMemoryMb?: number;
  /** How often a running session reports progress. Default 500 ms. */
  progressIntervalMs?: number;
  /** How long a simulator may take to answer one env request before it counts as gone. Default 5000 ms. */
  receiveTimeoutMs?: number;
  /** How often a paused (human-held) env is asked for demonstrations. Default 200 ms. */
  demoPollIntervalMs?: number;
  /** Sees every progress report (also when nothing is sent to Neuro). */
  onProgress?: (report: TrainerProgressReport) => void;
  /** Called with the demonstrations each time a batch reaches a learner (tests check their content). */
  onDemonstrations?: TrainerContext['onDemonstrations'];
}

/** What an instance's current or last session has done, for tests and operators. */
export interface TrainerInstanceStats {
  sessionId?: string;
  epoch?: bigint;
  episodesDone: number;
  envSteps: number;
  /** Demonstration transitions received per simulator. */
  demonstrationsReceived: Record<string, number>;
  /** Simulators whose env is paused because a human holds them. */
  pausedEnvs: string[];
}

export interface TrainerAgent {
  /** host:port of the agent's TrainingService. */
  grpcAddress: string;
  instanceIds: string[];
  /** Resolves once Neuro has accepted the registration (never, with registerWithNeuro false). */
  registered: Promise<void>;
  stats(id: string): TrainerInstanceStats;
  /** Simulates that instance dying: no more heartbeats, its RPCs answer UNAVAILABLE, its training and sockets stop. */
  killInstance(id: string): void;
  stop(): Promise<void>;
}

function bindGrpc(server: grpc.Server, address: string): Promise<number> {
  return new Promise((resolve, reject) =>
    server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))),
  );
}

const bracket = (h: string) => (h.includes(':') ? `[${h}]` : h);

/** Starts the agent: server listening, instances created, registration with Neuro under way. */
export async function startTrainerAgent(opts: TrainerAgentOptions): Promise<TrainerAgent> {
  if (!Number.isInteger(opts.count) || opts.count < 0) throw new Error(`count must be a non-negative integer, got ${opts.count}`);
  const host = opts.host ?? '127.0.0.1';
  // A host name may not be an interface of this machine: listen everywhere then.
  const bindHost = isIP(host) ? host : '0.0.0.0';
  const logger = opts.logger ?? pino({ name: 'trainer-agent' });
  const prefix = opts.idPrefix ?? 'training-';
  const first = opts.startIndex ?? 1;

  const instances = new Map<string, TrainerInstance>();
  const server = new grpc.Server({ 'grpc.max_receive_message_length': 4 * 1024 * 1024 });
  const route = (id: string): TrainerInstance => {
    const inst = instances.get(id);
    if (!inst) throw NeuroError.notFound('instance', id);
    return inst;
  };
  addService(server, TrainingService, {
    startTraining: (req) => route(req.instanceId).startTraining(req),
    stopTraining: (req) => route(req.instanceId).stopTraining(req),
    setEnvControl: (req) => route(req.instanceId).setEnvControl(req),
    getTrainingStatus: (req) => route(req.instanceId).getTrainingStatus(req),
  });
  const port = await bindGrpc(server, `${bracket(bindHost)}:${opts.grpcPort ?? 0}`);
  const grpcAddress = `${bracket(host)}:${port}`;

  const registry =
    opts.registerWithNeuro === false
      ? undefined
      : new RegistryClient({
          neuroAddress: opts.neuroAddress,
          token: opts.token,
          intervalMs: opts.heartbeatIntervalMs,
          onError: (err) => logger.debug({ err }, 'registry call failed; retrying'),
        });
  const reporters = new Reporters(opts.neuroAddress, opts.token, registry);

  const ctx: TrainerContext = {
    grpcAddress,
    hostLabel: opts.hostLabel ?? host,
    zone: opts.zone ?? 'zone-a',
    gpusPerInstance: opts.gpusPerInstance ?? 4,
    gpuMemoryMb: opts.gpuMemoryMb ?? 81920,
    memoryGb: opts.memoryGb ?? 32,
    labels: opts.labels ?? {},
    receiveTimeoutMs: opts.receiveTimeoutMs ?? 5000,
    progressIntervalMs: opts.progressIntervalMs ?? 500,
    demoPollIntervalMs: opts.demoPollIntervalMs ?? 200,
    logger,
    onDemonstrations: opts.onDemonstrations,
    report: async (r, reportAddress) => {
      try {
        opts.onProgress?.(r);
      } catch (err) {
        logger.warn({ err }, 'onProgress threw');
      }
      if (!registry) return undefined;
      return reporters.send(r, reportAddress);
    },
  };
  for (let k = 0; k < opts.count; k++) {
    const id = `${prefix}${first + k}`;
    const inst = new TrainerInstance(id, ctx);
    instances.set(id, inst);
    registry?.add(id, inst);
  }
  const registered = registry ? registry.start() : new Promise<void>(() => {});
  logger.info({ grpcAddress, instances: opts.count, neuro: registry ? opts.neuroAddress : undefined }, 'trainer agent started');

  const get = (id: string): TrainerInstance => {
    const inst = instances.get(id);
    if (!inst) throw new Error(`no instance ${id} in this agent`);
    return inst;
  };
  let stopping: Promise<void> | undefined;

  return {
    grpcAddress,
    instanceIds: [...instances.keys()],
    registered,
    stats(id) {
      const run = get(id).session;
      return {
        sessionId: run?.sessionId,
        epoch: run?.epoch,
        episodesDone: run?.episodesDone ?? 0,
        envSteps: run?.envSteps ?? 0,
        demonstrationsReceived: run?.demonstrations ?? {},
        pausedEnvs: run?.pausedEnvs ?? [],
      };
    },
    killInstance(id) {
      const inst = get(id);
      if (!inst.alive) return;
      registry?.remove(id);
      inst.kill();
      logger.info({ instance: id }, 'instance killed');
    },
    stop() {
      stopping ??= (async () => {
        if (registry) await registry.deregister([...instances.values()].filter((i) => i.alive).map((i) => i.id));
        await Promise.all([...instances.values()].map((i) => i.shutdown()));
        registry?.stop();
        reporters.close();
        await new Promise<void>((resolve) => {
          // A client that keeps its channel open must not hold the agent up.
          const force = setTimeout(() => server.forceShutdown(), 2000);
          server.tryShutdown(() => {
            clearTimeout(force);
            resolve();
          });
        });
        logger.info({ grpcAddress }, 'trainer agent stopped');
      })();
      return stopping;
    },
  };
}

/**
 * Sends progress reports: through the registry client to Neuro, or to the `report_address` a
 * StartTraining named when that is another address (one client per address, kept until stop).
 */
class Reporters {
  private readonly clients = new Map<string, ClientOf<typeof InstanceRegistryService>>();

  constructor(
    private readonly neuroAddress: string,
    private readonly token: string | undefined,
    private readonly registry: RegistryClient | undefined,
  ) {}

  async send(r: TrainerProgressReport, reportAddress: string): Promise<ReportAnswer> {
    const req = { ...r, progress: { ...r.progress, channels: r.progress.channels.map((c) => ({ ...c })) } };
    if (this.registry && (!reportAddress || reportAddress === this.neuroAddress)) {
      const res = await this.registry.reportProgress(req);
      return { stop: res.stop };
    }
    let client = this.clients.get(reportAddress);
    if (!client) {
      const metadata = new grpc.Metadata();
      if (this.token) metadata.set('authorization', `Bearer ${this.token}`);
      client = createClient(InstanceRegistryService, reportAddress, { metadata });
      this.clients.set(reportAddress, client);
    }
    const res = await client.reportProgress(req, { timeoutMs: 5000 });
    return { stop: res.stop };
  }

  close(): void {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }
}

