import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReachEnv, type SceneSpec } from './reach-env.js';
import { DEFAULT_ASSETS_DIR, loadRobot } from './robot-assets.js';

const ROBOTS = ['franka_panda.urdf', 'ur5.urdf', 'two_link_arm.urdf'];
const OPEN: SceneSpec = { obstacles: [], start: { x: 0, y: 0, z: 0 } };

/** Jacobian-transpose control toward the goal: what a learned policy should roughly discover. */
function greedy(env: ReachEnv): number[] {
  const J = env.robot.jacobian(env.joints);
  const ee = env.eePosition;
  const e = [env.goal.x - ee.x, env.goal.y - ee.y, env.goal.z - ee.z];
  const a = J[0]!.map((_, i) => J[0]![i]! * e[0]! + J[1]![i]! * e[1]! + J[2]![i]! * e[2]!);
  const peak = Math.max(...a.map(Math.abs), 1e-9);
  const d = Math.hypot(e[0]!, e[1]!, e[2]!);
  return a.map((v) => (v / peak) * Math.min(1, d / 0.1));
}

function averageReturn(env: ReachEnv, policy: (env: ReachEnv) => number[], episodes: number): { mean: number; reached: number } {
  let total = 0;
  let reached = 0;
  for (let ep = 0; ep < episodes; ep++) {
    env.reset();
    for (;;) {
      const r = env.step(policy(env));
      total += r.reward;
      if (r.done) break;
    }
    if (env.distanceToGoal <= 0.05) reached++;
  }
  return { mean: total / episodes, reached };
}

/** Seeded so the comparison never flakes. */
function seededUniform(seed: number): () => number {
  let s = seed;
  return () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648);
}

for (const name of ROBOTS) {
  test(`${name}: a policy moving toward the goal clearly beats a random one`, () => {
    const robot = loadRobot(DEFAULT_ASSETS_DIR, name);
    const rand = seededUniform(42);
    const random = averageReturn(new ReachEnv(robot, OPEN, 1), (env) => env.robot.joints.map(() => rand() * 2 - 1), 30);
    const directed = averageReturn(new ReachEnv(robot, OPEN, 1), greedy, 30);
    assert.ok(directed.mean > random.mean + 15, `greedy ${directed.mean.toFixed(2)} vs random ${random.mean.toFixed(2)}`);
    assert.ok(directed.reached >= 25, `greedy reached the goal in ${directed.reached}/30 episodes`);
    assert.ok(random.reached <= directed.reached - 10, `random reached the goal in ${random.reached}/30 episodes`);
  });

  test(`${name}: observations are O(1) and sized obsDim`, () => {
    const env = new ReachEnv(loadRobot(DEFAULT_ASSETS_DIR, name), OPEN, 3);
    assert.equal(env.actDim, env.robot.joints.length);
    assert.equal(env.obsDim, env.actDim + 9);
    const rand = seededUniform(7);
    let obs = env.reset();
    for (let i = 0; i < 200; i++) {
      assert.equal(obs.length, env.obsDim);
      for (const v of obs) assert.ok(Number.isFinite(v) && Math.abs(v) <= 2, `observation value ${v}`);
      const r = env.step(env.robot.joints.map(() => rand() * 4 - 2));
      obs = r.done ? env.reset() : r.obs;
    }
  });
}

test('the default goal is reachable (a configuration of the robot) and seed-independent; a scene goal wins', () => {
  const robot = loadRobot(DEFAULT_ASSETS_DIR, 'franka_panda.urdf');
  const a = new ReachEnv(robot, OPEN, 1);
  const b = new ReachEnv(robot, OPEN, 99);
  assert.deepEqual(a.goal, b.goal);
  assert.ok(a.goal.z > 0, 'goal above the base');
  const shifted = new ReachEnv(robot, { obstacles: [], start: { x: 1, y: 2, z: 0.5 } }, 1);
  assert.ok(Math.abs(shifted.goal.x - a.goal.x - 1) < 1e-9 && Math.abs(shifted.goal.z - a.goal.z - 0.5) < 1e-9, 'goal moves with the base');
  const given = new ReachEnv(robot, { ...OPEN, goal: { x: 0.4, y: 0.1, z: 0.3 } }, 1);
  assert.deepEqual(given.goal, { x: 0.4, y: 0.1, z: 0.3 });
});

test('episodes replay identically for a seed and differ across seeds', () => {
  const robot = loadRobot(DEFAULT_ASSETS_DIR, 'ur5.urdf');
  assert.deepEqual(new ReachEnv(robot, OPEN, 5).reset(), new ReachEnv(robot, OPEN, 5).reset());
  assert.notDeepEqual(new ReachEnv(robot, OPEN, 5).reset(), new ReachEnv(robot, OPEN, 6).reset());
});

test('reaching the goal pays the bonus and ends the episode; otherwise it ends after maxSteps', () => {
  const robot = loadRobot(DEFAULT_ASSETS_DIR, 'two_link_arm.urdf');
  const env = new ReachEnv(robot, OPEN, 1, { maxSteps: 200 });
  env.reset();
  let last = env.step(greedy(env));
  while (!last.done) last = env.step(greedy(env));
  assert.ok(env.distanceToGoal <= 0.05);
  assert.ok(last.reward > 9, `arrival reward ${last.reward}`);
  assert.throws(() => env.step([0, 0]), /call reset/);

  const idle = new ReachEnv(robot, OPEN, 1, { maxSteps: 5 });
  idle.reset();
  const rewards = [0, 1, 2, 3, 4].map(() => idle.step([0, 0]));
  assert.deepEqual(rewards.map((r) => r.done), [false, false, false, false, true]);
  assert.ok(rewards.every((r) => r.reward < 0 && Math.abs(r.reward + idle.distanceToGoal) < 1e-12));
});

test('actions are clipped to [-1, 1] and scaled by the max joint step', () => {
  const robot = loadRobot(DEFAULT_ASSETS_DIR, 'two_link_arm.urdf');
  const env = new ReachEnv(robot, OPEN, 1);
  env.reset();
  const before = env.joints;
  env.step([5, -0.5]);
  const after = env.joints;
  assert.ok(Math.abs(after[0]! - before[0]! - 0.1) < 1e-12);
  assert.ok(Math.abs(after[1]! - before[1]! + 0.05) < 1e-12);
  assert.throws(() => env.step([1]), /expected 2 action values/);
});

test('an end effector inside an obstacle is penalised', () => {
  const robot = loadRobot(DEFAULT_ASSETS_DIR, 'two_link_arm.urdf');
  const free = new ReachEnv(robot, OPEN, 1);
  free.reset();
  const ee = free.eePosition;
  const box = { id: 'crate', shape: 'box' as const, position: ee, size: { x: 0.5, y: 0.5, z: 0.5 } };
  const blocked = new ReachEnv(robot, { ...OPEN, obstacles: [box], goal: free.goal }, 1);
  blocked.reset();
  const a = free.step([0, 0]);
  const b = blocked.step([0, 0]);
  assert.ok(Math.abs(a.reward - b.reward - 1) < 1e-12, `penalty ${a.reward - b.reward}`);
  const sphere = new ReachEnv(robot, { ...OPEN, obstacles: [{ ...box, shape: 'sphere', size: { x: 0.2, y: 0, z: 0 } }], goal: free.goal }, 1);
  sphere.reset();
  assert.ok(sphere.step([0, 0]).reward < a.reward - 0.99);
  const cylinder = new ReachEnv(robot, { ...OPEN, obstacles: [{ ...box, shape: 'cylinder', size: { x: 0.2, y: 0, z: 0.01 } }], goal: free.goal }, 1);
  cylinder.reset();
  assert.ok(cylinder.step([0, 0]).reward < a.reward - 0.99);
});
