import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SUPPORTED_ALGORITHMS, resolveHyperparameters, validateHyperparameters } from './hyperparameters.js';

const SEED = { learning_rate: '0.0003', gamma: '0.99', clip_range: '0.2' };
const fields = (algorithm: string, h: Record<string, string>) => validateHyperparameters(algorithm, h).map((v) => v.field);

test('the seed document’s PPO configuration is valid', () => {
  assert.deepEqual(validateHyperparameters('PPO', SEED), []);
  const cfg = resolveHyperparameters('PPO', SEED);
  assert.equal(cfg.learningRate, 0.0003);
  assert.equal(cfg.gamma, 0.99);
  assert.equal(cfg.clipRange, 0.2);
});

test('supported algorithms, case-insensitively; anything else names training_config.algorithm', () => {
  assert.deepEqual([...SUPPORTED_ALGORITHMS], ['PPO', 'REINFORCE']);
  assert.deepEqual(validateHyperparameters('ppo', {}), []);
  assert.deepEqual(validateHyperparameters('REINFORCE', { learning_rate: '0.001' }), []);
  const [v] = validateHyperparameters('DQN', SEED);
  assert.equal(v?.field, 'training_config.algorithm');
  assert.match(v!.description, /PPO, REINFORCE/);
});

test('unknown keys and keys the algorithm does not use', () => {
  assert.deepEqual(fields('PPO', { ...SEED, lerning_rate: '0.1' }), ['training_config.hyperparameters.lerning_rate']);
  const [v] = validateHyperparameters('REINFORCE', SEED);
  assert.equal(v?.field, 'training_config.hyperparameters.clip_range');
  assert.match(v!.description, /not used by REINFORCE/);
});

test('values that are not numbers', () => {
  for (const bad of ['abc', '', ' ', '0x10', '1e', 'NaN', 'Infinity', '1,5']) {
    assert.deepEqual(fields('PPO', { learning_rate: bad }), ['training_config.hyperparameters.learning_rate'], JSON.stringify(bad));
  }
  assert.deepEqual(fields('PPO', { learning_rate: ' 3e-4 ' }), [], 'surrounding blanks are tolerated');
  assert.deepEqual(fields('PPO', { n_epochs: '2.5' }), ['training_config.hyperparameters.n_epochs']);
  assert.deepEqual(fields('PPO', { normalize_observations: 'yes' }), ['training_config.hyperparameters.normalize_observations']);
});

test('ranges: learning_rate (0,1], gamma [0,1], clip_range (0,1), gae_lambda [0,1]', () => {
  const ok = (k: string, v: string) => assert.deepEqual(fields('PPO', { [k]: v }), [], `${k}=${v} should pass`);
  const bad = (k: string, v: string) => assert.deepEqual(fields('PPO', { [k]: v }), [`training_config.hyperparameters.${k}`], `${k}=${v} should fail`);
  ok('learning_rate', '1');
  ok('learning_rate', '1e-6');
  bad('learning_rate', '0');
  bad('learning_rate', '-0.1');
  bad('learning_rate', '1.5');
  ok('gamma', '0');
  ok('gamma', '1');
  bad('gamma', '1.01');
  bad('gamma', '-0.1');
  ok('clip_range', '0.5');
  bad('clip_range', '0');
  bad('clip_range', '1');
  ok('gae_lambda', '1');
  bad('gae_lambda', '2');
  bad('rollout_steps', '8');
  bad('hidden_sizes', '64,,64');
  bad('hidden_sizes', '0');
  ok('hidden_sizes', '64, 32');
  const [v] = validateHyperparameters('PPO', { learning_rate: '2' });
  assert.match(v!.description, /\(0, 1\]/);
});

test('batch_size may not exceed rollout_steps', () => {
  assert.deepEqual(fields('PPO', { rollout_steps: '64', batch_size: '128' }), ['training_config.hyperparameters.batch_size']);
  assert.deepEqual(fields('PPO', { rollout_steps: '128', batch_size: '128' }), []);
});

test('every violation is reported, and resolve refuses them', () => {
  assert.equal(validateHyperparameters('PPO', { learning_rate: '0', gamma: 'x', foo: '1' }).length, 3);
  assert.throws(() => resolveHyperparameters('PPO', { gamma: '7' }), /training_config\.hyperparameters\.gamma/);
});

test('REINFORCE resolves to Monte-Carlo returns, one full-batch step, no clipping', () => {
  const cfg = resolveHyperparameters('REINFORCE', { rollout_steps: '300' });
  assert.equal(cfg.gaeLambda, 1);
  assert.equal(cfg.clipRange, null);
  assert.equal(cfg.nEpochs, 1);
  assert.equal(cfg.batchSize, 300);
});
