/**
 * The simulator reference agent: one process hosting many virtual simulator instances behind one
 * gRPC server (IsaacSimService) and one HTTP server (control WebSockets), registered with Neuro
 * through one heartbeat stream. It stands in for NVIDIA Isaac Sim, which cannot run here.
 */
import { createServer, type Server as HttpServer } from 'node:http';
import { isIP, type AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { pino, type Logger } from 'pino';
import type { AgentOptions } from '../common/agent-options.js';
import { RegistryClient } from '../common/registry-client.js';
import { DEFAULT_ASSETS_DIR } from '../env/index.js';
import { createControlSockets } from './control-socket.js';
import { addIsaacSimService } from './grpc-service.js';
import { SimInstance, type AgentContext } from './instance.js';

/** The simulator agent's options: the common ones (default id prefix "isaac-sim-", 1 GPU, 16 GB) and its own. */
export interface SimAgentOptions extends AgentOptions {
  /** 0 picks a free port. Default 0. */
  httpPort?: number;
  /** First ZeroMQ port of the first instance's range; each next instance gets the next range. Default 20000. */
  zmqPortBase?: number;
  /** Ports per instance. Default 8, fewer when that many instances would not fit below 65536. */
  zmqPortsPerInstance?: number;
  /** Where robots are loaded from. Default the repository's assets/robots. */
  assetsDir?: string;
}

/** What an instance has done, for tests and operators. Counters cover the instance's lifetime. */
export interface SimInstanceStats {
  aiStepsApplied: number;
  aiStepsRefused: number;
  humanActionsApplied: number;
  demonstrationsRecorded: number;
  sessionId?: string;
  epoch?: bigint;
  /** "ai", a human's name, or "" without a session. */
  controller: string;
}

export interface SimAgent {
  /** host:port of the agent's IsaacSimService. */
  grpcAddress: string;
  httpPort: number;
  instanceIds: string[];
  /** Resolves once Neuro has accepted the registration (never, with registerWithNeuro false). */
  registered: Promise<void>;
  stats(id: string): SimInstanceStats;
  /** Simulates that instance dying: no more heartbeats, its RPCs answer UNAVAILABLE, its session's sockets close. */
  killInstance(id: string): void;
  stop(): Promise<void>;
}

const MAX_PORT = 65535;

/** The per-instance ZeroMQ port ranges: disjoint, since all instances share one machine. */
function portPlan(count: number, base: number, perInstance: number | undefined): number {
  const room = MAX_PORT - base + 1;
  const per = perInstance ?? Math.min(8, Math.floor(room / Math.max(count, 1)));
  if (!Number.isInteger(per) || per < 1 || per * count > room) {
    throw new Error(`cannot give ${count} instances ${perInstance ?? 'at least 1'} ZeroMQ port(s) each above ${base}: set zmqPortBase or zmqPortsPerInstance`);
  }
  return per;
}

function listen(server: HttpServer, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function bindGrpc(server: grpc.Server, address: string): Promise<number> {
  return new Promise((resolve, reject) =>
    server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))),
  );
}

/** Starts the agent: servers listening, instances created, registration with Neuro under way. */
export async function startSimAgent(opts: SimAgentOptions): Promise<SimAgent> {
  if (!Number.isInteger(opts.count) || opts.count < 0) throw new Error(`count must be a non-negative integer, got ${opts.count}`);
  const host = opts.host ?? '127.0.0.1';
  // A host name may not be an interface of this machine: listen everywhere then.
  const bindHost = isIP(host) ? host : '0.0.0.0';
  const logger = opts.logger ?? pino({ name: 'sim-agent' });
  const prefix = opts.idPrefix ?? 'isaac-sim-';
  const first = opts.startIndex ?? 1;
  const zmqBase = opts.zmqPortBase ?? 20000;
  const perInstance = portPlan(opts.count, zmqBase, opts.zmqPortsPerInstance);

  const instances = new Map<string, SimInstance>();
  const grpcServer = new grpc.Server({ 'grpc.max_receive_message_length': 4 * 1024 * 1024 });
  addIsaacSimService(grpcServer, instances);
  const controls = createControlSockets(instances, logger);
  const http = createServer((req, res) => {
    if (req.url === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      return;
    }
    res.writeHead(404).end();
  });
  http.on('upgrade', controls.handleUpgrade);

  let grpcPort: number;
  let httpPort: number;
  try {
    grpcPort = await bindGrpc(grpcServer, `${bindHost.includes(':') ? `[${bindHost}]` : bindHost}:${opts.grpcPort ?? 0}`);
    httpPort = await listen(http, bindHost, opts.httpPort ?? 0);
  } catch (e) {
    grpcServer.forceShutdown();
    http.close();
    throw e;
  }
  const grpcAddress = `${host.includes(':') ? `[${host}]` : host}:${grpcPort}`;

  const registry =
    opts.registerWithNeuro === false
      ? undefined
      : new RegistryClient({
          neuroAddress: opts.neuroAddress,
          token: opts.token,
          intervalMs: opts.heartbeatIntervalMs,
          onError: (err) => logger.debug({ err }, 'registry call failed; retrying'),
        });
  const ctx: AgentContext = {
    host,
    hostLabel: opts.hostLabel ?? host,
    zone: opts.zone ?? 'zone-a',
    httpPort,
    grpcAddress,
    assetsDir: opts.assetsDir ?? DEFAULT_ASSETS_DIR,
    gpusPerInstance: opts.gpusPerInstance ?? 1,
    memoryGb: opts.memoryGb ?? 16,
    labels: opts.labels ?? {},
    logger,
    registry,
  };
  for (let k = 0; k < opts.count; k++) {
    const id = `${prefix}${first + k}`;
    const min = zmqBase + k * perInstance;
    const inst = new SimInstance(id, ctx, min, min + perInstance - 1);
    instances.set(id, inst);
    registry?.add(id, inst);
  }
  const registered = registry ? registry.start() : new Promise<void>(() => {});
  logger.info({ grpcAddress, httpPort, instances: opts.count, neuro: registry ? opts.neuroAddress : undefined }, 'simulator agent started');

  const get = (id: string): SimInstance => {
    const inst = instances.get(id);
    if (!inst) throw new Error(`no instance ${id} in this agent`);
    return inst;
  };
  let stopping: Promise<void> | undefined;

  return {
    grpcAddress,
    httpPort,
    instanceIds: [...instances.keys()],
    registered,
    stats(id) {
      const inst = get(id);
      const s = inst.session;
      return { ...inst.stats, sessionId: s?.id, epoch: s?.epoch, controller: s?.controller ?? '' };
    },
    killInstance(id) {
      const inst = get(id);
      if (!inst.alive) return;
      registry?.remove(id);
      inst.kill().catch((err: Error) => logger.warn({ err, instance: id }, 'releasing a killed instance failed'));
      logger.info({ instance: id }, 'instance killed');
    },
    stop() {
      stopping ??= (async () => {
        if (registry) {
          await registry.deregister([...instances.values()].filter((i) => i.alive).map((i) => i.id));
          registry.stop();
        }
        await Promise.all([...instances.values()].map((i) => i.shutdown()));
        controls.close();
        await new Promise<void>((resolve) => {
          // A client that keeps its channel open must not hold the agent up.
          const force = setTimeout(() => grpcServer.forceShutdown(), 2000);
          grpcServer.tryShutdown(() => {
            clearTimeout(force);
            resolve();
          });
        });
        await new Promise<void>((resolve) => {
          http.close(() => resolve());
          http.closeAllConnections();
        });
        logger.info({ grpcAddress }, 'simulator agent stopped');
      })();
      return stopping;
    },
  };
}


