import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ActorCritic } from './actor-critic.js';
import { Rng } from './random.js';

test('Gaussian log-prob gradient matches finite differences in μ and log σ', () => {
  const rng = new Rng(9);
  const model = new ActorCritic(3, 2, [4], -0.3, rng);
  model.logStd[1] = 0.4;
  const mu = Float64Array.of(0.1, -0.7, 0.3, 0.2);
  const actions = Float64Array.of(0.5, -0.1, -0.4, 1.2);
  const dMu = new Float64Array(4);
  model.grads.fill(0);
  model.addLogProbGrad(mu, actions, 1, 1, dMu);
  const h = 1e-6;
  for (let j = 0; j < 2; j++) {
    const up = mu.slice();
    up[2 + j] = mu[2 + j]! + h;
    const down = mu.slice();
    down[2 + j] = mu[2 + j]! - h;
    const numeric = (model.logProb(up, actions, 1) - model.logProb(down, actions, 1)) / (2 * h);
    assert.ok(Math.abs(numeric - dMu[2 + j]!) < 1e-6, `μ${j}: ${numeric} vs ${dMu[2 + j]}`);
    const keep = model.logStd[j]!;
    model.logStd[j] = keep + h;
    const lpUp = model.logProb(mu, actions, 1);
    model.logStd[j] = keep - h;
    const lpDown = model.logProb(mu, actions, 1);
    model.logStd[j] = keep;
    const numericStd = (lpUp - lpDown) / (2 * h);
    assert.ok(Math.abs(numericStd - model.logStdGrad[j]!) < 1e-6, `log σ${j}: ${numericStd} vs ${model.logStdGrad[j]}`);
  }
  assert.deepEqual(Array.from(dMu.subarray(0, 2)), [0, 0], 'other rows untouched');
});

test('entropy of a diagonal Gaussian', () => {
  const model = new ActorCritic(1, 2, [2], 0, new Rng(1));
  assert.ok(Math.abs(model.entropy() - 2 * 0.5 * Math.log(2 * Math.PI * Math.E)) < 1e-12);
});
