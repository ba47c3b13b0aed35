/**
 * The `neuro` command line: the server, the demo, the reference agents, and a client of the public API
 * (tables for people, --json for scripts). The client commands only talk to Neuro through its gRPC API.
 */
import { Command, Option } from 'commander';
import { onSignals } from './signals.js';
import * as grpc from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import { fromJson, type DescMessage, type MessageShape } from '@bufbuild/protobuf';
import {
  CreateHybridSessionRequestSchema,
  CreateHybridSessionResponseSchema,
  CreateTrainingSessionRequestSchema,
  CreateTrainingSessionResponseSchema,
  TakeControlResponseSchema,
  ReleaseControlResponseSchema,
  CreateSessionRequestSchema,
  CreateSessionResponseSchema,
  GetSessionResponseSchema,
  ListSessionsResponseSchema,
  NeuroOrchestratorService,
  SessionState,
  TerminateSessionResponseSchema,
  WatchSessionResponseSchema,
  DrainInstanceResponseSchema,
  type Session,
} from '../gen/neuro/v1/neuro_orchestrator_pb.js';
import { ResourcePoolStatusResponseSchema, type PoolStatus } from '../gen/neuro/v1/resource_pb.js';
import { SessionMode } from '../gen/neuro/v1/common_pb.js';
import { createClient, type ClientOf } from '../rpc/grpc-adapter.js';
import { NeuroError } from '../core/errors.js';
import { json, table } from './output.js';

type Api = ClientOf<typeof NeuroOrchestratorService>;

interface GlobalOpts {
  address: string;
  token?: string;
  tls?: boolean;
  ca?: string;
  json?: boolean;
}

function api(g: GlobalOpts): Api {
  const metadata = new grpc.Metadata();
  if (g.token) metadata.set('authorization', `Bearer ${g.token}`);
  const credentials = g.tls ? grpc.credentials.createSsl(g.ca ? readFileSync(g.ca) : null) : grpc.credentials.createInsecure();
  return createClient(NeuroOrchestratorService, g.address, { metadata, credentials });
}

function readJson<D extends DescMessage>(schema: D, file: string): MessageShape<D> {
  const text = readFileSync(file === '-' ? 0 : file, 'utf8');
  return fromJson(schema, JSON.parse(text), { ignoreUnknownFields: false });
}

export const stateName = (s: SessionState) => (SessionState[s] ?? String(s)).toLowerCase();
export const modeName = (m: SessionMode) => SessionMode[m] ?? String(m);

function printPool(name: string, p: PoolStatus | undefined): string {
  if (!p) return '';
  const head = `${name}: ${p.totalInstances} total, ${p.idleInstances} idle, ${p.runningInstances} running, ${p.unhealthyInstances} unhealthy, ${p.drainingInstances} draining`;
  const rows = p.instances.map((i) => [i.instanceId, i.status, i.host, i.gpuIds.length, i.sessionId || '-', i.pairedWith || (i.pairedInstances.length ? i.pairedInstances.join(',') : '-')]);
  return rows.length ? `${head}\n${table(['INSTANCE', 'STATUS', 'HOST', 'GPUS', 'SESSION', 'PAIRED'], rows)}\n` : `${head}\n`;
}

export function describeSession(s: Session): string {
  const lines = [
    `session   ${s.sessionId}`,
    `mode      ${modeName(s.mode)}`,
    `state     ${stateName(s.state)}${s.failureReason ? ` (${s.failureReason})` : ''}`,
    `epoch     ${s.epoch}`,
  ];
  if (s.instanceId) lines.push(`instance  ${s.instanceId}`, `control   ${s.controlWsUrl}`, `webrtc    ${s.webrtcSignalingUrl}`);
  if (s.trainingInstanceId) lines.push(`trainer   ${s.trainingInstanceId}`, `sims      ${s.isaacInstanceIds.join(', ')}`);
  for (const c of s.zmqChannels) lines.push(`channel   ${c.isaacInstanceId} ${c.zmqEndpoint} ${c.protocol} ${c.state}`);
  if (s.progress) {
    const p = s.progress;
    lines.push(`progress  ${p.episodesDone}/${p.totalEpisodes} episodes, mean reward ${p.meanReward.toFixed(3)} (first ${p.firstMeanReward.toFixed(3)}), ${p.envStepsPerSecond.toFixed(0)} steps/s`);
  }
  for (const c of s.controllers) lines.push(`control   ${c.isaacInstanceId}: ${c.controller} (${c.demonstrations} demonstrations)`);
  if (s.placements.length) {
    lines.push('placement');
    for (const p of s.placements) lines.push(`  ${p.role.padEnd(9)} ${p.instanceId.padEnd(16)} score ${p.score}  ${p.reason}`);
  }
  if (s.events.length) {
    lines.push('events');
    for (const e of s.events.slice(-10)) lines.push(`  #${e.sequence} ${e.time ? new Date(Number(e.time.seconds) * 1000 + e.time.nanos / 1e6).toISOString() : ''} ${e.type}: ${e.message}`);
  }
  return lines.join('\n');
}

function fail(e: unknown): never {
  const err = NeuroError.from(e);
  const fields = err.details.fieldViolations?.map((v) => `\n  ${v.field}: ${v.description}`).join('') ?? '';
  process.stderr.write(`error: ${err.code} ${err.reason}: ${err.message}${fields}\n`);
  process.exit(1);
}

async function run<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    fail(e);
  }
}

function intOpt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`not a non-negative integer: ${v}`);
  return n;
}

export function buildProgram(): Command {
  const program = new Command('neuro')
    .description('Neuro: the orchestrator of simulator and training pools')
    .addOption(new Option('--address <host:port>', "Neuro's gRPC address").env('NEURO_ADDRESS').default('127.0.0.1:50051'))
    .addOption(new Option('--token <token>', 'caller bearer token').env('NEURO_TOKEN'))
    .option('--tls', 'use TLS to reach Neuro')
    .option('--ca <file>', 'CA certificate (PEM) for --tls')
    .option('--json', 'print proto3 JSON instead of tables');
  const g = () => program.opts<GlobalOpts>();

  const serveOptions = (c: Command) =>
    c
      .option('--config <file>', 'JSON config file (also NEURO_CONFIG)')
      .option('--grpc-port <port>', 'gRPC port (default 50051)', intOpt)
      .option('--http-port <port>', 'HTTP port (default 8090)', intOpt)
      .option('--data-dir <dir>', 'where the SQLite store lives (default ./data)')
      .option('--caller-token <token>', 'bearer token callers must send')
      .option('--instance-token <token>', 'bearer token instances must send')
      .option('--log-level <level>', 'pino level (default info)');
  const configFrom = async (o: Record<string, unknown>) => {
    const { loadConfig } = await import('../server/config.js');
    return loadConfig({
      file: o.config as string | undefined,
      overrides: {
        ...(o.grpcPort !== undefined ? { grpc: { port: o.grpcPort as number } } : {}),
        ...(o.httpPort !== undefined ? { http: { port: o.httpPort as number } } : {}),
        ...(o.dataDir ? { dataDir: o.dataDir as string } : {}),
        ...(o.callerToken ? { callerToken: o.callerToken as string } : {}),
        ...(o.instanceToken ? { instanceToken: o.instanceToken as string } : {}),
        ...(o.logLevel ? { logLevel: o.logLevel as string } : {}),
      } as never,
    });
  };

  serveOptions(program.command('serve').description('run the Neuro server')).action(async (o) => {
    const { startNeuro } = await import('../server/neuro.js');
    // Signals are handled from the first moment: a SIGTERM during start-up waits for it, then stops.
    const starting = startNeuro(await configFrom(o));
    onSignals(async () => (await starting).stop());
    await starting;
  });

  serveOptions(program.command('demo').description('Neuro plus a local pool of reference agents on loopback (what npm start runs)'))
    .option('--simulators <n>', 'simulator instances', intOpt, 8)
    .option('--trainers <n>', 'trainer instances (4 GPUs, 32 GB each)', intOpt, 2)
    .action(async (o) => {
      const { runDemo } = await import('./demo.js');
      await runDemo(await configFrom(o), { simulators: o.simulators, trainers: o.trainers });
    });

  const agent = program.command('agent').description('run reference agents that stand in for Isaac Sim and training instances');
  // The options every reference agent takes, and what they mean to both kinds.
  const agentCommand = (name: string, description: string, count: number, idPrefix: string) =>
    agent
      .command(name)
      .description(description)
      .option('--neuro <host:port>', "Neuro's gRPC address", '127.0.0.1:50051')
      .addOption(new Option('--instance-token <token>', 'instance bearer token').env('NEURO_INSTANCE_TOKEN'))
      .option('--count <n>', 'virtual instances', intOpt, count)
      .option('--id-prefix <prefix>', 'instance id prefix', idPrefix)
      .option('--start-index <n>', 'first instance number', intOpt, 1)
      .option('--host <host>', 'advertised host', '127.0.0.1')
      .option('--zone <zone>', 'zone', 'zone-a')
      .option('--host-label <name>', 'topology host name reported to Neuro')
      .option('--grpc-port <port>', 'gRPC port (0 = any free)', intOpt, 0);
  const agentOptions = (o: Record<string, unknown>) => ({
    neuroAddress: o.neuro as string,
    token: o.instanceToken as string | undefined,
    count: o.count as number,
    idPrefix: o.idPrefix as string,
    startIndex: o.startIndex as number,
    host: o.host as string,
    zone: o.zone as string,
    hostLabel: o.hostLabel as string | undefined,
    grpcPort: o.grpcPort as number,
  });
  agentCommand('sim', 'simulator agent: serves IsaacSimService for --count virtual instances', 8, 'isaac-sim-')
    .option('--http-port <port>', 'control WebSocket port (0 = any free)', intOpt, 0)
    .option('--zmq-port-base <port>', 'first ZeroMQ port', intOpt, 30000)
    .action(async (o) => {
      const { startSimAgent } = await import('../agents/sim/index.js');
      const a = await startSimAgent({ ...agentOptions(o), httpPort: o.httpPort, zmqPortBase: o.zmqPortBase });
      onSignals(() => a.stop());
      process.stdout.write(`simulator agent: ${a.instanceIds.length} instances on ${a.grpcAddress}, control WebSocket on port ${a.httpPort}\n`);
    });
  agentCommand('trainer', 'trainer agent: serves TrainingService for --count virtual instances', 2, 'training-')
    .option('--gpus <n>', 'GPUs per instance', intOpt, 4)
    .option('--memory-gb <n>', 'memory per instance', intOpt, 32)
    .action(async (o) => {
      const { startTrainerAgent } = await import('../agents/trainer/index.js');
      const a = await startTrainerAgent({ ...agentOptions(o), gpusPerInstance: o.gpus, memoryGb: o.memoryGb });
      onSignals(() => a.stop());
      process.stdout.write(`trainer agent: ${a.instanceIds.length} instances on ${a.grpcAddress}\n`);
    });

  const pool = program.command('pool').description('the instance pools');
  pool
    .command('status')
    .description('GetResourcePoolStatus: both pools and every instance')
    .option('--summary', 'counts only')
    .action(async (o) => {
      const c = api(g());
      const res = await run(() => c.getResourcePoolStatus({ includeIsaacPool: true, includeTrainingPool: true, summaryOnly: !!o.summary }));
      process.stdout.write(g().json ? `${json(ResourcePoolStatusResponseSchema, res)}\n` : `${printPool('simulators', res.isaacPool)}\n${printPool('trainers', res.trainingPool)}`);
      c.close();
    });

  const instance = program.command('instance').description('operator actions on instances');
  for (const [name, drain] of [['drain', true], ['undrain', false]] as const) {
    instance
      .command(`${name} <instance-id>`)
      .description(drain ? 'finish the current session, take no new one' : 'take sessions again')
      .action(async (id: string) => {
        const c = api(g());
        const res = await run(async () => {
          const r = drain ? await c.drainInstance({ instanceId: id }) : await c.undrainInstance({ instanceId: id });
          return { message: r.message, json: json(DrainInstanceResponseSchema, { ...r, $typeName: 'neuro.v1.DrainInstanceResponse' }) };
        });
        process.stdout.write(g().json ? `${res.json}\n` : `${res.message}\n`);
        c.close();
      });
  }

  const session = program.command('session').description('sessions');
  session
    .command('create')
    .description('CreateSession (MANUAL): one simulator for a human')
    .option('--id <session-id>', 'session id (default: a new UUID)')
    .option('--robot <urdf>', 'robot asset', 'franka_panda.urdf')
    .option('--width <n>', 'stream width', intOpt, 1920)
    .option('--height <n>', 'stream height', intOpt, 1080)
    .option('--fps <n>', 'stream fps', intOpt, 30)
    .option('--transport <t>', 'stream transport', 'webrtc')
    .option('--from-json <file>', 'the request as proto3 JSON (the seed example), - for stdin')
    .action(async (o) => {
      const c = api(g());
      const req = o.fromJson
        ? readJson(CreateSessionRequestSchema, o.fromJson)
        : {
            sessionId: o.id ?? crypto.randomUUID(),
            mode: SessionMode.MANUAL,
            sceneConfig: { robotUrdf: o.robot, startPosition: { x: 0, y: 0, z: 0 } },
            streamConfig: { width: o.width, height: o.height, fps: o.fps, transport: o.transport },
          };
      const res = await run(() => c.createSession(req));
      process.stdout.write(
        g().json
          ? `${json(CreateSessionResponseSchema, res)}\n`
          : `${res.message}\n${table(['SESSION', 'INSTANCE', 'STATUS'], [[res.sessionId, res.instanceId, res.status?.status ?? '']])}\ncontrol: ${res.controlWsUrl}\nwebrtc:  ${res.webrtcSignalingUrl}\n`,
      );
      c.close();
    });
  const gangFlags = (c: Command) =>
    c
      .option('--id <session-id>', 'session id (default: a new UUID)')
      .option('--robot <urdf>', 'robot asset', 'franka_panda.urdf')
      .option('--algorithm <name>', 'learning algorithm', 'PPO')
      .option('--total-episodes <n>', 'episodes to train', intOpt, 10000)
      .option('--parallel-envs <n>', 'envs in all (a multiple of --isaac-sim-instances)', intOpt, 4)
      .option('--hyperparameter <key=value...>', 'e.g. learning_rate=0.0003 (repeatable)')
      .option('--training-gpus <n>', 'GPUs of the trainer', intOpt, 4)
      .option('--training-memory-gb <n>', 'memory of the trainer', intOpt, 32)
      .option('--isaac-sim-instances <n>', 'simulators', intOpt, 4)
      .option('--from-json <file>', 'the request as proto3 JSON (the seed example), - for stdin');
  const gangRequest = (o: Record<string, unknown>, mode: SessionMode) => {
    const hp: Record<string, string> = { learning_rate: '0.0003', gamma: '0.99', clip_range: '0.2' };
    for (const kv of (o.hyperparameter as string[] | undefined) ?? []) {
      const [k, ...v] = kv.split('=');
      if (!k || !v.length) throw new Error(`--hyperparameter takes key=value, got ${kv}`);
      hp[k] = v.join('=');
    }
    return {
      sessionId: (o.id as string | undefined) ?? crypto.randomUUID(),
      mode,
      sceneConfig: { robotUrdf: o.robot as string, startPosition: { x: 0, y: 0, z: 0 } },
      trainingConfig: { algorithm: o.algorithm as string, totalEpisodes: o.totalEpisodes as number, parallelEnvs: o.parallelEnvs as number, hyperparameters: hp },
      resourceRequirements: { trainingGpus: o.trainingGpus as number, trainingMemoryGb: o.trainingMemoryGb as number, isaacSimInstances: o.isaacSimInstances as number },
    };
  };
  const gangTable = (r: { message: string; sessionId: string; trainingInstanceId: string; isaacInstanceIds: string[]; zmqChannels: { isaacInstanceId: string; zmqEndpoint: string; protocol: string }[] }) =>
    `${r.message}\nsession ${r.sessionId}, trainer ${r.trainingInstanceId}, simulators ${r.isaacInstanceIds.join(', ')}\n${table(
      ['SIMULATOR', 'ENDPOINT', 'PROTOCOL'],
      r.zmqChannels.map((c) => [c.isaacInstanceId, c.zmqEndpoint, c.protocol]),
    )}\n`;
  gangFlags(session.command('train').description('CreateTrainingSession: a trainer and N simulators over ZeroMQ')).action(async (o) => {
    const c = api(g());
    const req = o.fromJson ? readJson(CreateTrainingSessionRequestSchema, o.fromJson) : gangRequest(o, SessionMode.TRAINING);
    const res = await run(() => c.createTrainingSession(req));
    process.stdout.write(g().json ? `${json(CreateTrainingSessionResponseSchema, res)}\n` : `${gangTable(res)}training status: ${TrainingStatusName(res.trainingStatus)}\nwatch it: neuro session watch ${res.sessionId}\n`);
    c.close();
  });
  gangFlags(session.command('hybrid').description('CreateHybridSession: training that a human can take over'))
    .option('--initial-controller <who>', '"ai" or a user name', 'ai')
    .option('--no-record', 'do not record demonstrations')
    .option('--idle-timeout <seconds>', 'a silent human hands back control after this long', intOpt, 60)
    .option('--allow-force', 'let TakeControl --force take a simulator from another human')
    .action(async (o) => {
      const c = api(g());
      const req = o.fromJson
        ? readJson(CreateHybridSessionRequestSchema, o.fromJson)
        : {
            ...gangRequest(o, SessionMode.HYBRID),
            hybridConfig: { initialController: o.initialController, recordDemonstrations: o.record, humanIdleTimeoutSeconds: o.idleTimeout, allowForceTakeover: !!o.allowForce },
          };
      const res = await run(() => c.createHybridSession(req));
      process.stdout.write(
        g().json
          ? `${json(CreateHybridSessionResponseSchema, res)}\n`
          : `${gangTable(res)}${table(['SIMULATOR', 'CONTROL WEBSOCKET'], res.simulatorEndpoints.map((e) => [e.isaacInstanceId, e.controlWsUrl]))}\ntake one over: neuro control drive ${res.sessionId} ${res.isaacInstanceIds[0] ?? ''} --user $USER --take\n`,
      );
      c.close();
    });
  session
    .command('get <session-id>')
    .description('GetSession: state, allocation, and why each instance was chosen')
    .action(async (id: string) => {
      const c = api(g());
      const res = await run(() => c.getSession({ sessionId: id }));
      process.stdout.write(g().json ? `${json(GetSessionResponseSchema, res)}\n` : `${describeSession(res.session!)}\n`);
      c.close();
    });
  session
    .command('list')
    .description('ListSessions, newest first')
    .addOption(new Option('--mode <mode>', 'only this mode').choices(['MANUAL', 'TRAINING', 'HYBRID']))
    .addOption(new Option('--state <state>', 'only this state').choices(['pending', 'initializing', 'ready', 'running', 'stopping', 'terminated', 'completed', 'failed']))
    .option('--page-size <n>', 'sessions per page', intOpt, 50)
    .option('--page-token <token>', 'from a previous page')
    .action(async (o) => {
      const c = api(g());
      const res = await run(() =>
        c.listSessions({
          mode: o.mode ? SessionMode[o.mode as 'MANUAL'] : SessionMode.SESSION_MODE_UNSPECIFIED,
          state: o.state ? SessionState[(o.state as string).toUpperCase() as 'READY'] : SessionState.UNSPECIFIED,
          pageSize: o.pageSize,
          pageToken: o.pageToken ?? '',
        }),
      );
      if (g().json) process.stdout.write(`${json(ListSessionsResponseSchema, res)}\n`);
      else {
        const rows = res.sessions.map((s) => [s.sessionId, modeName(s.mode), stateName(s.state), s.instanceId || s.trainingInstanceId, s.isaacInstanceIds.length || (s.instanceId ? 1 : 0)]);
        process.stdout.write(`${table(['SESSION', 'MODE', 'STATE', 'INSTANCE/TRAINER', 'SIMS'], rows)}\n${res.totalSize} sessions${res.nextPageToken ? `; next page: --page-token ${res.nextPageToken}` : ''}\n`);
      }
      c.close();
    });
  session
    .command('terminate <session-id>')
    .description('TerminateSession: end it and release everything (idempotent)')
    .option('--reason <text>', 'why', '')
    .action(async (id: string, o) => {
      const c = api(g());
      const res = await run(() => c.terminateSession({ sessionId: id, reason: o.reason }));
      process.stdout.write(g().json ? `${json(TerminateSessionResponseSchema, res)}\n` : `${res.message}: ${res.sessionId} is ${stateName(res.state)}\n`);
      c.close();
    });
  session
    .command('watch <session-id>')
    .description('WatchSession: state changes, progress and control changes until the session ends')
    .action(async (id: string) => {
      const c = api(g());
      const { watch } = await import('./watch.js');
      await run(() => watch(c, id, !!g().json, (m) => json(WatchSessionResponseSchema, m)));
      c.close();
    });

  const control = program.command('control').description('HYBRID: take a simulator over from the AI and hand it back');
  control
    .command('take <session-id> <isaac-instance-id>')
    .requiredOption('--user <name>', 'who takes control')
    .option('--force', 'take it from another human (if the session allows)')
    .action(async (sid: string, iid: string, o) => {
      const c = api(g());
      const res = await run(() => c.takeControl({ sessionId: sid, isaacInstanceId: iid, user: o.user, force: !!o.force }));
      process.stdout.write(g().json ? `${json(TakeControlResponseSchema, res)}\n` : `${res.message}\ncontrol WebSocket: ${res.controlWsUrl}\n`);
      c.close();
    });
  control
    .command('release <session-id> <isaac-instance-id>')
    .option('--user <name>', 'who releases (must be the holder)')
    .action(async (sid: string, iid: string, o) => {
      const c = api(g());
      const res = await run(() => c.releaseControl({ sessionId: sid, isaacInstanceId: iid, user: o.user ?? '' }));
      process.stdout.write(g().json ? `${json(ReleaseControlResponseSchema, res)}\n` : `${res.message}\n`);
      c.close();
    });
  control
    .command('drive <session-id> [isaac-instance-id]')
    .description('drive a simulator from the keyboard over its control WebSocket (MANUAL, or HYBRID with --take)')
    .option('--user <name>', 'who drives', process.env.USER || 'operator')
    .option('--take', 'HYBRID: take control first and release it on quit')
    .action(async (sid: string, iid: string | undefined, o) => {
      const c = api(g());
      const s = (await run(() => c.getSession({ sessionId: sid }))).session!;
      const sim = iid ?? (s.instanceId || s.isaacInstanceIds[0] || '');
      const url = s.instanceId === sim ? s.controlWsUrl : s.simulatorEndpoints.find((e) => e.isaacInstanceId === sim)?.controlWsUrl;
      if (!url) fail(new NeuroError('INVALID_ARGUMENT', 'NOT_IN_SESSION', `${sim} is not a simulator of ${sid}`));
      if (o.take) await run(() => c.takeControl({ sessionId: sid, isaacInstanceId: sim, user: o.user, force: false }));
      const { drive } = await import('./drive.js');
      await run(() => drive({ url: url!, user: o.user, input: process.stdin, output: process.stdout }));
      if (o.take) await run(() => c.releaseControl({ sessionId: sid, isaacInstanceId: sim, user: o.user }));
      c.close();
    });

  return program;
}

function TrainingStatusName(t: number): string {
  return ['UNSPECIFIED', 'INITIALIZING', 'RUNNING', 'COMPLETED', 'FAILED', 'STOPPED'][t] ?? String(t);
}

export async function main(argv: string[]): Promise<void> {
  await buildProgram().parseAsync(argv);
}
