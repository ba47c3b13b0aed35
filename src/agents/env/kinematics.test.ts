import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RobotModel, type Vec3 } from './kinematics.js';
import { loadRobot, DEFAULT_ASSETS_DIR } from './robot-assets.js';
import { parseUrdf } from './urdf.js';

function near(actual: Vec3, expected: Vec3, tol = 1e-4): void {
  const d = Math.hypot(actual.x - expected.x, actual.y - expected.y, actual.z - expected.z);
  assert.ok(d <= tol, `expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)} (off by ${d})`);
}

test('Franka Panda: 7 joints with the published limits and its known poses', () => {
  const panda = loadRobot(DEFAULT_ASSETS_DIR, 'franka_panda.urdf');
  assert.equal(panda.joints.length, 7);
  assert.equal(panda.baseLink, 'panda_link0');
  assert.equal(panda.eeLink, 'panda_hand_tcp');
  assert.deepEqual(panda.joints[3], { name: 'panda_joint4', type: 'revolute', lower: -3.0718, upper: -0.0698 });
  // Zero configuration: the arm stands straight up; the flange sits at 0.333 + 0.316 + 0.384 − 0.107 = 0.926 m,
  // 0.088 m forward, and the TCP 0.1034 m below it.
  near(panda.forwardKinematics([0, 0, 0, 0, 0, 0, 0]), { x: 0.088, y: 0, z: 0.926 - 0.1034 });
  // Franka's "ready" pose puts the TCP at (0.307, 0, 0.487) in the base frame.
  near(panda.forwardKinematics([0, -Math.PI / 4, 0, (-3 * Math.PI) / 4, 0, Math.PI / 2, Math.PI / 4]), { x: 0.3069, y: 0, z: 0.4869 }, 2e-4);
  // Joint 1 turns the whole arm about the vertical axis.
  near(panda.forwardKinematics([Math.PI / 2, 0, 0, 0, 0, 0, 0]), { x: 0, y: 0.088, z: 0.8226 });
});

test('UR5: 6 joints and the zero pose of ur_description (arm stretched horizontally)', () => {
  const ur5 = loadRobot(DEFAULT_ASSETS_DIR, 'ur5.urdf');
  assert.equal(ur5.joints.length, 6);
  near(ur5.forwardKinematics([0, 0, 0, 0, 0, 0]), { x: 0.425 + 0.39225, y: 0.13585 - 0.1197 + 0.093 + 0.0823, z: 0.089159 - 0.09465 });
});

test('two-link arm matches the planar closed form', () => {
  const arm = loadRobot(DEFAULT_ASSETS_DIR, 'two_link_arm.urdf');
  assert.equal(arm.joints.length, 2);
  for (const [a, b] of [[0, 0], [0.3, -1.2], [-2, 2.5], [Math.PI / 2, 0]] as const) {
    near(arm.forwardKinematics([a, b]), { x: 0.5 * Math.cos(a) + 0.4 * Math.cos(a + b), y: 0.5 * Math.sin(a) + 0.4 * Math.sin(a + b), z: 0 }, 1e-9);
  }
  assert.ok(Math.abs(arm.reach - 0.9) < 1e-9);
});

test('the chain follows the branch with the most movable joints, ignoring side links', () => {
  const robot = RobotModel.fromUrdf(
    parseUrdf(`<robot name="branchy">
      <joint name="j1" type="continuous"><parent link="base"/><child link="a"/><axis xyz="0 0 1"/></joint>
      <joint name="camera" type="fixed"><parent link="a"/><child link="cam"/><origin xyz="0 0 5"/></joint>
      <joint name="j2" type="prismatic"><parent link="a"/><child link="b"/><axis xyz="1 0 0"/><limit lower="0" upper="0.5"/></joint>
      <joint name="tool" type="fixed"><parent link="b"/><child link="tip"/><origin xyz="0 0 0.1"/></joint>
    </robot>`),
  );
  assert.deepEqual(robot.joints.map((j) => [j.name, j.type, j.lower, j.upper]), [
    ['j1', 'continuous', -Math.PI, Math.PI],
    ['j2', 'prismatic', 0, 0.5],
  ]);
  assert.equal(robot.eeLink, 'tip');
  near(robot.forwardKinematics([Math.PI / 2, 0.3]), { x: 0, y: 0.3, z: 0.1 }, 1e-9);
  assert.throws(() => robot.forwardKinematics([0]), /expected 2 joint values/);
});

test('robots without a usable chain are refused', () => {
  assert.throws(() => RobotModel.fromUrdf(parseUrdf('<robot><link name="a"/></robot>')), /no movable/);
  assert.throws(
    () => RobotModel.fromUrdf(parseUrdf('<robot><link name="a"/><link name="b"/><joint name="j" type="continuous"><parent link="a"/><child link="c"/></joint></robot>')),
    /expected one root link/,
  );
});

test('the Jacobian predicts small end-effector motions', () => {
  const panda = loadRobot(DEFAULT_ASSETS_DIR, 'franka_panda.urdf');
  const q = [0.2, -0.5, 0.1, -2, 0.3, 1.5, 0.4];
  const dq = [0.001, -0.002, 0.001, 0.002, -0.001, 0.001, 0.002];
  const J = panda.jacobian(q);
  const p0 = panda.forwardKinematics(q);
  const p1 = panda.forwardKinematics(q.map((v, i) => v + dq[i]!));
  const predicted = J.map((row) => row.reduce((s, v, i) => s + v * dq[i]!, 0));
  near({ x: p1.x - p0.x, y: p1.y - p0.y, z: p1.z - p0.z }, { x: predicted[0]!, y: predicted[1]!, z: predicted[2]! }, 1e-5);
});
