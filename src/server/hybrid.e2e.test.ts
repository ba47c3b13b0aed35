/**
 * HYBRID sessions end to end over real gRPC, ZeroMQ and WebSocket: a Neuro process, and the reference
 * agents in this process (so the test can read what each side applied and received). A human takes a
 * simulator over, drives it, hands it back; a second taker is refused; an idle or departed human loses
 * control by itself; control survives a kill -9 of Neuro.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import pino from 'pino';
import { SessionState, type Session, type SessionEvent } from '../gen/neuro/v1/neuro_orchestrator_pb.js';
import { SessionMode } from '../gen/neuro/v1/common_pb.js';
import { startSimAgent, type SimAgent } from '../agents/sim/index.js';
import { startTrainerAgent, type TrainerAgent } from '../agents/trainer/index.js';
import { client, freePort, poolUntil, startNeuro, tempDir, type Api, type NeuroProc, refused } from '../testing/processes.js';

const quiet = pino({ level: 'silent' });

function hybrid(id: string, sims: number, idleSeconds = 60) {
  return {
    sessionId: id,
    mode: SessionMode.HYBRID,
    sceneConfig: { robotUrdf: 'two_link_arm.urdf' },
    trainingConfig: { algorithm: 'PPO', totalEpisodes: 1_000_000, parallelEnvs: sims, hyperparameters: { learning_rate: '0.001' } },
    resourceRequirements: { trainingGpus: 4, trainingMemoryGb: 32, isaacSimInstances: sims },
    hybridConfig: { initialController: 'ai', recordDemonstrations: true, humanIdleTimeoutSeconds: idleSeconds, allowForceTakeover: false },
    streamConfig: { width: 640, height: 480, fps: 30, transport: 'webrtc' },
  };
}


/** Follows the session's events until `pred` matches one; resolves with it. */
function nextEvent(api: Api, id: string, pred: (e: SessionEvent, s: Session) => boolean, timeoutMs = 30_000): Promise<{ e: SessionEvent; s: Session }> {
  const stream = api.watchSession({ sessionId: id });
  return (async () => {
    const t = setTimeout(() => stream.cancel(), timeoutMs);
    try {
      for await (const m of stream) if (m.event && pred(m.event, m.session!)) return { e: m.event, s: m.session! };
    } finally {
      clearTimeout(t);
      stream.cancel();
    }
    throw new Error(`no matching event on ${id} within ${timeoutMs} ms`);
  })();
}

/** A control WebSocket client that identified as `user`; resolves once the hello arrived. */
async function controlSocket(url: string, user: string): Promise<{ ws: WebSocket; frames: Record<string, unknown>[]; next: (type: string) => Promise<Record<string, unknown>> }> {
  const ws = new WebSocket(url);
  const frames: Record<string, unknown>[] = [];
  const waiters: { type: string; resolve: (f: Record<string, unknown>) => void }[] = [];
  ws.on('message', (d) => {
    const f = JSON.parse(String(d)) as Record<string, unknown>;
    frames.push(f);
    for (const w of [...waiters]) if (w.type === f.type) (waiters.splice(waiters.indexOf(w), 1), w.resolve(f));
  });
  const next = (type: string) => new Promise<Record<string, unknown>>((resolve) => waiters.push({ type, resolve }));
  const hello = next('hello');
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  ws.send(JSON.stringify({ type: 'hello', user }));
  await hello;
  return { ws, frames, next };
}

describe('HYBRID sessions', () => {
  let neuro: NeuroProc;
  let sims: SimAgent;
  let trainers: TrainerAgent;
  let api: Api;
  let dataDir: string;
  let grpcPort: number;
  const received: { isaacInstanceId: string; action: number[]; obs: number[] }[] = [];

  before(async () => {
    dataDir = tempDir();
    grpcPort = await freePort();
    neuro = await startNeuro({ dataDir, grpcPort });
    sims = await startSimAgent({ neuroAddress: neuro.address, count: 4, zmqPortBase: 24000, heartbeatIntervalMs: 200, logger: quiet });
    trainers = await startTrainerAgent({
      neuroAddress: neuro.address,
      count: 2,
      heartbeatIntervalMs: 200,
      progressIntervalMs: 200,
      logger: quiet,
      onDemonstrations: (d) => received.push(...d.transitions.map((t) => ({ isaacInstanceId: d.isaacInstanceId, action: t.action, obs: t.obs }))),
    });
    api = client(neuro.address);
    await poolUntil(api, (s, t) => s.idleInstances === 4 && t.idleInstances === 2);
  });

  after(async () => {
    api?.close();
    await sims?.stop();
    await trainers?.stop();
    await neuro?.kill('SIGKILL');
  });

  it('lets a human take a simulator over, records demonstrations for the learner, and hands it back', async () => {
    const res = await api.createHybridSession(hybrid('h1', 2));
    assert.equal(res.simulatorEndpoints.length, 2);
    for (const e of res.simulatorEndpoints) {
      assert.match(e.controlWsUrl, /\/control\/h1$/);
      assert.equal(e.webrtcSignalingUrl, 'ws://nexus:8080/api/webrtc/signaling/isaac-sim/h1');
    }
    await nextEvent(api, 'h1', (_e, s) => s.state === SessionState.RUNNING && !!s.progress && s.progress.envSteps > 0n);
    const sim = res.isaacInstanceIds[0]!;
    const trainer = res.trainingInstanceId;
    const url = res.simulatorEndpoints[0]!.controlWsUrl;
    const aiBefore = sims.stats(sim).aiStepsApplied;
    assert.ok(aiBefore > 0, 'the AI drives at first');

    const sock = await controlSocket(url, 'alice');
    const controlEvent = nextEvent(api, 'h1', (e) => e.type === 'control' && e.controller === 'alice');
    const t0 = performance.now();
    const taken = await api.takeControl({ sessionId: 'h1', isaacInstanceId: sim, user: 'alice' });
    assert.equal(taken.controller, 'alice');
    const aiAtTake = sims.stats(sim).aiStepsApplied;
    const sent: number[][] = [[1, 0]];
    const applied = sock.next('state');
    sock.ws.send(JSON.stringify({ type: 'action', action: [1, 0] }));
    await applied;
    const takeoverMs = performance.now() - t0;
    const { e } = await controlEvent;
    assert.ok(e.time && e.message.includes('alice'), 'the event says who and when');
    assert.equal(trainers.stats(trainer).pausedEnvs.includes(sim), true, 'the trainer was told');

    const second = await refused(api.takeControl({ sessionId: 'h1', isaacInstanceId: sim, user: 'bob' }));
    assert.equal(second.code, 'FAILED_PRECONDITION');
    assert.match(second.message, /alice/);
    const forced = await refused(api.takeControl({ sessionId: 'h1', isaacInstanceId: sim, user: 'bob', force: true }));
    assert.equal(forced.code, 'PERMISSION_DENIED', 'force is not allowed by this session');

    for (let k = 0; k < 29; k++) {
      const st = sock.next('state');
      sent.push([k % 2 ? 1 : -1, 0.5]);
      sock.ws.send(JSON.stringify({ type: 'action', action: sent.at(-1) }));
      await st;
    }
    assert.equal(sims.stats(sim).demonstrationsRecorded, 30);
    // The learner gets all 30, counted per simulator in the progress Neuro reports.
    const { s } = await nextEvent(api, 'h1', (ev) => ev.type === 'progress' && (ev.progress?.demonstrations[sim] ?? 0n) >= 30n);
    assert.equal(s.progress!.demonstrations[sim], 30n);
    assert.equal(trainers.stats(trainer).demonstrationsReceived[sim], 30);
    const mine = received.filter((r) => r.isaacInstanceId === sim);
    assert.deepEqual(mine.map((r) => r.action), sent, 'the learner got exactly the actions the human sent, in order');
    assert.ok(mine.every((r) => r.obs.length > 0 && r.obs.every(Number.isFinite)));
    assert.equal(sims.stats(sim).aiStepsApplied, aiAtTake, "the AI's actions were not applied while the human held control");

    const released = await api.releaseControl({ sessionId: 'h1', isaacInstanceId: sim, user: 'alice' });
    assert.equal(released.controller, 'ai');
    await nextEvent(api, 'h1', (ev) => ev.type === 'progress' && sims.stats(sim).aiStepsApplied > aiAtTake + 5);
    assert.ok(sims.stats(sim).aiStepsApplied > aiAtTake, 'the AI drives again');
    assert.equal(trainers.stats(trainer).pausedEnvs.includes(sim), false);
    sock.ws.close();
    const got = (await api.getSession({ sessionId: 'h1' })).session!;
    assert.deepEqual(
      got.events.filter((x) => x.type === 'control').map((x) => x.controller),
      ['alice', 'ai'],
    );
    process.stdout.write(`# take-over latency (TakeControl RPC to first human action applied): ${takeoverMs.toFixed(1)} ms\n`);
    await api.terminateSession({ sessionId: 'h1' });
  });

  it('returns control to the AI when the human goes idle or disconnects', async () => {
    const res = await api.createHybridSession(hybrid('h2', 2, 1));
    await nextEvent(api, 'h2', (_e, s) => s.state === SessionState.RUNNING);
    const [a, b] = res.isaacInstanceIds as [string, string];
    const idle = nextEvent(api, 'h2', (e) => e.type === 'control' && e.isaacInstanceId === a && e.controller === 'ai');
    await api.takeControl({ sessionId: 'h2', isaacInstanceId: a, user: 'carol' });
    const { e } = await idle;
    assert.match(e.message, /idle/);
    const sock = await controlSocket(res.simulatorEndpoints[1]!.controlWsUrl, 'dave');
    await api.takeControl({ sessionId: 'h2', isaacInstanceId: b, user: 'dave' });
    const gone = nextEvent(api, 'h2', (x) => x.type === 'control' && x.isaacInstanceId === b && x.controller === 'ai');
    sock.ws.close();
    assert.match((await gone).e.message, /disconnected/);
    await api.terminateSession({ sessionId: 'h2' });
  });

  it('keeps who holds control across kill -9 of Neuro', async () => {
    const res = await api.createHybridSession(hybrid('h3', 1));
    await nextEvent(api, 'h3', (_e, s) => s.state === SessionState.RUNNING);
    const sim = res.isaacInstanceIds[0]!;
    await api.takeControl({ sessionId: 'h3', isaacInstanceId: sim, user: 'erin' });
    await neuro.kill('SIGKILL');
    neuro = await startNeuro({ dataDir, grpcPort });
    api.close();
    api = client(neuro.address);
    const s = (await api.getSession({ sessionId: 'h3' })).session!;
    assert.equal(s.state, SessionState.RUNNING);
    assert.equal(s.controllers.find((c) => c.isaacInstanceId === sim)?.controller, 'erin');
    await poolUntil(api, (p, t) => p.joiningInstances === 0 && t.joiningInstances === 0);
    await api.releaseControl({ sessionId: 'h3', isaacInstanceId: sim, user: 'erin' });
    await api.terminateSession({ sessionId: 'h3' });
  });

  it('answers FAILED_PRECONDITION to control RPCs on MANUAL and TRAINING sessions', async () => {
    const m = await api.createSession({ sessionId: 'm1', mode: SessionMode.MANUAL, sceneConfig: { robotUrdf: 'two_link_arm.urdf' } });
    assert.equal((await refused(api.takeControl({ sessionId: 'm1', isaacInstanceId: m.instanceId, user: 'x' }))).code, 'FAILED_PRECONDITION');
    assert.equal((await refused(api.releaseControl({ sessionId: 'm1', isaacInstanceId: m.instanceId, user: 'x' }))).code, 'FAILED_PRECONDITION');
    await api.terminateSession({ sessionId: 'm1' });
  });

  it('ends a human\'s control with an event when the simulator dies', async () => {
    const res = await api.createHybridSession(hybrid('h4', 1));
    await nextEvent(api, 'h4', (_e, s) => s.state === SessionState.RUNNING);
    const sim = res.isaacInstanceIds[0]!;
    await api.takeControl({ sessionId: 'h4', isaacInstanceId: sim, user: 'frank' });
    const ended = nextEvent(api, 'h4', (e) => e.type === 'control' && e.controller === 'ai');
    sims.killInstance(sim);
    const { e, s } = await ended;
    assert.match(e.message, new RegExp(`control of ${sim} by frank ended: instance ${sim} missed heartbeats`));
    assert.equal(s.state, SessionState.FAILED);
  });
});
