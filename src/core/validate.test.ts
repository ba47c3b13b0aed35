import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { NeuroError } from './errors.js';
import { checkAssetName, validateCreate, type AlgorithmCatalog, type RawCreate } from './validate.js';

const catalog: AlgorithmCatalog = {
  supported: ['PPO', 'REINFORCE'],
  check: (_a, h) => (h.gamma !== undefined && !(Number(h.gamma) >= 0 && Number(h.gamma) <= 1) ? [{ field: 'training_config.hyperparameters.gamma', description: 'must be 0 to 1' }] : []),
};

function manual(over: Partial<RawCreate> = {}): RawCreate {
  return {
    sessionId: 'session-123',
    mode: 'MANUAL',
    scene: { robotUrdf: 'franka_panda.urdf', obstacles: [], start: { x: 0, y: 0, z: 0 }, goal: null },
    stream: { width: 1920, height: 1080, fps: 30, transport: 'webrtc' },
    training: null,
    requirements: null,
    hybrid: null,
    labels: {},
    ...over,
  };
}

function training(over: Partial<RawCreate> = {}): RawCreate {
  return manual({
    mode: 'TRAINING',
    stream: null,
    training: { algorithm: 'PPO', totalEpisodes: 10000, parallelEnvs: 4, hyperparameters: { gamma: '0.99' } },
    requirements: { trainingGpus: 4, trainingMemoryGb: 32, simulators: 4, labels: {} },
    ...over,
  });
}

function fields(fn: () => unknown): string[] {
  try {
    fn();
  } catch (e) {
    const err = e as NeuroError;
    assert.equal(err.code, 'INVALID_ARGUMENT');
    return (err.details.fieldViolations ?? []).map((v) => v.field);
  }
  return [];
}

describe('validateCreate', () => {
  it('accepts the seed examples', () => {
    assert.equal(validateCreate(manual(), 'MANUAL', catalog).sessionId, 'session-123');
    assert.equal(validateCreate(training(), 'TRAINING', catalog).requirements?.simulators, 4);
  });

  it('names the field of each bad input', () => {
    assert.deepEqual(fields(() => validateCreate(manual({ sessionId: '' }), 'MANUAL', catalog)), ['session_id']);
    assert.deepEqual(fields(() => validateCreate(manual({ sessionId: 'x'.repeat(129) }), 'MANUAL', catalog)), ['session_id']);
    assert.deepEqual(fields(() => validateCreate(manual({ mode: 'UNKNOWN(9)' }), 'MANUAL', catalog)), ['mode']);
    assert.deepEqual(fields(() => validateCreate(manual({ mode: 'TRAINING' }), 'MANUAL', catalog)), ['mode']);
    assert.deepEqual(fields(() => validateCreate(manual({ stream: { width: 0, height: 99999, fps: 1000, transport: 'webrtc' } }), 'MANUAL', catalog)), [
      'stream_config.width',
      'stream_config.height',
      'stream_config.fps',
    ]);
    assert.deepEqual(fields(() => validateCreate(manual({ stream: { width: 640, height: 480, fps: 30, transport: 'carrier-pigeon' } }), 'MANUAL', catalog)), ['stream_config.transport']);
    for (const bad of ['../etc/passwd.urdf', '/abs/robot.urdf', 'a\0b.urdf', 'robots\\x.urdf', 'robot.xml']) {
      assert.deepEqual(fields(() => validateCreate(manual({ scene: { robotUrdf: bad, obstacles: [], start: { x: 0, y: 0, z: 0 }, goal: null } }), 'MANUAL', catalog)), ['scene_config.robot_urdf'], bad);
    }
    assert.deepEqual(fields(() => validateCreate(training({ training: { algorithm: 'DQN', totalEpisodes: 10, parallelEnvs: 4, hyperparameters: {} } }), 'TRAINING', catalog)), [
      'training_config.algorithm',
    ]);
    assert.deepEqual(fields(() => validateCreate(training({ training: { algorithm: 'PPO', totalEpisodes: 10, parallelEnvs: 6, hyperparameters: {} } }), 'TRAINING', catalog)), [
      'training_config.parallel_envs',
    ]);
    assert.deepEqual(fields(() => validateCreate(training({ training: { algorithm: 'PPO', totalEpisodes: 10, parallelEnvs: 4, hyperparameters: { gamma: '7' } } }), 'TRAINING', catalog)), [
      'training_config.hyperparameters.gamma',
    ]);
    assert.deepEqual(fields(() => validateCreate(training({ requirements: { trainingGpus: 4, trainingMemoryGb: 32, simulators: 0, labels: {} } }), 'TRAINING', catalog)), [
      'resource_requirements.isaac_sim_instances',
    ]);
  });

  it('gives a scene that names no robot the default robot', () => {
    assert.equal(validateCreate(training({ scene: null }), 'TRAINING', catalog).scene.robotUrdf, 'franka_panda.urdf');
  });

  it('lists the supported algorithms when the algorithm is unknown', () => {
    assert.throws(
      () => validateCreate(training({ training: { algorithm: 'DQN', totalEpisodes: 10, parallelEnvs: 4, hyperparameters: {} } }), 'TRAINING', catalog),
      (e: NeuroError) => e.message.includes('supported: PPO, REINFORCE'),
    );
  });

  it('never accepts a path-like asset name (property)', () => {
    fc.assert(
      fc.property(fc.string(), fc.constantFrom('../', '/', '\\', '\0', '..'), fc.string(), (a, sep, b) => {
        assert.ok(checkAssetName(`${a}${sep}${b}.urdf`, 'f').length > 0);
      }),
    );
  });
});
