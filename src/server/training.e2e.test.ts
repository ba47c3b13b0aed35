/**
 * TRAINING sessions end to end: real Neuro, simulator and trainer agent processes, real gRPC and
 * ZeroMQ. The seed's example verbatim; a run that learns and completes and leaves the pool as it found
 * it; concurrent creates that together exceed the pool; and the faults: a simulator dies, the trainer
 * dies, a terminate mid-run, Neuro killed with -9 mid-run.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fromJson, toJson } from '@bufbuild/protobuf';
import { Reply } from 'zeromq';
import { CreateTrainingSessionRequestSchema, CreateTrainingSessionResponseSchema, SessionState, type Session } from '../gen/neuro/v1/neuro_orchestrator_pb.js';
import { SessionMode, TrainingStatus } from '../gen/neuro/v1/common_pb.js';
import type { NeuroError } from '../core/errors.js';
import { seedJson } from '../testing/seed.js';
import { client, freePort, poolUntil, startNeuro, startSimAgent, startTrainerAgent, tempDir, type AgentProc, type Api, type NeuroProc, refused } from '../testing/processes.js';

function training(id: string, sims: number, episodes: number, over: Record<string, unknown> = {}) {
  return {
    sessionId: id,
    mode: SessionMode.TRAINING,
    sceneConfig: { robotUrdf: 'two_link_arm.urdf' },
    trainingConfig: { algorithm: 'PPO', totalEpisodes: episodes, parallelEnvs: sims * 2, hyperparameters: { learning_rate: '0.003', gamma: '0.99', clip_range: '0.2' } },
    resourceRequirements: { trainingGpus: 4, trainingMemoryGb: 32, isaacSimInstances: sims },
    ...over,
  };
}


/** Follows WatchSession until `pred` holds for the session (or it ends), returning every session seen. */
async function watchUntil(api: Api, id: string, pred: (s: Session) => boolean, timeoutMs = 120_000): Promise<Session[]> {
  const seen: Session[] = [];
  const stream = api.watchSession({ sessionId: id });
  const t = setTimeout(() => stream.cancel(), timeoutMs);
  try {
    for await (const m of stream) {
      seen.push(m.session!);
      if (pred(m.session!)) return seen;
    }
  } finally {
    clearTimeout(t);
    stream.cancel();
  }
  const last = seen.at(-1);
  if (last && pred(last)) return seen;
  throw new Error(`session ${id} never reached the state; last ${last ? SessionState[last.state] : 'none'} ${last?.failureReason ?? ''}`);
}

const ended = (s: Session) => s.state === SessionState.COMPLETED || s.state === SessionState.FAILED || s.state === SessionState.TERMINATED;

describe('TRAINING sessions over real gRPC and ZeroMQ', () => {
  let neuro: NeuroProc;
  let sims: AgentProc;
  let trainers: AgentProc;
  let api: Api;
  let dataDir: string;
  let grpcPort: number;

  before(async () => {
    dataDir = tempDir();
    grpcPort = await freePort();
    neuro = await startNeuro({ dataDir, grpcPort });
    [sims, trainers] = await Promise.all([startSimAgent(neuro.address, 8, ['--zmq-port-base', String(21000)]), startTrainerAgent(neuro.address, 3)]);
    api = client(neuro.address);
    await poolUntil(api, (s, t) => s.idleInstances === 8 && t.idleInstances === 3);
  });

  after(async () => {
    api?.close();
    await Promise.all([sims?.kill('SIGKILL'), trainers?.kill('SIGKILL')]);
    await neuro?.kill('SIGKILL');
  });

  it('answers the seed CreateTrainingSession example verbatim', async () => {
    const req = fromJson(CreateTrainingSessionRequestSchema, seedJson('create_training_session_request') as never);
    const res = await api.createTrainingSession(req);
    const json = toJson(CreateTrainingSessionResponseSchema, res, { useProtoFieldName: true }) as Record<string, unknown>;
    assert.equal(json.success, true);
    assert.equal(json.message, 'Training session created');
    assert.equal(json.session_id, 'training-session-456');
    assert.match(String(json.training_instance_id), /^training-\d$/);
    const ids = json.isaac_instance_ids as string[];
    assert.equal(ids.length, 4);
    const channels = json.zmq_channels as Record<string, string>[];
    assert.deepEqual(channels.map((c) => c.isaac_instance_id), ids);
    for (const c of channels) {
      assert.match(c.zmq_endpoint!, /^tcp:\/\/127\.0\.0\.1:\d+$/);
      assert.equal(c.protocol, 'REQ-REP');
    }
    assert.ok(['INITIALIZING', 'RUNNING'].includes(String(json.training_status)), String(json.training_status));
    const running = await watchUntil(api, 'training-session-456', (s) => s.state === SessionState.RUNNING || ended(s));
    assert.equal(running.at(-1)!.state, SessionState.RUNNING, running.at(-1)!.failureReason);
    const pool = await api.getResourcePoolStatus({ includeIsaacPool: true, includeTrainingPool: true });
    const trainer = pool.trainingPool!.instances.find((i) => i.instanceId === res.trainingInstanceId)!;
    assert.deepEqual([...trainer.pairedInstances].sort(), [...ids].sort());
    for (const id of ids) assert.equal(pool.isaacPool!.instances.find((i) => i.instanceId === id)!.pairedWith, res.trainingInstanceId);
    await api.terminateSession({ sessionId: 'training-session-456' });
    await poolUntil(api, (s, t) => s.idleInstances === 8 && t.idleInstances === 3);
  });

  it('learns over real ZeroMQ to COMPLETED, the reward rising, and leaves the pool as it found it', async () => {
    const res = await api.createTrainingSession(training('learn', 2, 300));
    assert.equal(res.trainingStatus === TrainingStatus.INITIALIZING || res.trainingStatus === TrainingStatus.RUNNING, true);
    const seen = await watchUntil(api, 'learn', ended, 240_000);
    const last = seen.at(-1)!;
    assert.equal(last.state, SessionState.COMPLETED, last.failureReason);
    assert.equal(last.trainingStatus, TrainingStatus.COMPLETED);
    const final = (await api.getSession({ sessionId: 'learn' })).session!;
    const p = final.progress!;
    assert.ok(Number(p.episodesDone) >= 300);
    assert.ok(p.envStepsPerSecond > 0);
    assert.ok(p.meanReward > p.firstMeanReward, `reward ${p.firstMeanReward} → ${p.meanReward} did not improve`);
    assert.ok(seen.some((s) => s.state === SessionState.RUNNING), 'went through RUNNING');
    await poolUntil(api, (s, t) => s.idleInstances === 8 && t.idleInstances === 3);
  });

  it('gang-allocates all or nothing under concurrent creates that exceed the pool', async () => {
    const results = await Promise.allSettled([0, 1, 2].map((k) => api.createTrainingSession(training(`race-${k}`, 4, 100000))));
    const ok = results.filter((r): r is PromiseFulfilledResult<Awaited<ReturnType<Api['createTrainingSession']>>> => r.status === 'fulfilled');
    const bad = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    assert.equal(ok.length, 2, 'two gangs of 4 fit in 8 simulators');
    assert.equal(bad.length, 1);
    assert.equal((bad[0]!.reason as NeuroError).code, 'RESOURCE_EXHAUSTED');
    assert.match((bad[0]!.reason as NeuroError).message, /need 4 idle simulators, 0 idle/);
    const pool = await api.getResourcePoolStatus({ includeIsaacPool: true, includeTrainingPool: true });
    assert.equal(pool.isaacPool!.runningInstances, 8);
    assert.equal(pool.trainingPool!.runningInstances, 2, 'the refused create holds no trainer');
    const endpoints = ok.flatMap((r) => r.value.zmqChannels.map((c) => c.zmqEndpoint));
    assert.equal(new Set(endpoints).size, 8, 'no port twice');
    for (const r of ok) await api.terminateSession({ sessionId: r.value.sessionId });
    await poolUntil(api, (s, t) => s.idleInstances === 8 && t.idleInstances === 3);
  });

  it('refuses bad training input, naming the field', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ trainingConfig: { algorithm: 'DQN', totalEpisodes: 10, parallelEnvs: 2, hyperparameters: {} } }, 'training_config.algorithm'],
      [{ trainingConfig: { algorithm: 'PPO', totalEpisodes: 10, parallelEnvs: 3, hyperparameters: {} } }, 'training_config.parallel_envs'],
      [{ trainingConfig: { algorithm: 'PPO', totalEpisodes: 10, parallelEnvs: 2, hyperparameters: { learning_rate: 'fast' } } }, 'training_config.hyperparameters.learning_rate'],
      [{ mode: SessionMode.MANUAL }, 'mode'],
    ];
    for (const [over, field] of cases) {
      const err = await refused(api.createTrainingSession(training('bad', 2, 10, over)));
      assert.equal(err.code, 'INVALID_ARGUMENT', field);
      assert.ok(err.details.fieldViolations?.some((v) => v.field === field), `${field}: ${err.message}`);
    }
    const big = await refused(api.createTrainingSession(training('big', 2, 10, { resourceRequirements: { trainingGpus: 8, trainingMemoryGb: 32, isaacSimInstances: 2 } })));
    assert.equal(big.code, 'RESOURCE_EXHAUSTED');
    assert.match(big.message, /need a trainer with 8 GPUs and 32 GB, largest idle has 4 GPUs/);
  });

  it('stops both sides on a terminate mid-run', async () => {
    await api.createTrainingSession(training('stop-mid', 2, 100000));
    await watchUntil(api, 'stop-mid', (s) => s.state === SessionState.RUNNING && !!s.progress && s.progress.episodesDone > 0n);
    const t = await api.terminateSession({ sessionId: 'stop-mid' });
    assert.equal(t.state, SessionState.TERMINATED);
    await poolUntil(api, (s, tr) => s.idleInstances === 8 && tr.idleInstances === 3);
  });

  it('keeps a running session running across kill -9 of Neuro, its progress continuing', async () => {
    await api.createTrainingSession(training('survivor', 2, 100000));
    const before = await watchUntil(api, 'survivor', (s) => s.state === SessionState.RUNNING && !!s.progress && s.progress.episodesDone > 0n);
    const episodes = before.at(-1)!.progress!.episodesDone;
    await neuro.kill('SIGKILL');
    neuro = await startNeuro({ dataDir, grpcPort });
    api.close();
    api = client(neuro.address);
    const s = (await api.getSession({ sessionId: 'survivor' })).session!;
    assert.equal(s.state, SessionState.RUNNING);
    const later = await watchUntil(api, 'survivor', (x) => !!x.progress && x.progress.episodesDone > episodes + 5n);
    assert.equal(later.at(-1)!.state, SessionState.RUNNING);
    await api.terminateSession({ sessionId: 'survivor' });
    await poolUntil(api, (p, t) => p.idleInstances === 8 && t.idleInstances === 3);
  });

  it('creates again on another port when a simulator finds its ZeroMQ port taken', async () => {
    const extra = await startSimAgent(neuro.address, 1, ['--id-prefix', 'portless-', '--zmq-port-base', '22100']);
    const squatter = new Reply({ linger: 0 });
    await squatter.bind('tcp://127.0.0.1:22100');
    try {
      await poolUntil(api, (s) => s.idleInstances === 9);
      const others = Array.from({ length: 8 }, (_, k) => `isaac-sim-${k + 1}`);
      for (const id of others) await api.drainInstance({ instanceId: id });
      const res = await api.createTrainingSession(training('port-taken', 1, 100000));
      for (const id of others) await api.undrainInstance({ instanceId: id });
      assert.deepEqual(res.isaacInstanceIds, ['portless-1']);
      assert.equal(res.zmqChannels[0]!.zmqEndpoint, 'tcp://127.0.0.1:22101', 'the taken port was skipped');
      await watchUntil(api, 'port-taken', (s) => s.state === SessionState.RUNNING);
      await api.terminateSession({ sessionId: 'port-taken' });
    } finally {
      squatter.close();
      // A graceful stop deregisters: the instance leaves the pool.
      await extra.kill('SIGTERM');
    }
    await poolUntil(api, (s, t) => s.idleInstances === 8 && t.idleInstances === 3 && s.totalInstances === 8);
  });

  it('fails the session when a simulator dies mid-run, stopping the trainer and releasing the rest', async () => {
    const doomed = await startSimAgent(neuro.address, 2, ['--id-prefix', 'doomed-', '--zmq-port-base', '22000', '--host-label', 'doomed-host']);
    await poolUntil(api, (s) => s.idleInstances === 10);
    // Only the doomed simulators match: drain the rest for this create.
    const others = Array.from({ length: 8 }, (_, k) => `isaac-sim-${k + 1}`);
    for (const id of others) await api.drainInstance({ instanceId: id });
    await api.createTrainingSession(training('sim-dies', 2, 100000));
    for (const id of others) await api.undrainInstance({ instanceId: id });
    const r = await watchUntil(api, 'sim-dies', (s) => s.state === SessionState.RUNNING && !!s.progress && s.progress.episodesDone > 0n);
    const trainer = r.at(-1)!.trainingInstanceId;
    await doomed.kill('SIGKILL');
    const seen = await watchUntil(api, 'sim-dies', ended);
    const last = seen.at(-1)!;
    assert.equal(last.state, SessionState.FAILED);
    assert.match(last.failureReason, /doomed-/);
    const pool = await poolUntil(api, (s, t) => t.idleInstances === 3 && s.unhealthyInstances === 2);
    assert.equal(pool.trainers.runningInstances, 0, `trainer ${trainer} released`);
    const status = await api.getResourcePoolStatus({ includeTrainingPool: true });
    assert.equal(status.trainingPool!.instances.find((i) => i.instanceId === trainer)!.status, 'idle');
  });

  it('fails the session when the trainer dies, releasing the simulators', async () => {
    const lone = await startTrainerAgent(neuro.address, 1, ['--id-prefix', 'lone-trainer-', '--gpus', '8']);
    await poolUntil(api, (_s, t) => t.idleInstances === 4);
    await api.createTrainingSession(training('trainer-dies', 2, 100000, { resourceRequirements: { trainingGpus: 8, trainingMemoryGb: 32, isaacSimInstances: 2 } }));
    await watchUntil(api, 'trainer-dies', (s) => s.state === SessionState.RUNNING);
    await lone.kill('SIGKILL');
    const last = (await watchUntil(api, 'trainer-dies', ended)).at(-1)!;
    assert.equal(last.state, SessionState.FAILED);
    assert.match(last.failureReason, /lone-trainer-1/);
    await poolUntil(api, (s, t) => s.idleInstances === 8 && t.idleInstances === 3);
  });
});
