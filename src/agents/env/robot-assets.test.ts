import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_ASSETS_DIR, isPlainAssetName, loadRobot, RobotAssetError } from './robot-assets.js';

test('DEFAULT_ASSETS_DIR is the repository asset folder with the shipped robots', () => {
  for (const name of ['franka_panda.urdf', 'ur5.urdf', 'two_link_arm.urdf']) assert.ok(existsSync(join(DEFAULT_ASSETS_DIR, name)), name);
});

test('loadRobot caches: the same model for the same asset, with or without the extension', () => {
  const a = loadRobot(DEFAULT_ASSETS_DIR, 'ur5.urdf');
  assert.equal(loadRobot(DEFAULT_ASSETS_DIR, 'ur5.urdf'), a);
  assert.equal(loadRobot(DEFAULT_ASSETS_DIR, 'ur5'), a);
  assert.equal(a.name, 'ur5.urdf');
});

test('names that are not plain asset names are refused, naming scene_config.robot_urdf', () => {
  for (const name of ['../ur5.urdf', 'robots/ur5.urdf', '..\\ur5.urdf', '/etc/passwd', 'ur5\0.urdf', '', '..', '.']) {
    assert.equal(isPlainAssetName(name), false, JSON.stringify(name));
    assert.throws(() => loadRobot(DEFAULT_ASSETS_DIR, name), (e: Error) => e instanceof RobotAssetError && /scene_config\.robot_urdf/.test(e.message));
  }
});

test('a missing or unusable asset is refused, naming scene_config.robot_urdf', () => {
  assert.throws(() => loadRobot(DEFAULT_ASSETS_DIR, 'no_such_robot.urdf'), /scene_config\.robot_urdf: no such robot asset: "no_such_robot.urdf"/);
  const dir = mkdtempSync(join(tmpdir(), 'robots-'));
  writeFileSync(join(dir, 'broken.urdf'), '<robot><link name="a"></robot>');
  writeFileSync(join(dir, 'rigid.urdf'), '<robot name="rigid"><link name="a"/></robot>');
  assert.throws(() => loadRobot(dir, 'broken.urdf'), /scene_config\.robot_urdf: "broken.urdf" is not a usable URDF: malformed XML/);
  assert.throws(() => loadRobot(dir, 'rigid.urdf'), /scene_config\.robot_urdf: "rigid.urdf" is not a usable URDF: .*no movable/);
});
