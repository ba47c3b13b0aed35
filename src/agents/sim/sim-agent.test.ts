/**
 * The simulator agent end to end over its real transports: gRPC (IsaacSimService), ZeroMQ REQ
 * against its env servers and WebSocket control clients. Nothing is mocked.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { pino } from 'pino';
import { WebSocket } from 'ws';
import { Reply, Request } from 'zeromq';
import { IsaacSimService } from '../../gen/isaac/v1/isaac_sim_pb.js';
import { SessionMode } from '../../gen/neuro/v1/common_pb.js';
import { NeuroError } from '../../core/errors.js';
import { createClient, type ClientOf } from '../../rpc/grpc-adapter.js';
import { decode, encode, type EnvReply, type EnvRequest } from '../common/env-protocol.js';
import { startSimAgent, type SimAgent } from './index.js';

type Frame = Record<string, unknown> & { type: string };

/** A port nobody listens on right now. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/** A control WebSocket client that queues frames so a test can await the next one it cares about. */
class ControlClient {
  readonly ws: WebSocket;
  readonly closed: Promise<{ code: number; reason: string }>;
  private readonly frames: Frame[] = [];
  private waiters: Array<{ match: (f: Frame) => boolean; resolve: (f: Frame) => void }> = [];

  constructor(url: string) {
    this.ws = new WebSocket(url);
    this.ws.on('message', (data) => {
      const f = JSON.parse(data.toString()) as Frame;
      const w = this.waiters.find((x) => x.match(f));
      if (w) {
        this.waiters = this.waiters.filter((x) => x !== w);
        w.resolve(f);
      } else this.frames.push(f);
    });
    this.closed = new Promise((resolve) => this.ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  }

  /** The next frame (queued or future) matching `match`; earlier non-matching frames are dropped. */
  next(match: (f: Frame) => boolean = () => true): Promise<Frame> {
    const i = this.frames.findIndex(match);
    if (i >= 0) {
      const f = this.frames[i]!;
      this.frames.splice(0, i + 1);
      return Promise.resolve(f);
    }
    this.frames.length = 0;
    return new Promise((resolve) => this.waiters.push({ match, resolve }));
  }

  /** Sends now, or once connected (in order). */
  send(msg: object): void {
    const text = JSON.stringify(msg);
    if (this.ws.readyState === WebSocket.CONNECTING) this.ws.once('open', () => this.ws.send(text));
    else this.ws.send(text);
  }

  close(): void {
    this.ws.close();
  }
}

const ofType = (type: string) => (f: Frame) => f.type === type;

/** A ZeroMQ REQ client of the env protocol. */
class EnvClient {
  private readonly sock = new Request({ linger: 0, receiveTimeout: 5000 });

  constructor(endpoint: string) {
    this.sock.connect(endpoint);
  }

  async call(req: EnvRequest): Promise<EnvReply> {
    await this.sock.send(encode(req));
    const [reply] = await this.sock.receive();
    return decode<EnvReply>(reply!);
  }

  close(): void {
    this.sock.close();
  }
}

async function rejects(p: Promise<unknown>, code: string, reason?: string): Promise<NeuroError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof NeuroError, `expected a NeuroError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (reason) assert.equal(e.reason, reason, e.message);
    return e;
  }
  assert.fail(`expected ${code}${reason ? `/${reason}` : ''}`);
}

function ok<T extends string>(r: EnvReply, type: T): Extract<EnvReply, { ok: true; type: T }> {
  assert.ok(r.ok, `expected ok ${type}, got ${JSON.stringify(r)}`);
  assert.equal(r.type, type);
  return r as Extract<EnvReply, { ok: true; type: T }>;
}

const scene = (robot: string) => ({
  robotUrdf: robot,
  obstacles: [{ id: 'table', shape: 'box', position: { x: 0.5, y: 0, z: -0.05 }, size: { x: 1, y: 1, z: 0.1 } }],
  startPosition: { x: 0, y: 0, z: 0 },
});

describe('simulator agent', () => {
  let agent: SimAgent;
  let sim: ClientOf<typeof IsaacSimService>;

  before(async () => {
    agent = await startSimAgent({ neuroAddress: '127.0.0.1:1', count: 5, registerWithNeuro: false, logger: pino({ level: 'silent' }) });
    sim = createClient(IsaacSimService, agent.grpcAddress);
  });

  after(async () => {
    sim.close();
    await agent.stop();
  });

  test('hosts the requested instances on one gRPC and one HTTP port', () => {
    assert.deepEqual(agent.instanceIds, ['isaac-sim-1', 'isaac-sim-2', 'isaac-sim-3', 'isaac-sim-4', 'isaac-sim-5']);
    assert.match(agent.grpcAddress, /^127\.0\.0\.1:\d+$/);
    assert.ok(agent.httpPort > 0);
  });

  test('MANUAL: create, retry, stale epochs, status and a control WebSocket driving the robot', async () => {
    const id = 'isaac-sim-1';
    const req = { instanceId: id, sessionId: 'manual-1', epoch: 3n, sceneConfig: scene('franka_panda.urdf'), streamConfig: { width: 1280, height: 720, fps: 30, transport: 'webrtc' }, mode: SessionMode.MANUAL };
    const created = await sim.createSession(req);
    assert.equal(created.success, true);
    assert.equal(created.controlWsUrl, `ws://127.0.0.1:${agent.httpPort}/i/${id}/control/manual-1`);
    assert.equal(created.status?.status, 'READY');

    const retried = await sim.createSession(req);
    assert.equal(retried.controlWsUrl, created.controlWsUrl);
    await rejects(sim.createSession({ ...req, sessionId: 'older', epoch: 2n }), 'FAILED_PRECONDITION', 'STALE_EPOCH');
    await rejects(sim.createSession({ ...req, sessionId: 'same-epoch', epoch: 3n }), 'FAILED_PRECONDITION', 'STALE_EPOCH');
    await rejects(sim.startSimulation({ instanceId: id, sessionId: 'manual-1', epoch: 2n }), 'FAILED_PRECONDITION', 'STALE_EPOCH');
    await rejects(sim.startSimulation({ instanceId: id, sessionId: 'someone-else', epoch: 3n }), 'NOT_FOUND', 'SESSION_NOT_FOUND');
    await rejects(sim.getStatus({ instanceId: 'isaac-sim-99' }), 'NOT_FOUND', 'INSTANCE_NOT_FOUND');

    const started = await sim.startSimulation({ instanceId: id, sessionId: 'manual-1', epoch: 3n });
    assert.equal(started.status?.status, 'RUNNING');
    const idle = await sim.getStatus({ instanceId: id });
    assert.deepEqual([idle.status?.status, idle.sessionId, idle.epoch, idle.status?.fps], ['RUNNING', 'manual-1', 3n, 0]);

    const human = new ControlClient(created.controlWsUrl);
    const hello = await human.next(ofType('hello'));
    assert.equal(hello.session_id, 'manual-1');
    assert.equal(hello.mode, 'MANUAL');
    const robot = hello.robot as { name: string; joints: { name: string; lower: number; upper: number }[] };
    assert.equal(robot.name, 'franka_panda.urdf');
    assert.equal(robot.joints.length, 7);
    assert.deepEqual(hello.start, { x: 0, y: 0, z: 0 });
    assert.equal((hello.obstacles as unknown[]).length, 1);
    const first = await human.next(ofType('state'));
    assert.equal((first.joints as number[]).length, 7);

    // A viewer is connected and the simulation runs: the stream renders at its configured rate.
    const streaming = await sim.getStatus({ instanceId: id });
    assert.equal(streaming.status?.fps, 30);
    assert.ok(streaming.status!.gpuUtilization > 0.2 && streaming.status!.gpuUtilization < 1);

    human.send({ type: 'action', action: [1, 0, 0, 0, 0, 0, 0] });
    const moved = await human.next((f) => f.type === 'state' && (f.joints as number[])[0] !== (first.joints as number[])[0]);
    assert.ok(Math.abs((moved.joints as number[])[0]! - (first.joints as number[])[0]! - 0.1) < 1e-9);
    human.send({ type: 'action', joint: 1, delta: -1 });
    await human.next((f) => f.type === 'state' && Math.abs((f.joints as number[])[1]! - (moved.joints as number[])[1]! + 0.1) < 1e-9);
    human.send({ type: 'action', action: [1, 2] });
    assert.equal((await human.next(ofType('error'))).error, 'BAD_REQUEST');
    assert.equal(agent.stats(id).humanActionsApplied, 2);
    assert.equal(agent.stats(id).demonstrationsRecorded, 0, 'recording was not asked for');

    // Ticks keep coming at ~10 Hz while connected, with the sim clock advancing.
    const tick = await human.next((f) => f.type === 'state' && (f.t as number) > 0);
    assert.ok((tick.t as number) > 0);

    await sim.stopSimulation({ instanceId: id, sessionId: 'manual-1', epoch: 3n });
    human.send({ type: 'action', joint: 0, delta: 1 });
    assert.equal((await human.next(ofType('error'))).error, 'STOPPED');

    const stranger = new ControlClient(`ws://127.0.0.1:${agent.httpPort}/i/${id}/control/not-this-one`);
    const refused = await stranger.closed;
    assert.equal(refused.code, 4404);
    assert.match(refused.reason, /no live session not-this-one/);

    // A newer epoch replaces the session: its viewers are disconnected.
    const replaced = await sim.createSession({ ...req, sessionId: 'manual-2', epoch: 4n, sceneConfig: scene('ur5.urdf') });
    assert.equal((await human.closed).code, 4410);
    assert.equal(agent.stats(id).sessionId, 'manual-2');
    const late = new ControlClient(created.controlWsUrl);
    assert.equal((await late.closed).code, 4404);

    await sim.destroySession({ instanceId: id, sessionId: 'manual-2', epoch: 4n });
    const gone = new ControlClient(replaced.controlWsUrl);
    assert.equal((await gone.closed).code, 4404);
    const status = await sim.getStatus({ instanceId: id });
    assert.deepEqual([status.status?.status, status.sessionId], ['IDLE', '']);
    // A create after the destroy at the destroyed epoch is a replay, not a retry.
    await rejects(sim.createSession({ ...req, sessionId: 'manual-2', epoch: 4n }), 'FAILED_PRECONDITION', 'STALE_EPOCH');
  });

  test('CreateSession validates its request, naming the fields', async () => {
    const base = { instanceId: 'isaac-sim-5', sessionId: 'bad', epoch: 1n, mode: SessionMode.MANUAL };
    for (const robotUrdf of ['', '../franka_panda.urdf', '/etc/passwd', 'no_such_robot.urdf']) {
      const e = await rejects(sim.createSession({ ...base, sceneConfig: { robotUrdf } }), 'INVALID_ARGUMENT');
      assert.equal(e.details.fieldViolations?.[0]?.field, 'scene_config.robot_urdf', robotUrdf);
      assert.match(e.message, /scene_config\.robot_urdf/);
    }
    const shape = await rejects(
      sim.createSession({ ...base, sceneConfig: { robotUrdf: 'ur5.urdf', obstacles: [{ id: 'x', shape: 'cone' }] }, streamConfig: { transport: 'carrier-pigeon' } }),
      'INVALID_ARGUMENT',
    );
    assert.deepEqual(shape.details.fieldViolations?.map((v) => v.field), ['scene_config.obstacles[0].shape', 'stream_config.transport']);
    await rejects(sim.createSession({ ...base, epoch: 0n, sceneConfig: { robotUrdf: 'ur5.urdf' } }), 'INVALID_ARGUMENT');
    // Refused requests do not consume the epoch.
    const created = await sim.createSession({ ...base, sceneConfig: { robotUrdf: 'ur5' } });
    assert.equal(created.success, true);
    await sim.destroySession({ instanceId: 'isaac-sim-5', sessionId: 'bad', epoch: 1n });
  });

  test('TRAINING: env server over ZeroMQ, stale epochs, port conflicts and rebinding after destroy', async () => {
    const id = 'isaac-sim-2';
    const port = await freePort();
    const endpoint = `tcp://127.0.0.1:${port}`;
    await sim.createSession({ instanceId: id, sessionId: 'train-1', epoch: 5n, sceneConfig: scene('two_link_arm.urdf'), mode: SessionMode.TRAINING });
    await rejects(sim.bindEnvServer({ instanceId: id, sessionId: 'train-1', epoch: 4n, zmqEndpoint: endpoint, envs: 2 }), 'FAILED_PRECONDITION', 'STALE_EPOCH');
    await rejects(sim.bindEnvServer({ instanceId: id, sessionId: 'train-1', epoch: 5n, zmqEndpoint: 'udp://nowhere', envs: 2 }), 'INVALID_ARGUMENT');
    const bound = await sim.bindEnvServer({ instanceId: id, sessionId: 'train-1', epoch: 5n, zmqEndpoint: endpoint, envs: 2 });
    assert.equal(bound.zmqEndpoint, endpoint);
    const again = await sim.bindEnvServer({ instanceId: id, sessionId: 'train-1', epoch: 5n, zmqEndpoint: endpoint, envs: 2 });
    assert.equal(again.success, true, 'a repeated bind is idempotent');

    const env = new EnvClient(endpoint);
    const hello = ok(await env.call({ type: 'hello', session_id: 'train-1', epoch: '5' }), 'hello');
    assert.deepEqual([hello.instance_id, hello.obs_dim, hello.act_dim, hello.envs, hello.controller, hello.robot], [id, 11, 2, 2, 'ai', 'two_link_arm.urdf']);
    const reset = ok(await env.call({ type: 'reset', epoch: '5' }), 'reset');
    assert.equal(reset.obs.length, 2);
    assert.equal(reset.obs[0]!.length, 11);

    const stale = await env.call({ type: 'step', epoch: '4', actions: [[0, 0], [0, 0]] });
    assert.deepEqual([stale.ok, !stale.ok && stale.error], [false, 'STALE_EPOCH']);
    const bad = await env.call({ type: 'step', epoch: '5', actions: [[0, 0]] });
    assert.deepEqual([bad.ok, !bad.ok && bad.error], [false, 'BAD_REQUEST']);

    // Hold still until the episodes time out: the step that ends them reports their returns and
    // already carries the next episode's first observation.
    let steps = 0;
    let last = ok(await env.call({ type: 'step', epoch: '5', actions: [[0, 0], [0, 0]] }), 'step');
    for (steps = 1; !last.dones[0] && steps < 100; steps++) {
      assert.deepEqual(last.episode_returns, [null, null]);
      last = ok(await env.call({ type: 'step', epoch: '5', actions: [[0, 0], [0, 0]] }), 'step');
    }
    assert.equal(steps, 50, 'episodes last 50 steps');
    assert.deepEqual(last.dones, [true, true]);
    assert.ok(last.episode_returns.every((r) => typeof r === 'number' && r < 0), `episode returns ${JSON.stringify(last.episode_returns)}`);
    assert.notDeepEqual(last.obs[0], reset.obs[0], 'a fresh episode starts elsewhere');
    assert.equal(agent.stats(id).aiStepsApplied, 50);
    assert.equal(agent.stats(id).aiStepsRefused, 0);

    // A second session cannot bind a port the first one holds.
    await sim.createSession({ instanceId: 'isaac-sim-4', sessionId: 'train-2', epoch: 1n, sceneConfig: scene('two_link_arm.urdf'), mode: SessionMode.TRAINING });
    const conflict = await rejects(sim.bindEnvServer({ instanceId: 'isaac-sim-4', sessionId: 'train-2', epoch: 1n, zmqEndpoint: endpoint, envs: 1 }), 'UNAVAILABLE', 'PORT_IN_USE');
    assert.match(conflict.message, /in use/i);
    // Bound in the create itself: a port in use fails the create and leaves the instance free.
    const inCreate = await rejects(
      sim.createSession({ instanceId: 'isaac-sim-3', sessionId: 'train-3', epoch: 1n, sceneConfig: scene('two_link_arm.urdf'), mode: SessionMode.TRAINING, zmqEndpoint: endpoint, envs: 1 }),
      'UNAVAILABLE',
      'PORT_IN_USE',
    );
    assert.match(inCreate.message, /in use/i);
    assert.equal(agent.stats('isaac-sim-3').sessionId, undefined, 'nothing held after a failed bind');

    ok(await env.call({ type: 'close', epoch: '5' }), 'close');
    const after = await env.call({ type: 'reset', epoch: '5' });
    assert.deepEqual([after.ok, !after.ok && after.error], [false, 'CLOSED']);
    env.close();

    await sim.destroySession({ instanceId: id, sessionId: 'train-1', epoch: 5n, reason: 'done' });
    const twice = await sim.destroySession({ instanceId: id, sessionId: 'train-1', epoch: 5n });
    assert.equal(twice.success, true, 'destroy is idempotent');
    await rejects(sim.startSimulation({ instanceId: id, sessionId: 'train-1', epoch: 5n }), 'NOT_FOUND');

    // The destroyed session's port is free again, right away.
    const rebound = await sim.bindEnvServer({ instanceId: 'isaac-sim-4', sessionId: 'train-2', epoch: 1n, zmqEndpoint: endpoint, envs: 1 });
    assert.equal(rebound.zmqEndpoint, endpoint);
    const env2 = new EnvClient(endpoint);
    assert.equal(ok(await env2.call({ type: 'hello', session_id: 'train-2', epoch: '1' }), 'hello').instance_id, 'isaac-sim-4');
    env2.close();
    await sim.destroySession({ instanceId: 'isaac-sim-4', sessionId: 'train-2', epoch: 1n });
    // The port is released by zeromq's I/O thread just after the close: bounded retries, not a sleep.
    const probe = new Reply({ linger: 0 });
    for (let attempt = 1; ; attempt++) {
      try {
        await probe.bind(endpoint);
        break;
      } catch (e) {
        if (attempt >= 8) throw e;
        await new Promise((r) => setTimeout(r, 25));
      }
    }
    probe.close();
  });

  test('HYBRID: a human takes control, the AI is refused, demonstrations are recorded and control comes back', async () => {
    const id = 'isaac-sim-3';
    const port = await freePort();
    const endpoint = `tcp://127.0.0.1:${port}`;
    const created = await sim.createSession({
      instanceId: id,
      sessionId: 'hybrid-1',
      epoch: 7n,
      sceneConfig: scene('franka_panda.urdf'),
      mode: SessionMode.HYBRID,
      recordDemonstrations: true,
    });
    await sim.bindEnvServer({ instanceId: id, sessionId: 'hybrid-1', epoch: 7n, zmqEndpoint: endpoint, envs: 1 });
    const env = new EnvClient(endpoint);
    ok(await env.call({ type: 'hello', session_id: 'hybrid-1', epoch: '7' }), 'hello');
    ok(await env.call({ type: 'step', epoch: '7', actions: [[0, 0, 0, 0, 0, 0, 0]] }), 'step');

    const bob = new ControlClient(created.controlWsUrl);
    bob.send({ type: 'hello', user: 'bob' });
    await bob.next(ofType('hello'));
    bob.send({ type: 'action', joint: 0, delta: 1 });
    assert.deepEqual(await bob.next(ofType('error')), { type: 'error', error: 'NOT_CONTROLLER', message: 'ai controls this simulator', controller: 'ai' });

    await rejects(sim.setControlSource({ instanceId: id, sessionId: 'hybrid-1', epoch: 6n, controller: 'alice' }), 'FAILED_PRECONDITION', 'STALE_EPOCH');
    const taken = await sim.setControlSource({ instanceId: id, sessionId: 'hybrid-1', epoch: 7n, controller: 'alice' });
    assert.deepEqual([taken.controller, taken.demonstrations], ['alice', 0n]);
    assert.equal((await bob.next(ofType('control'))).controller, 'alice');

    const refused = await env.call({ type: 'step', epoch: '7', actions: [[1, 1, 1, 1, 1, 1, 1]] });
    assert.deepEqual(refused, { ok: false, error: 'HUMAN_CONTROL', message: 'alice controls this simulator', controller: 'alice' });
    assert.equal(agent.stats(id).aiStepsRefused, 1);

    const alice = new ControlClient(created.controlWsUrl);
    alice.send({ type: 'hello', user: 'alice' });
    const before = await alice.next(ofType('state'));
    for (let i = 0; i < 3; i++) {
      alice.send({ type: 'action', joint: 0, delta: 0.5 });
      await alice.next((f) => f.type === 'state' && f.demonstrations === i + 1);
    }
    const driven = await bob.next((f) => f.type === 'state' && f.demonstrations === 3);
    assert.ok(Math.abs((driven.joints as number[])[0]! - (before.joints as number[])[0]! - 0.15) < 1e-9, 'the refused AI action was never applied');
    bob.send({ type: 'action', joint: 0, delta: 1 });
    assert.equal((await bob.next(ofType('error'))).error, 'NOT_CONTROLLER');
    assert.deepEqual(
      [agent.stats(id).humanActionsApplied, agent.stats(id).demonstrationsRecorded, agent.stats(id).controller],
      [3, 3, 'alice'],
    );

    const demos = ok(await env.call({ type: 'demos', epoch: '7', max: 2 }), 'demos');
    assert.deepEqual([demos.controller, demos.transitions.length, demos.remaining], ['alice', 2, 1]);
    const t = demos.transitions[0]!;
    assert.deepEqual(t.action, [0.5, 0, 0, 0, 0, 0, 0]);
    assert.equal(t.obs.length, 16);
    assert.equal(t.next_obs.length, 16);
    assert.ok(t.reward < 0 && t.done === false);
    assert.equal(ok(await env.call({ type: 'demos', epoch: '7' }), 'demos').transitions.length, 1);

    const back = await sim.setControlSource({ instanceId: id, sessionId: 'hybrid-1', epoch: 7n, controller: 'ai' });
    assert.deepEqual([back.controller, back.demonstrations], ['ai', 3n]);
    ok(await env.call({ type: 'step', epoch: '7', actions: [[0, 0, 0, 0, 0, 0, 0]] }), 'step');

    // The controller's WebSocket closing hands control back to the AI by itself.
    await sim.setControlSource({ instanceId: id, sessionId: 'hybrid-1', epoch: 7n, controller: 'alice' });
    await bob.next((f) => f.type === 'control' && f.controller === 'alice');
    alice.close();
    assert.deepEqual(await bob.next(ofType('control')), { type: 'control', controller: 'ai', reason: 'disconnected' });
    assert.equal(agent.stats(id).controller, 'ai');
    ok(await env.call({ type: 'step', epoch: '7', actions: [[0, 0, 0, 0, 0, 0, 0]] }), 'step');

    await sim.destroySession({ instanceId: id, sessionId: 'hybrid-1', epoch: 7n });
    assert.equal((await bob.closed).code, 4410);
    env.close();
  });

  test('HYBRID: an idle human loses control after the timeout', async () => {
    const id = 'isaac-sim-5';
    const created = await sim.createSession({
      instanceId: id,
      sessionId: 'hybrid-idle',
      epoch: 9n,
      sceneConfig: scene('two_link_arm.urdf'),
      mode: SessionMode.HYBRID,
      initialController: 'carol',
      humanIdleTimeoutSeconds: 1,
    });
    assert.equal(agent.stats(id).controller, 'carol');
    const watcher = new ControlClient(created.controlWsUrl);
    watcher.send({ type: 'hello', user: 'dave' });
    assert.equal((await watcher.next(ofType('hello'))).controller, 'carol');
    assert.deepEqual(await watcher.next(ofType('control')), { type: 'control', controller: 'ai', reason: 'idle' });
    assert.equal(agent.stats(id).controller, 'ai');
    await rejects(
      sim.setControlSource({ instanceId: id, sessionId: 'hybrid-idle', epoch: 9n, controller: ' ' }),
      'INVALID_ARGUMENT',
    );
    await sim.destroySession({ instanceId: id, sessionId: 'hybrid-idle', epoch: 9n });
    await watcher.closed;
  });

  test('a killed instance answers UNAVAILABLE and releases its session', async () => {
    const id = 'isaac-sim-4';
    const port = await freePort();
    const endpoint = `tcp://127.0.0.1:${port}`;
    const created = await sim.createSession({ instanceId: id, sessionId: 'doomed', epoch: 20n, sceneConfig: scene('ur5.urdf'), mode: SessionMode.TRAINING });
    await sim.bindEnvServer({ instanceId: id, sessionId: 'doomed', epoch: 20n, zmqEndpoint: endpoint, envs: 1 });
    const viewer = new ControlClient(created.controlWsUrl);
    await viewer.next(ofType('hello'));
    agent.killInstance(id);
    assert.equal((await viewer.closed).code, 4410);
    await rejects(sim.getStatus({ instanceId: id }), 'UNAVAILABLE', 'INSTANCE_DOWN');
    await rejects(sim.createSession({ instanceId: id, sessionId: 'next', epoch: 21n, sceneConfig: scene('ur5.urdf') }), 'UNAVAILABLE', 'INSTANCE_DOWN');
    const dead = new ControlClient(created.controlWsUrl);
    assert.equal((await dead.closed).code, 4404);
    // Its port is released: the env server is gone (binding it again succeeds once teardown finishes).
    const probe = new Reply({ linger: 0 });
    for (let attempt = 0; ; attempt++) {
      try {
        await probe.bind(endpoint);
        break;
      } catch (e) {
        if (attempt > 50) throw e;
        await new Promise((r) => setImmediate(r));
      }
    }
    probe.close();
  });
});

test('an agent hosts 10,000 instances and creates sessions quickly', async () => {
  const agent = await startSimAgent({ neuroAddress: '127.0.0.1:1', count: 10_000, registerWithNeuro: false, logger: pino({ level: 'silent' }) });
  const sim = createClient(IsaacSimService, agent.grpcAddress);
  try {
    assert.equal(agent.instanceIds.length, 10_000);
    assert.equal(agent.instanceIds[9_999], 'isaac-sim-10000');
    const started = performance.now();
    const n = 1000;
    await Promise.all(
      Array.from({ length: n }, (_, i) =>
        sim.createSession({ instanceId: `isaac-sim-${i + 1}`, sessionId: `bench-${i}`, epoch: 1n, sceneConfig: { robotUrdf: 'franka_panda.urdf' }, mode: SessionMode.MANUAL }),
      ),
    );
    await Promise.all(Array.from({ length: n }, (_, i) => sim.destroySession({ instanceId: `isaac-sim-${i + 1}`, sessionId: `bench-${i}`, epoch: 1n })));
    const seconds = (performance.now() - started) / 1000;
    assert.ok(seconds < 10, `${2 * n} calls took ${seconds.toFixed(2)} s`);
  } finally {
    sim.close();
    await agent.stop();
  }
});
