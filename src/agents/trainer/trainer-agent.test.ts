import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter, once } from 'node:events';
import { Reply } from 'zeromq';
import { pino } from 'pino';
import { NeuroError } from '../../core/errors.js';
import { SessionMode, TrainingStatus } from '../../gen/neuro/v1/common_pb.js';
import {
  InstanceKind,
  InstanceRegistryService,
  type HeartbeatRequest,
  type InstanceSpec,
  type ReportProgressRequest,
} from '../../gen/neuro/v1/registry_pb.js';
import { TrainingService } from '../../gen/training/v1/training_pb.js';
import { addService, createClient, type BidiStream, type ClientOf } from '../../rpc/grpc-adapter.js';
import * as grpc from '@grpc/grpc-js';
import { decode, encode, type EnvReply, type EnvRequest, type Transition } from '../common/env-protocol.js';
import { DEFAULT_ASSETS_DIR, ReachEnv, loadRobot } from '../env/index.js';
import { startTrainerAgent, type TrainerAgent, type TrainerProgressReport } from './index.js';

const SEED_HYPERPARAMETERS = { learning_rate: '0.0003', gamma: '0.99', clip_range: '0.2' };
const ROBOT = loadRobot(DEFAULT_ASSETS_DIR, 'two_link_arm.urdf');

/**
 * The simulator's side of a channel, as small as it can be: a real ZeroMQ REP socket serving the
 * env protocol with ReachEnv copies. `human` makes it refuse steps as a simulator held by a person
 * does; `freeze()` makes it stop answering, like a simulator that died mid-request.
 */
class TestSim extends EventEmitter {
  readonly socket = new Reply({ linger: 0 });
  endpoint = '';
  readonly counts: Record<EnvRequest['type'], number> = { hello: 0, reset: 0, step: 0, demos: 0, close: 0 };
  human: string | undefined;
  readonly demos: Transition[] = [];
  private envs: ReachEnv[];
  private returns: number[];
  private epoch = '';
  private frozen = false;
  private thaw?: () => void;

  constructor(
    readonly id: string,
    envCount = 2,
  ) {
    super();
    this.envs = Array.from({ length: envCount }, (_, i) => new ReachEnv(ROBOT, { obstacles: [], start: { x: 0, y: 0, z: 0 } }, i + 1));
    this.returns = this.envs.map(() => 0);
  }

  async start(): Promise<this> {
    await this.socket.bind('tcp://127.0.0.1:*');
    this.endpoint = this.socket.lastEndpoint!;
    void this.serve();
    return this;
  }

  freeze(): void {
    this.frozen = true;
  }

  /** Transitions shaped like the env's (what a human driving it would record). */
  record(n: number): void {
    const env = this.envs[0]!;
    for (let i = 0; i < n; i++) {
      const obs = env.reset();
      const action = [0.5, -0.5];
      const r = env.step(action);
      this.demos.push({ obs, action, reward: r.reward, done: r.done, next_obs: r.obs });
    }
  }

  /** Resolves on the next request of `type` (or when `pred` holds for one). */
  next(type: EnvRequest['type'], pred: () => boolean = () => true): Promise<void> {
    return new Promise((resolve) => {
      const on = (t: string) => {
        if (t !== type || !pred()) return;
        this.off('request', on);
        resolve();
      };
      this.on('request', on);
    });
  }

  close(): void {
    this.thaw?.();
    this.socket.close();
  }

  private async serve(): Promise<void> {
    try {
      for await (const [msg] of this.socket) {
        const req = decode<EnvRequest>(msg!);
        if (this.frozen) {
          await new Promise<void>((r) => (this.thaw = r));
          return;
        }
        const reply = this.handle(req);
        await this.socket.send(encode(reply));
        this.counts[req.type]++;
        this.emit('request', req.type);
      }
    } catch {
      // Closed by the test.
    }
  }

  private handle(req: EnvRequest): EnvReply {
    if (req.type === 'hello') this.epoch = req.epoch;
    else if (req.epoch !== this.epoch) return { ok: false, error: 'STALE_EPOCH', message: `epoch ${req.epoch}` };
    const controller = this.human ?? 'ai';
    switch (req.type) {
      case 'hello':
        return { ok: true, type: 'hello', instance_id: this.id, obs_dim: this.envs[0]!.obsDim, act_dim: this.envs[0]!.actDim, envs: this.envs.length, controller, robot: ROBOT.name };
      case 'reset':
        this.returns = this.envs.map(() => 0);
        return { ok: true, type: 'reset', obs: this.envs.map((e) => e.reset()) };
      case 'step': {
        if (this.human) return { ok: false, error: 'HUMAN_CONTROL', message: `${this.human} controls this simulator`, controller: this.human };
        const out = { obs: [] as number[][], rewards: [] as number[], dones: [] as boolean[], episode_returns: [] as (number | null)[] };
        this.envs.forEach((e, i) => {
          if (e.done || e.episode === 0) e.reset();
          const r = e.step(req.actions[i]!);
          this.returns[i]! += r.reward;
          out.rewards.push(r.reward);
          out.dones.push(r.done);
          out.episode_returns.push(r.done ? this.returns[i]! : null);
          if (r.done) this.returns[i] = 0;
          out.obs.push(r.done ? e.reset() : r.obs);
        });
        return { ok: true, type: 'step', ...out };
      }
      case 'demos': {
        const transitions = this.demos.splice(0, req.max ?? this.demos.length);
        return { ok: true, type: 'demos', controller, transitions, remaining: this.demos.length };
      }
      case 'close':
        return { ok: true, type: 'close' };
    }
  }
}

/** Collects an agent's progress reports and lets a test await the one it needs. */
class Reports extends EventEmitter {
  readonly all: TrainerProgressReport[] = [];

  readonly add = (r: TrainerProgressReport): void => {
    this.all.push(r);
    this.emit('report', r);
  };

  /** The first report (past or future) of `sessionId` satisfying `pred`. */
  waitFor(sessionId: string, pred: (r: TrainerProgressReport) => boolean, what: string, timeoutMs = 15_000): Promise<TrainerProgressReport> {
    const hit = this.all.find((r) => r.sessionId === sessionId && pred(r));
    if (hit) return Promise.resolve(hit);
    return new Promise((resolve, reject) => {
      // A guard against a hang, not synchronisation: the report is awaited as an event.
      const timer = setTimeout(() => {
        this.off('report', on);
        reject(new Error(`no report of ${sessionId} where ${what} within ${timeoutMs} ms`));
      }, timeoutMs);
      const on = (r: TrainerProgressReport) => {
        if (r.sessionId !== sessionId || !pred(r)) return;
        clearTimeout(timer);
        this.off('report', on);
        resolve(r);
      };
      this.on('report', on);
    });
  }

  /** Resolves after `n` more reports of `sessionId`: a clock driven by the agent itself. */
  async skip(sessionId: string, n: number): Promise<void> {
    for (let i = 0; i < n; ) {
      const [r] = (await once(this, 'report')) as [TrainerProgressReport];
      if (r.sessionId === sessionId) i++;
    }
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
  assert.fail(`expected ${code}${reason ? ` ${reason}` : ''}`);
}

const channelOf = (r: TrainerProgressReport, id: string) => r.progress.channels.find((c) => c.isaacInstanceId === id);

describe('trainer agent', () => {
  let agent: TrainerAgent;
  let client: ClientOf<typeof TrainingService>;
  const reports = new Reports();
  const sims: TestSim[] = [];
  let nextEpoch = 1n;

  const sim = async (id: string, envs = 2) => {
    const s = await new TestSim(id, envs).start();
    sims.push(s);
    return s;
  };
  const start = (instanceId: string, sessionId: string, channels: TestSim[], extra: { totalEpisodes?: number; mode?: SessionMode; epoch?: bigint; hyperparameters?: Record<string, string>; algorithm?: string } = {}) => {
    const epoch = extra.epoch ?? nextEpoch++;
    return client
      .startTraining({
        instanceId,
        sessionId,
        epoch,
        trainingConfig: { algorithm: extra.algorithm ?? 'PPO', totalEpisodes: extra.totalEpisodes ?? 0, parallelEnvs: channels.length * 2, hyperparameters: extra.hyperparameters ?? SEED_HYPERPARAMETERS },
        channels: channels.map((s) => ({ isaacInstanceId: s.id, zmqEndpoint: s.endpoint, protocol: 'REQ-REP' })),
        reportAddress: '',
        mode: extra.mode ?? SessionMode.TRAINING,
      })
      .then((res) => ({ res, epoch }));
  };

  before(async () => {
    agent = await startTrainerAgent({
      neuroAddress: '127.0.0.1:1',
      registerWithNeuro: false,
      count: 8,
      progressIntervalMs: 50,
      // Short enough for the failure tests, long enough that the test's own REP servers, which share
      // this event loop with the learner, answer in time on a loaded 2-core machine.
      receiveTimeoutMs: 2000,
      demoPollIntervalMs: 20,
      logger: pino({ level: 'silent' }),
      onProgress: reports.add,
    });
    client = createClient(TrainingService, agent.grpcAddress);
  });

  after(async () => {
    client.close();
    await agent.stop();
    for (const s of sims) s.close();
  });

  test('trains over ZeroMQ until total_episodes, with the reward improving, then completes', async (t) => {
    const a = await sim('isaac-sim-1');
    const b = await sim('isaac-sim-2');
    const { res, epoch } = await start('training-1', 'sess-learn', [a, b], { totalEpisodes: 300 });
    assert.equal(res.success, true);

    const connected = await reports.waitFor('sess-learn', (r) => r.channelsConnected, 'channels are connected');
    assert.equal(connected.instanceId, 'training-1');
    assert.equal(connected.epoch, epoch);
    assert.deepEqual(
      connected.progress.channels.map((c) => [c.isaacInstanceId, c.zmqEndpoint, c.protocol, c.state]),
      [['isaac-sim-1', a.endpoint, 'REQ-REP', 'CONNECTED'], ['isaac-sim-2', b.endpoint, 'REQ-REP', 'CONNECTED']],
    );
    assert.equal(agent.stats('training-1').sessionId, 'sess-learn');

    // A retried StartTraining is idempotent; an older or equal epoch from another session is stale.
    assert.equal((await start('training-1', 'sess-learn', [a, b], { epoch, totalEpisodes: 300 })).res.success, true);
    await rejects(start('training-1', 'sess-other', [a, b], { epoch }), 'FAILED_PRECONDITION', 'STALE_EPOCH');
    await rejects(start('training-1', 'sess-older', [a, b], { epoch: epoch - 1n }), 'FAILED_PRECONDITION', 'STALE_EPOCH');

    const done = await reports.waitFor('sess-learn', (r) => r.completed || r.failure !== '', 'completed or failed', 60_000);
    assert.equal(done.failure, '');
    assert.equal(done.completed, true);
    const p = done.progress;
    const rates = reports.all.filter((r) => r.sessionId === 'sess-learn' && !r.completed && r.progress.envStepsPerSecond > 0).map((r) => r.progress.envStepsPerSecond);
    t.diagnostic(`over ZeroMQ: mean return first 20 ${p.firstMeanReward.toFixed(2)} → last 20 ${p.meanReward.toFixed(2)}, ${p.envSteps} env steps, ~${Math.round(rates.reduce((s, x) => s + x, 0) / rates.length)} env steps/s, policy loss ${p.policyLoss.toFixed(4)}`);
    assert.equal(p.episodesDone, 300n);
    assert.equal(p.totalEpisodes, 300n);
    assert.equal(done.failure, '');
    assert.ok(p.meanReward > p.firstMeanReward + 5, `reward should improve: ${p.firstMeanReward} → ${p.meanReward}`);
    assert.ok(p.envSteps > 0n && rates.length > 0);
    assert.deepEqual(p.channels.map((c) => c.state), ['CLOSED', 'CLOSED']);
    assert.equal(a.counts.close, 1, 'the simulator is told the channel is done');

    const status = await client.getTrainingStatus({ instanceId: 'training-1', sessionId: 'sess-learn' });
    assert.equal(status.status, TrainingStatus.COMPLETED);
    assert.equal(status.episodesDone, 300n);
    // Nothing more is reported after completion.
    assert.equal(reports.all.filter((r) => r.sessionId === 'sess-learn' && r.completed).length, 1);
  });

  test('refuses a bad request, naming the field, without using up the epoch', async () => {
    const a = await sim('isaac-sim-3');
    const epoch = nextEpoch++;
    const bad = await rejects(start('training-2', 'sess-bad', [a], { epoch, hyperparameters: { learning_rate: '2', gamma: '0.99' } }), 'INVALID_ARGUMENT');
    assert.deepEqual(bad.details.fieldViolations?.map((v) => v.field), ['training_config.hyperparameters.learning_rate']);
    const algo = await rejects(start('training-2', 'sess-bad', [a], { epoch, algorithm: 'DQN' }), 'INVALID_ARGUMENT');
    assert.deepEqual(algo.details.fieldViolations?.map((v) => v.field), ['training_config.algorithm']);
    const endpoint = await rejects(
      client.startTraining({ instanceId: 'training-2', sessionId: 'sess-bad', epoch, trainingConfig: { algorithm: 'PPO' }, channels: [{ isaacInstanceId: 'isaac-sim-3', zmqEndpoint: 'nowhere', protocol: 'REQ-REP' }] }),
      'INVALID_ARGUMENT',
    );
    assert.deepEqual(endpoint.details.fieldViolations?.map((v) => v.field), ['channels[0].zmq_endpoint']);
    await rejects(client.startTraining({ instanceId: 'training-2', sessionId: 'sess-bad', epoch, channels: [] }), 'INVALID_ARGUMENT');
    await rejects(start('training-99', 'sess-bad', [a]), 'NOT_FOUND');
    // The refused requests did not advance the epoch: the same epoch still starts.
    assert.equal((await start('training-2', 'sess-good', [a], { epoch })).res.success, true);
    await reports.waitFor('sess-good', (r) => r.channelsConnected, 'connected');
    await client.stopTraining({ instanceId: 'training-2', sessionId: 'sess-good', epoch });
  });

  test('StopTraining needs the session’s epoch, stops, and is idempotent', async () => {
    const a = await sim('isaac-sim-4');
    const { epoch } = await start('training-3', 'sess-stop', [a]);
    await reports.waitFor('sess-stop', (r) => r.progress.episodesDone > 0n, 'an episode is done');
    assert.deepEqual(agent.stats('training-3').pausedEnvs, []);
    await rejects(client.stopTraining({ instanceId: 'training-3', sessionId: 'sess-stop', epoch: epoch + 1n }), 'FAILED_PRECONDITION', 'STALE_EPOCH');
    await rejects(client.stopTraining({ instanceId: 'training-3', sessionId: 'sess-stop', epoch: epoch - 1n }), 'FAILED_PRECONDITION', 'STALE_EPOCH');
    const res = await client.stopTraining({ instanceId: 'training-3', sessionId: 'sess-stop', epoch, reason: 'test' });
    assert.equal(res.success, true);
    const status = await client.getTrainingStatus({ instanceId: 'training-3', sessionId: 'sess-stop' });
    assert.equal(status.status, TrainingStatus.STOPPED);
    const steps = a.counts.step;
    assert.ok(agent.stats('training-3').envSteps >= steps);
    assert.equal((await client.stopTraining({ instanceId: 'training-3', sessionId: 'sess-stop', epoch })).success, true, 'again');
    assert.equal((await client.stopTraining({ instanceId: 'training-3', sessionId: 'never-was', epoch: 99n })).success, true, 'unknown session');
    // A stopped session's epoch stays used.
    await rejects(start('training-3', 'sess-stop-2', [a], { epoch }), 'FAILED_PRECONDITION', 'STALE_EPOCH');
  });

  test('a simulator that stops answering fails the session with a reason naming it', async () => {
    const a = await sim('isaac-sim-5');
    const b = await sim('isaac-sim-6');
    await start('training-4', 'sess-fail', [a, b]);
    await reports.waitFor('sess-fail', (r) => r.progress.episodesDone > 0n, 'an episode is done');
    b.freeze();
    const failed = await reports.waitFor('sess-fail', (r) => r.failure !== '', 'a failure is reported');
    assert.match(failed.failure, new RegExp(`^simulator isaac-sim-6 stopped answering on ${b.endpoint.replace(/[.:/]/g, '\\$&')}`));
    assert.equal(channelOf(failed, 'isaac-sim-6')?.state, 'FAILED');
    assert.equal(failed.completed, false);
    assert.equal((await client.getTrainingStatus({ instanceId: 'training-4', sessionId: '' })).status, TrainingStatus.FAILED);
  });

  test('a simulator that is not there at all fails the session before it connects', async () => {
    const ghost = await sim('isaac-sim-7');
    ghost.close();
    await start('training-5', 'sess-ghost', [ghost]);
    const failed = await reports.waitFor('sess-ghost', (r) => r.failure !== '', 'a failure is reported');
    assert.equal(failed.channelsConnected, false);
    assert.match(failed.failure, /^simulator isaac-sim-7 stopped answering on tcp:\/\/127\.0\.0\.1:\d+/);
  });

  test('HYBRID: SetEnvControl pauses an env, feeds its demonstrations to the learner, and hands it back', async () => {
    const a = await sim('isaac-sim-8');
    const b = await sim('isaac-sim-9');
    const { epoch } = await start('training-6', 'sess-hybrid', [a, b], { mode: SessionMode.HYBRID });
    await reports.waitFor('sess-hybrid', (r) => r.progress.episodesDone > 0n, 'an episode is done');
    const control = (isaacInstanceId: string, controller: string, e = epoch) =>
      client.setEnvControl({ instanceId: 'training-6', sessionId: 'sess-hybrid', epoch: e, isaacInstanceId, controller });

    await rejects(control('isaac-sim-8', 'alice', epoch + 1n), 'FAILED_PRECONDITION', 'STALE_EPOCH');
    await rejects(control('isaac-sim-404', 'alice'), 'NOT_FOUND');
    await rejects(control('isaac-sim-8', ''), 'INVALID_ARGUMENT');

    // Neuro tells the simulator and the trainer; the human's transitions pile up in the simulator.
    a.human = 'alice';
    a.record(30);
    assert.equal((await control('isaac-sim-8', 'alice')).success, true);
    const paused = await reports.waitFor(
      'sess-hybrid',
      (r) => channelOf(r, 'isaac-sim-8')?.state === 'PAUSED' && r.progress.demonstrations['isaac-sim-8'] === 30n,
      'isaac-sim-8 is paused with 30 demonstrations',
    );
    assert.equal(channelOf(paused, 'isaac-sim-9')?.state, 'CONNECTED');
    assert.deepEqual(agent.stats('training-6').pausedEnvs, ['isaac-sim-8']);
    assert.deepEqual(agent.stats('training-6').demonstrationsReceived, { 'isaac-sim-8': 30, 'isaac-sim-9': 0 });

    // While paused, no steps go to the held simulator; the other one keeps training.
    const heldSteps = a.counts.step;
    const otherSteps = b.counts.step;
    await reports.skip('sess-hybrid', 3);
    assert.equal(a.counts.step, heldSteps, 'no step is sent to a paused env');
    assert.ok(b.counts.step > otherSteps, 'the other env keeps stepping');

    // Hand-back: the rest of the demonstrations are fetched, the env is reset, stepping resumes.
    a.record(10);
    a.human = undefined;
    const resetSeen = a.next('reset');
    assert.equal((await control('isaac-sim-8', 'ai')).success, true);
    await resetSeen;
    await a.next('step');
    await reports.waitFor('sess-hybrid', (r) => channelOf(r, 'isaac-sim-8')?.state === 'CONNECTED' && r.progress.demonstrations['isaac-sim-8'] === 40n, 'isaac-sim-8 resumed');
    assert.deepEqual(agent.stats('training-6').pausedEnvs, []);
    await client.stopTraining({ instanceId: 'training-6', sessionId: 'sess-hybrid', epoch });
  });

  test('HYBRID: a simulator that refuses steps for a human pauses its env until it is back with the AI', async () => {
    const a = await sim('isaac-sim-10');
    const { epoch } = await start('training-7', 'sess-refused', [a], { mode: SessionMode.HYBRID });
    await reports.waitFor('sess-refused', (r) => r.progress.envSteps > 0n, 'steps are taken');
    a.human = 'bob';
    await reports.waitFor('sess-refused', (r) => channelOf(r, 'isaac-sim-10')?.state === 'PAUSED', 'the env is paused');
    const resetSeen = a.next('reset');
    a.human = undefined;
    await resetSeen;
    await reports.waitFor('sess-refused', (r) => channelOf(r, 'isaac-sim-10')?.state === 'CONNECTED' && r.progress.envSteps > 0n, 'the env is back');
    await client.stopTraining({ instanceId: 'training-7', sessionId: 'sess-refused', epoch });
  });

  test('SetEnvControl is refused for a TRAINING session, and a killed instance is unavailable', async () => {
    const a = await sim('isaac-sim-11');
    const { epoch } = await start('training-8', 'sess-kill', [a]);
    await reports.waitFor('sess-kill', (r) => r.channelsConnected, 'connected');
    await rejects(
      client.setEnvControl({ instanceId: 'training-8', sessionId: 'sess-kill', epoch, isaacInstanceId: 'isaac-sim-11', controller: 'alice' }),
      'FAILED_PRECONDITION',
      'NOT_HYBRID',
    );
    agent.killInstance('training-8');
    await rejects(client.getTrainingStatus({ instanceId: 'training-8', sessionId: 'sess-kill' }), 'UNAVAILABLE');
    await rejects(start('training-8', 'sess-kill-2', [a]), 'UNAVAILABLE');
    assert.equal(agent.stats('training-8').sessionId, 'sess-kill');
  });
});

/**
 * Neuro's side of the registry, as small as it can be: records registrations, beats and reports,
 * and can end a session by a heartbeat directive or by answering a report with `stop`.
 */
class TestRegistry extends EventEmitter {
  readonly server = new grpc.Server();
  address = '';
  readonly specs: InstanceSpec[] = [];
  readonly beats: HeartbeatRequest[] = [];
  readonly progress: ReportProgressRequest[] = [];
  readonly deregistered: string[] = [];
  readonly endedSessions = new Set<string>();
  private stream?: BidiStream<HeartbeatRequest, unknown>;

  async start(): Promise<this> {
    addService(this.server, InstanceRegistryService, {
      register: (req) => {
        this.specs.push(...req.instances);
        return { success: true, heartbeatIntervalMs: 50, heartbeatGraceMs: 500 };
      },
      heartbeat: (stream) => {
        this.stream = stream as BidiStream<HeartbeatRequest, unknown>;
        stream.onMessage((m) => {
          this.beats.push(m);
          this.emit('beat', m);
        });
      },
      deregister: (req) => {
        this.deregistered.push(...req.instanceIds);
        return { success: true };
      },
      reportProgress: (req) => {
        this.progress.push(req);
        this.emit('progress', req);
        return { success: true, stop: this.endedSessions.has(req.sessionId) };
      },
    });
    const port = await new Promise<number>((resolve, reject) =>
      this.server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
    );
    this.address = `127.0.0.1:${port}`;
    return this;
  }

  stopByDirective(instanceId: string, sessionId: string, epoch: bigint): void {
    this.stream!.send({ directives: [{ instanceId, stop: [{ sessionId, epoch, reason: 'terminated by test' }] }] });
  }

  /** The next beat (or report) satisfying `pred`. */
  when<T>(event: 'beat' | 'progress', pred: (m: T) => boolean, timeoutMs = 10_000): Promise<T> {
    return new Promise((resolve, reject) => {
      // A guard against a hang, not synchronisation.
      const timer = setTimeout(() => {
        this.off(event, on);
        reject(new Error(`no matching ${event} within ${timeoutMs} ms`));
      }, timeoutMs);
      const on = (m: T) => {
        if (!pred(m)) return;
        clearTimeout(timer);
        this.off(event, on);
        resolve(m);
      };
      this.on(event, on);
    });
  }
}

const sessionsOf = (m: HeartbeatRequest, instanceId: string) => m.beats.find((b) => b.instanceId === instanceId)?.sessions.map((s) => [s.sessionId, s.epoch]);

describe('trainer agent with Neuro’s registry', () => {
  let registry: TestRegistry;
  let agent: TrainerAgent;
  let client: ClientOf<typeof TrainingService>;
  const sims: TestSim[] = [];

  before(async () => {
    registry = await new TestRegistry().start();
    agent = await startTrainerAgent({
      neuroAddress: registry.address,
      count: 2,
      hostLabel: 'gpu-node-7',
      labels: { pool: 'test' },
      heartbeatIntervalMs: 50,
      progressIntervalMs: 50,
      receiveTimeoutMs: 500,
      logger: pino({ level: 'silent' }),
    });
    client = createClient(TrainingService, agent.grpcAddress);
  });

  after(async () => {
    client.close();
    await agent.stop();
    registry.server.forceShutdown();
    for (const s of sims) s.close();
  });

  const startOn = async (instanceId: string, sessionId: string, epoch: bigint) => {
    const s = await new TestSim(`isaac-${sessionId}`).start();
    sims.push(s);
    await client.startTraining({
      instanceId,
      sessionId,
      epoch,
      trainingConfig: { algorithm: 'PPO', hyperparameters: SEED_HYPERPARAMETERS },
      channels: [{ isaacInstanceId: s.id, zmqEndpoint: s.endpoint, protocol: 'REQ-REP' }],
      mode: SessionMode.TRAINING,
    });
  };

  test('registers every instance as a trainer with its GPUs, memory and topology', async () => {
    await agent.registered;
    assert.deepEqual(registry.specs.map((s) => s.instanceId).sort(), ['training-1', 'training-2']);
    const spec = registry.specs.find((s) => s.instanceId === 'training-1')!;
    assert.equal(spec.kind, InstanceKind.TRAINER);
    assert.equal(spec.grpcAddress, agent.grpcAddress);
    assert.equal(spec.host, 'gpu-node-7');
    assert.equal(spec.zone, 'zone-a');
    assert.deepEqual(spec.gpus.map((g) => g.id), ['GPU-0', 'GPU-1', 'GPU-2', 'GPU-3']);
    assert.equal(spec.memoryGb, 32);
    assert.deepEqual(spec.labels, { pool: 'test' });
  });

  test('reports progress to Neuro, beats its session, and stops on a heartbeat directive', async () => {
    const connected = registry.when<ReportProgressRequest>('progress', (r) => r.sessionId === 'sess-r1' && r.channelsConnected);
    await startOn('training-1', 'sess-r1', 5n);
    const report = await connected;
    assert.equal(report.instanceId, 'training-1');
    assert.equal(report.epoch, 5n);
    assert.equal(report.progress?.channels[0]?.state, 'CONNECTED');
    await registry.when<HeartbeatRequest>('beat', (m) => {
      const s = sessionsOf(m, 'training-1');
      return s?.length === 1 && s[0]![0] === 'sess-r1' && s[0]![1] === 5n;
    });

    // A directive with another epoch is not this session's: ignored.
    registry.stopByDirective('training-1', 'sess-r1', 4n);
    registry.stopByDirective('training-1', 'sess-r1', 5n);
    await registry.when<HeartbeatRequest>('beat', (m) => sessionsOf(m, 'training-1')?.length === 0);
    assert.equal((await client.getTrainingStatus({ instanceId: 'training-1', sessionId: 'sess-r1' })).status, TrainingStatus.STOPPED);
  });

  test('stops when Neuro answers a report with stop, and a killed instance stops beating', async () => {
    await startOn('training-2', 'sess-r2', 1n);
    await registry.when<ReportProgressRequest>('progress', (r) => r.sessionId === 'sess-r2' && r.channelsConnected);
    registry.endedSessions.add('sess-r2');
    await registry.when<HeartbeatRequest>('beat', (m) => sessionsOf(m, 'training-2')?.length === 0);
    assert.equal((await client.getTrainingStatus({ instanceId: 'training-2', sessionId: 'sess-r2' })).status, TrainingStatus.STOPPED);

    agent.killInstance('training-2');
    const beat = await registry.when<HeartbeatRequest>('beat', (m) => !m.beats.some((b) => b.instanceId === 'training-2'));
    assert.deepEqual(beat.beats.map((b) => b.instanceId), ['training-1']);
  });
});
