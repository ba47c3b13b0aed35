import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Mlp } from './mlp.js';
import { Rng } from './random.js';

/** Central-difference check of every parameter and input gradient of loss = Σ c ⊙ output. */
test('MLP backprop matches finite differences', () => {
  const rng = new Rng(3);
  const sizes = [4, 6, 5, 3];
  const n = Mlp.paramCount(sizes);
  const params = new Float64Array(n);
  const grads = new Float64Array(n);
  const net = new Mlp(sizes, params, grads);
  net.init(rng, 1);
  // Non-zero biases so their gradients are exercised away from the init.
  for (let i = 0; i < n; i++) params[i] = params[i]! + 0.1 * rng.normal();
  const batch = 3;
  const x = Float64Array.from({ length: batch * 4 }, () => rng.normal());
  const c = Float64Array.from({ length: batch * 3 }, () => rng.normal());
  const loss = (input: Float64Array) => net.forward(input, batch).reduce((s, y, k) => s + y * c[k]!, 0);

  loss(x);
  grads.fill(0);
  const dx = net.backward(c, true);
  const h = 1e-6;
  for (let i = 0; i < n; i++) {
    const keep = params[i]!;
    params[i] = keep + h;
    const up = loss(x);
    params[i] = keep - h;
    const down = loss(x);
    params[i] = keep;
    const numeric = (up - down) / (2 * h);
    assert.ok(Math.abs(numeric - grads[i]!) < 1e-6 * Math.max(1, Math.abs(numeric)), `param ${i}: numeric ${numeric} vs backprop ${grads[i]}`);
  }
  for (let i = 0; i < x.length; i++) {
    const xp = x.slice();
    xp[i] = x[i]! + h;
    const xm = x.slice();
    xm[i] = x[i]! - h;
    const numeric = (loss(xp) - loss(xm)) / (2 * h);
    assert.ok(Math.abs(numeric - dx[i]!) < 1e-6 * Math.max(1, Math.abs(numeric)), `input ${i}: numeric ${numeric} vs backprop ${dx[i]}`);
  }
});

test('MLP backward accumulates into the gradient view', () => {
  const sizes = [2, 3, 1];
  const params = new Float64Array(Mlp.paramCount(sizes));
  const grads = new Float64Array(params.length);
  const net = new Mlp(sizes, params, grads);
  net.init(new Rng(1), 1);
  const x = Float64Array.of(0.5, -0.2);
  net.forward(x, 1);
  net.backward(Float64Array.of(1));
  const once = grads.slice();
  net.forward(x, 1);
  net.backward(Float64Array.of(1));
  grads.forEach((g, i) => assert.ok(Math.abs(g - 2 * once[i]!) < 1e-12));
});

test('MLP refuses a parameter view of the wrong size', () => {
  assert.throws(() => new Mlp([2, 2], new Float64Array(5), new Float64Array(5)), /needs 6 parameters/);
});
