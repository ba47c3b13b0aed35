import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_ASSETS_DIR, ReachEnv, loadRobot } from '../agents/env/index.js';
import { createLearner, type Learner } from './index.js';

/** What the seed document's CreateTrainingSession sends. */
const SEED_HYPERPARAMETERS = { learning_rate: '0.0003', gamma: '0.99', clip_range: '0.2' };

const mean = (a: number[]) => a.reduce((s, x) => s + x, 0) / a.length;

/**
 * Trains in-process the way the trainer agent does (parallel envs, one act/observe per step, envs
 * that finish are reset and report their first observation) and returns every episode's return.
 */
function train(learner: Learner, robotName: string, envCount: number, episodes: number): { returns: number[]; steps: number } {
  const robot = loadRobot(DEFAULT_ASSETS_DIR, robotName);
  const envs = Array.from({ length: envCount }, (_, i) => new ReachEnv(robot, { obstacles: [], start: { x: 0, y: 0, z: 0 } }, 100 + i));
  let obs = envs.map((e) => e.reset());
  const running = envs.map(() => 0);
  const returns: number[] = [];
  let steps = 0;
  while (returns.length < episodes) {
    const actions = learner.act(obs);
    const results = envs.map((e, i) => e.step(actions[i]!));
    const next = results.map((r, i) => {
      running[i]! += r.reward;
      if (!r.done) return r.obs;
      returns.push(running[i]!);
      running[i] = 0;
      return envs[i]!.reset();
    });
    learner.observe(obs, actions, results.map((r) => r.reward), results.map((r) => r.done), results.map((r) => r.obs));
    obs = next;
    steps += envCount;
  }
  return { returns, steps };
}

for (const [robot, episodes, margin] of [
  ['franka_panda.urdf', 320, 10],
  ['two_link_arm.urdf', 240, 10],
] as const) {
  test(`PPO with the seed's hyperparameters improves the reach return on ${robot}`, (t) => {
    const env = new ReachEnv(loadRobot(DEFAULT_ASSETS_DIR, robot), { obstacles: [], start: { x: 0, y: 0, z: 0 } }, 1);
    const learner = createLearner('PPO', SEED_HYPERPARAMETERS, { obsDim: env.obsDim, actDim: env.actDim }, 42);
    const started = performance.now();
    const { returns, steps } = train(learner, robot, 4, episodes);
    const first = mean(returns.slice(0, 20));
    const last = mean(returns.slice(-20));
    const seconds = (performance.now() - started) / 1000;
    t.diagnostic(`${robot}: mean return first 20 ${first.toFixed(2)} → last 20 ${last.toFixed(2)}, ${steps} steps, ${(steps / seconds).toFixed(0)} steps/s, ${learner.updates} updates`);
    assert.ok(learner.updates > 5, 'several updates ran');
    assert.ok(last > first + margin, `last 20 episodes (${last.toFixed(2)}) should beat the first 20 (${first.toFixed(2)}) by ${margin}`);
  });
}

test('REINFORCE with a baseline improves on two_link_arm.urdf', () => {
  const learner = createLearner('REINFORCE', { learning_rate: '0.003', rollout_steps: '512' }, { obsDim: 11, actDim: 2 }, 5);
  const { returns } = train(learner, 'two_link_arm.urdf', 4, 300);
  const first = mean(returns.slice(0, 20));
  const last = mean(returns.slice(-20));
  assert.ok(last > first + 5, `last 20 (${last.toFixed(2)}) should beat first 20 (${first.toFixed(2)})`);
});

test('the same seed and data give the same decisions', () => {
  const run = () => {
    const learner = createLearner('PPO', { rollout_steps: '64', batch_size: '32' }, { obsDim: 11, actDim: 2 }, 7);
    train(learner, 'two_link_arm.urdf', 2, 6);
    return learner.act([[0.1, -0.2, 0.3, 0.1, 0.2, 0.3, 0.1, 0.2, 0.3, 0, 0]]);
  };
  assert.deepEqual(run(), run());
  const other = createLearner('PPO', {}, { obsDim: 11, actDim: 2 }, 8).act([[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]]);
  const same = createLearner('PPO', {}, { obsDim: 11, actDim: 2 }, 7).act([[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]]);
  assert.notDeepEqual(other, same);
});

test('demonstrations pull the policy towards the human’s actions (behaviour cloning)', () => {
  const obsDim = 3;
  const target = [0.8, -0.6];
  const learner = createLearner('PPO', { rollout_steps: '64', batch_size: '64', bc_coef: '5', learning_rate: '0.003' }, { obsDim, actDim: 2 }, 11);
  const probe = Array.from({ length: 400 }, () => [0.2, -0.1, 0.4]);
  const meanAction = () => {
    const acts = learner.act(probe);
    return [0, 1].map((j) => mean(acts.map((a) => a[j]!)));
  };
  const distance = (m: number[]) => Math.hypot(m[0]! - target[0]!, m[1]! - target[1]!);
  const before = distance(meanAction());
  const kept = learner.addDemonstrations(
    Array.from({ length: 50 }, () => ({ obs: [0.2, -0.1, 0.4], action: target, reward: 0, done: false, next_obs: [0.2, -0.1, 0.4] })),
  );
  assert.equal(kept, 50);
  assert.equal(learner.addDemonstrations([{ obs: [1], action: target, reward: 0, done: false, next_obs: [1] }]), 0, 'wrong shape is ignored');
  // Zero-reward RL data: the only signal is the behaviour-cloning term.
  for (let u = 0; u < 10; u++) {
    for (let t = 0; t < 64; t++) {
      const o = [[0.2, -0.1, 0.4]];
      learner.observe(o, learner.act(o), [0], [t === 63], o);
    }
  }
  const after = distance(meanAction());
  assert.ok(after < before / 3, `mean action should approach ${target}: distance ${before.toFixed(3)} → ${after.toFixed(3)}`);
  assert.ok(learner.lastLoss !== 0);
});

test('observe refuses rows of the wrong shape', () => {
  const learner = createLearner('PPO', {}, { obsDim: 2, actDim: 1 }, 1);
  assert.throws(() => learner.observe([[0, 0]], [[0]], [0, 1], [false], [[0, 0]]), /one row per env/);
  assert.throws(() => learner.observe([[0]], [[0]], [0], [false], [[0, 0]]), /obs must be 2 finite numbers/);
  assert.throws(() => learner.observe([[0, 0]], [[0]], [NaN], [false], [[0, 0]]), /not finite/);
  assert.throws(() => createLearner('PPO', { gamma: '2' }, { obsDim: 2, actDim: 1 }, 1), RangeError);
});
