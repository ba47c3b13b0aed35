/**
 * Starts a Neuro server: the store, the engine, the gRPC port (orchestrator API, registry, health,
 * reflection) and the HTTP port (metrics, health), and stops it gracefully.
 */
import * as grpc from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { timingSafeEqual } from 'node:crypto';
import type http from 'node:http';
import pino, { type Logger } from 'pino';
import { NeuroError } from '../core/errors.js';
import type { AlgorithmCatalog } from '../core/validate.js';
import { SUPPORTED_ALGORITHMS, validateHyperparameters } from '../learn/index.js';
import { file_neuro_v1_neuro_orchestrator, NeuroOrchestratorService } from '../gen/neuro/v1/neuro_orchestrator_pb.js';
import { file_neuro_v1_registry, InstanceRegistryService } from '../gen/neuro/v1/registry_pb.js';
import { addService, type CallContext, type Guard } from '../rpc/grpc-adapter.js';
import { orchestratorHandlers } from '../rpc/orchestrator-service.js';
import { registryHandlers } from '../rpc/registry-service.js';
import { Orchestrator } from '../service/orchestrator.js';
import { SqliteStore } from '../store/sqlite.js';
import { InstanceClients } from '../workers/instance-clients.js';
import type { NeuroConfig } from './config.js';
import { createHttpServer } from './http.js';
import { createHttpExtras } from './connect.js';
import { Metrics } from './metrics.js';
import { addReflection } from './reflection.js';

export interface NeuroServer {
  readonly config: NeuroConfig;
  readonly grpcPort: number;
  readonly httpPort: number;
  readonly orchestrator: Orchestrator;
  readonly logger: Logger;
  /** Milliseconds from start() to serving. */
  readonly startupMs: number;
  /** Stop accepting, finish in-flight calls, persist, close. */
  stop(): Promise<void>;
}

export const ALGORITHMS: AlgorithmCatalog = {
  supported: SUPPORTED_ALGORITHMS,
  check: (algorithm, h) => validateHyperparameters(algorithm, h),
};

function bearerGuard(token: string, who: string): Guard | undefined {
  if (!token) return undefined;
  const want = Buffer.from(`Bearer ${token}`);
  return (ctx: CallContext) => {
    const got = ctx.metadata.get('authorization')[0];
    if (got === undefined) throw new NeuroError('UNAUTHENTICATED', 'TOKEN_MISSING', `${who} calls need "authorization: Bearer <token>"`);
    const b = Buffer.from(String(got));
    if (b.length !== want.length || !timingSafeEqual(b, want)) throw new NeuroError('UNAUTHENTICATED', 'TOKEN_INVALID', `the ${who} token is not valid`);
  };
}

export async function startNeuro(config: NeuroConfig, logger?: Logger): Promise<NeuroServer> {
  const t0 = process.hrtime.bigint();
  const log = logger ?? pino({ level: config.logLevel, base: { service: 'neuro' } });
  const store = new SqliteStore({ path: join(config.dataDir, 'neuro.db'), synchronous: config.storeSync, checkpointIntervalMs: 1000 });
  const clients = new InstanceClients({ callTimeoutMs: config.instanceCallTimeoutMs });
  let orchestrator: Orchestrator | undefined;
  const metrics = new Metrics(() => orchestrator?.engine);
  orchestrator = new Orchestrator(store, clients, {
    engine: {
      heartbeatGraceMs: config.heartbeatGraceMs,
      retentionMs: config.retentionHours * 3600_000,
      scheduler: { policy: config.schedulerPolicy, candidateLimit: config.schedulerCandidateLimit },
    },
    sweepIntervalMs: Math.max(100, Math.min(1000, Math.floor(config.heartbeatGraceMs / 4))),
    reportAddress: config.advertiseAddress,
    logger: log,
  });
  const o = orchestrator;
  const restored = o.start();
  for (const si of config.staticInstances) {
    await o.register(
      [
        {
          id: si.id,
          kind: si.kind,
          address: si.address,
          host: si.host ?? si.address.split(':')[0] ?? '',
          zone: si.zone ?? 'default',
          gpus: (si.gpus ?? ['GPU-0']).map((id) => ({ id, memoryMb: 0 })),
          memoryGb: si.memoryGb ?? 0,
          labels: si.labels ?? {},
          controlWsBase: si.controlWsBase ?? '',
          zmqHost: si.zmqHost ?? si.host ?? '',
          zmqPortMin: si.zmqPortMin ?? 0,
          zmqPortMax: si.zmqPortMax ?? 0,
        },
      ],
      true,
    );
  }

  const server = new grpc.Server({
    'grpc.max_receive_message_length': config.grpc.maxMessageBytes,
    'grpc.max_send_message_length': Math.max(config.grpc.maxMessageBytes, config.grpc.maxSendMessageBytes),
    'grpc.max_concurrent_streams': config.grpc.maxConcurrentStreams,
    'grpc.keepalive_time_ms': config.grpc.keepaliveTimeMs,
    'grpc.keepalive_timeout_ms': config.grpc.keepaliveTimeoutMs,
    'grpc.keepalive_permit_without_calls': 1,
    'grpc.http2.min_ping_interval_without_data_ms': 5000,
  });
  const observe = (m: { name: string }, code: grpc.status, seconds: number, err?: NeuroError) => {
    metrics.rpcTotal.inc({ method: m.name, code: grpc.status[code] ?? String(code) });
    metrics.rpcSeconds.observe({ method: m.name }, seconds);
    if (err) {
      const level = err.code === 'INTERNAL' ? 'error' : 'debug';
      log[level]({ method: m.name, code: err.code, reason: err.reason, err: err.message }, 'rpc failed');
    }
  };
  const shutdown = new AbortController();
  // One set of handlers for both ports: gRPC here, Connect JSON/gRPC-Web for the dashboard on HTTP.
  const handlers = orchestratorHandlers(o, {
    urls: { webrtc: (sid, iid) => config.webrtcSignalingUrl.replaceAll('{session_id}', sid).replaceAll('{instance_id}', iid) },
    algorithms: ALGORITHMS,
    poolWatchIntervalMs: 200,
    shutdown: shutdown.signal,
  });
  addService(server, NeuroOrchestratorService, handlers, { guard: bearerGuard(config.callerToken, 'caller'), observe });
  addService(
    server,
    InstanceRegistryService,
    registryHandlers(o, { heartbeatIntervalMs: config.heartbeatIntervalMs, heartbeatGraceMs: config.heartbeatGraceMs, onBeats: (n) => metrics.beats.inc(n) }),
    { guard: bearerGuard(config.instanceToken, 'instance'), observe },
  );
  const health = new HealthImplementation({ '': 'SERVING', 'neuro.v1.NeuroOrchestratorService': 'SERVING', 'neuro.v1.InstanceRegistryService': 'SERVING' });
  health.addToServer(server);
  addReflection(server, [file_neuro_v1_neuro_orchestrator, file_neuro_v1_registry], ['neuro.v1.NeuroOrchestratorService', 'neuro.v1.InstanceRegistryService']);

  const creds = config.grpc.tlsCert
    ? grpc.ServerCredentials.createSsl(null, [{ cert_chain: readFileSync(config.grpc.tlsCert), private_key: readFileSync(config.grpc.tlsKey) }], false)
    : grpc.ServerCredentials.createInsecure();
  const grpcPort = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${config.grpc.host}:${config.grpc.port}`, creds, (err, port) => (err ? reject(err) : resolve(port))),
  );
  if (config.advertiseAddress.endsWith(':0')) config.advertiseAddress = config.advertiseAddress.replace(/:0$/, `:${grpcPort}`);
  o.setReportAddress(config.advertiseAddress);

  let stopping = false;
  const httpServer: http.Server = createHttpServer({
    metrics,
    ready: () => !stopping,
    extra: createHttpExtras({ handlers, callerToken: config.callerToken, observe, shutdown: shutdown.signal, readMaxBytes: config.grpc.maxMessageBytes }),
  });
  const httpPort = await new Promise<number>((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(config.http.port, config.http.host, () => resolve((httpServer.address() as { port: number }).port));
  });
  const startupMs = Number(process.hrtime.bigint() - t0) / 1e6;
  log.info({ grpcPort, httpPort, tls: !!config.grpc.tlsCert, restoredSessions: restored.sessions, startupMs: Math.round(startupMs) }, 'neuro serving');

  return {
    config,
    grpcPort,
    httpPort,
    orchestrator: o,
    logger: log,
    startupMs,
    async stop() {
      if (stopping) return;
      stopping = true;
      log.info('shutting down: no new calls, finishing in-flight ones');
      health.setStatus('', 'NOT_SERVING');
      shutdown.abort();
      await new Promise<void>((resolve) => {
        const force = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 10_000);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      });
      await o.stop();
      clients.close();
      store.close();
      await new Promise<void>((resolve) => {
        httpServer.close(() => resolve());
        httpServer.closeAllConnections();
      });
      log.info('stopped');
    },
  };
}
