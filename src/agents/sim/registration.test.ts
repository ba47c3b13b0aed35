/**
 * The agent as Neuro's registry sees it: registration specs, heartbeats, stop directives, control
 * notices and deregistration. A minimal InstanceRegistryService plays Neuro over real gRPC.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { WebSocket } from 'ws';
import { IsaacSimService } from '../../gen/isaac/v1/isaac_sim_pb.js';
import { SessionMode } from '../../gen/neuro/v1/common_pb.js';
import {
  InstanceKind,
  InstanceRegistryService,
  type InstanceBeat,
  type InstanceSpec,
  type ReportProgressRequest,
  type StopDirective,
} from '../../gen/neuro/v1/registry_pb.js';
import { addService, createClient, type ClientOf } from '../../rpc/grpc-adapter.js';
import { startSimAgent, type SimAgent } from './index.js';

/** Records what the agent sends and lets a test await the first record matching a predicate. */
class Log<T> {
  private readonly items: T[] = [];
  private waiters: Array<{ match: (t: T) => boolean; resolve: (t: T) => void }> = [];

  push(item: T): void {
    this.items.push(item);
    for (const w of this.waiters.filter((x) => x.match(item))) w.resolve(item);
    this.waiters = this.waiters.filter((x) => !x.match(item));
  }

  /** The first record from now on matching `match`. */
  next(match: (t: T) => boolean): Promise<T> {
    return new Promise((resolve) => this.waiters.push({ match, resolve }));
  }

  /** The first record so far or from now on matching `match`. */
  some(match: (t: T) => boolean): Promise<T> {
    const hit = this.items.find(match);
    return hit ? Promise.resolve(hit) : this.next(match);
  }
}

const registered = new Log<InstanceSpec>();
const beats = new Log<InstanceBeat[]>();
const reports = new Log<ReportProgressRequest>();
const deregistered = new Log<string[]>();
/** Stop directives Neuro sends with its next heartbeat answer. */
const pendingStops = new Map<string, StopDirective[]>();

let neuro: grpc.Server;
let agent: SimAgent;
let sim: ClientOf<typeof IsaacSimService>;
const ZMQ_BASE = 27000;

before(async () => {
  neuro = new grpc.Server();
  addService(neuro, InstanceRegistryService, {
    register: (req) => {
      for (const s of req.instances) registered.push(s);
      return { success: true, heartbeatIntervalMs: 1000, heartbeatGraceMs: 3000 };
    },
    heartbeat: (stream) => {
      stream.onMessage((req) => {
        beats.push(req.beats);
        const directives = [...pendingStops].map(([instanceId, stop]) => ({ instanceId, stop }));
        pendingStops.clear();
        stream.send({ directives });
      });
    },
    deregister: (req) => {
      deregistered.push(req.instanceIds);
      return { success: true };
    },
    reportProgress: (req) => {
      reports.push(req);
      return { success: true, mode: SessionMode.HYBRID };
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    neuro.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  agent = await startSimAgent({
    neuroAddress: `127.0.0.1:${port}`,
    count: 3,
    idPrefix: 'sim-',
    hostLabel: 'rack-7',
    zone: 'zone-b',
    zmqPortBase: ZMQ_BASE,
    gpusPerInstance: 2,
    memoryGb: 32,
    labels: { gpu: 'a100' },
    heartbeatIntervalMs: 20,
    logger: pino({ level: 'silent' }),
  });
  sim = createClient(IsaacSimService, agent.grpcAddress);
});

after(async () => {
  sim.close();
  await agent.stop();
  neuro.forceShutdown();
});

test('every instance registers with its topology, GPUs, endpoints and a disjoint ZeroMQ range', async () => {
  await agent.registered;
  const specs = await Promise.all(['sim-1', 'sim-2', 'sim-3'].map((id) => registered.some((s) => s.instanceId === id)));
  specs.forEach((s, k) => {
    assert.equal(s.kind, InstanceKind.SIMULATOR);
    assert.equal(s.grpcAddress, agent.grpcAddress);
    assert.deepEqual([s.host, s.zone, s.memoryGb, s.labels], ['rack-7', 'zone-b', 32, { gpu: 'a100' }]);
    assert.deepEqual(s.gpus.map((g) => g.id), ['GPU-0', 'GPU-1']);
    assert.equal(s.controlWsBase, `ws://127.0.0.1:${agent.httpPort}/i/sim-${k + 1}`);
    assert.equal(s.zmqHost, '127.0.0.1');
    assert.deepEqual([s.zmqPortMin, s.zmqPortMax], [ZMQ_BASE + 8 * k, ZMQ_BASE + 8 * k + 7]);
  });
});

test('heartbeats carry the live session and warm robots; a stop directive ends the session', async () => {
  await sim.createSession({ instanceId: 'sim-1', sessionId: 's-1', epoch: 2n, sceneConfig: { robotUrdf: 'ur5.urdf' }, mode: SessionMode.TRAINING });
  const beat = await beats.next((b) => b.some((x) => x.instanceId === 'sim-1' && x.sessions.length > 0));
  const mine = beat.find((x) => x.instanceId === 'sim-1')!;
  assert.deepEqual(mine.sessions.map((s) => [s.sessionId, s.epoch]), [['s-1', 2n]]);
  assert.deepEqual(mine.warmRobots, ['ur5.urdf']);
  assert.ok(mine.gpuUtilization > 0);

  // A directive for an older epoch is ignored; the matching one stops the session.
  pendingStops.set('sim-1', [{ $typeName: 'neuro.v1.StopDirective', sessionId: 's-1', epoch: 1n, reason: 'stale' }]);
  await beats.next(() => true);
  await beats.next(() => true);
  assert.equal(agent.stats('sim-1').sessionId, 's-1');
  pendingStops.set('sim-1', [{ $typeName: 'neuro.v1.StopDirective', sessionId: 's-1', epoch: 2n, reason: 'terminated' }]);
  const idle = await beats.next((b) => b.some((x) => x.instanceId === 'sim-1' && x.sessions.length === 0));
  assert.deepEqual(idle.find((x) => x.instanceId === 'sim-1')!.warmRobots, ['ur5.urdf'], 'the robot stays warm');
  assert.equal(agent.stats('sim-1').sessionId, undefined);
});

test('a human whose WebSocket closes loses control, and the simulator tells Neuro', async () => {
  const created = await sim.createSession({
    instanceId: 'sim-2',
    sessionId: 'h-1',
    epoch: 4n,
    sceneConfig: { robotUrdf: 'two_link_arm.urdf' },
    mode: SessionMode.HYBRID,
    recordDemonstrations: true,
  });
  await sim.setControlSource({ instanceId: 'sim-2', sessionId: 'h-1', epoch: 4n, controller: 'erin' });
  const ws = new WebSocket(created.controlWsUrl);
  const applied = new Promise<void>((resolve) =>
    ws.on('message', (data) => {
      const f = JSON.parse(data.toString()) as { type: string; demonstrations?: number };
      if (f.type === 'state' && f.demonstrations === 1) resolve();
    }),
  );
  ws.on('open', () => {
    ws.send(JSON.stringify({ type: 'hello', user: 'erin' }));
    ws.send(JSON.stringify({ type: 'action', joint: 1, delta: 1 }));
  });
  await applied;
  ws.close();
  const report = await reports.next((r) => r.sessionId === 'h-1');
  assert.equal(report.instanceId, 'sim-2');
  assert.equal(report.epoch, 4n);
  assert.deepEqual(
    [report.control?.isaacInstanceId, report.control?.controller, report.control?.reason, report.control?.demonstrations],
    ['sim-2', 'ai', 'disconnected', 1n],
  );
});

test('a killed instance drops out of the heartbeats; stopping deregisters the rest', async () => {
  agent.killInstance('sim-3');
  await beats.next((b) => !b.some((x) => x.instanceId === 'sim-3'));
  await agent.stop();
  const ids = await deregistered.some(() => true);
  assert.deepEqual(ids, ['sim-1', 'sim-2']);
});
