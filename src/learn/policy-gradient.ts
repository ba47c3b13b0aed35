import { ActorCritic } from './actor-critic.js';
import { Adam, clipGradNorm } from './adam.js';
import type { ResolvedHyperparameters } from './hyperparameters.js';
import type { Demonstration, Learner, LearnerDims } from './learner.js';
import { Rng } from './random.js';
import { RunningMeanStd } from './running-stats.js';

interface Step {
  stream: string;
  obs: Float64Array;
  action: Float64Array;
  reward: number;
  done: boolean;
  nextObs: Float64Array;
}

interface HeldDemo {
  obs: Float64Array;
  action: Float64Array;
  usesLeft: number;
}

/** Demonstrations kept at most; the oldest go first. */
const MAX_DEMOS = 20_000;

/**
 * Actor-critic policy gradient over a rollout buffer, in two configurations:
 * - **PPO** (Schulman et al., 2017): clipped surrogate objective, GAE(γ, λ) advantages, several epochs
 *   of shuffled minibatches per rollout, optional KL early stop.
 * - **REINFORCE** with a learned baseline: Monte-Carlo returns (λ = 1), one full-batch gradient step
 *   per rollout, no clipping. An episode still running when the rollout ends is bootstrapped by the
 *   baseline rather than waited for, so rollouts have a fixed size.
 *
 * Both normalise observations and scale rewards with running statistics that are frozen during a
 * rollout and refreshed after each update, so the probabilities the rollout was collected under are
 * exactly those the update starts from.
 */
export class PolicyGradientLearner implements Learner {
  private readonly rng: Rng;
  private readonly model: ActorCritic;
  private readonly adam: Adam;
  private readonly obsRms: RunningMeanStd;
  private readonly retRms = new RunningMeanStd(1);
  private readonly runningReturn = new Map<string, number>();
  private buffer: Step[] = [];
  private demos: HeldDemo[] = [];
  private updateCount = 0;
  private loss = 0;

  constructor(
    private readonly cfg: ResolvedHyperparameters,
    private readonly dims: LearnerDims,
    seed: number,
  ) {
    if (!(dims.obsDim > 0 && dims.actDim > 0)) throw new RangeError(`bad env dimensions obs=${dims.obsDim} act=${dims.actDim}`);
    this.rng = new Rng(seed);
    this.model = new ActorCritic(dims.obsDim, dims.actDim, cfg.hiddenSizes, cfg.logStdInit, this.rng);
    this.adam = new Adam(this.model.params.length);
    this.obsRms = new RunningMeanStd(dims.obsDim);
  }

  get updates(): number {
    return this.updateCount;
  }

  get lastLoss(): number {
    return this.loss;
  }

  /** Demonstrations currently used for behaviour cloning. */
  get heldDemonstrations(): number {
    return this.demos.length;
  }

  /** Current exploration noise σ per action dimension. */
  get actionStd(): number[] {
    return Array.from(this.model.logStd, Math.exp);
  }

  act(obs: number[][]): number[][] {
    const n = obs.length;
    if (n === 0) return [];
    const { obsDim, actDim } = this.dims;
    const x = this.normalized(this.pack(obs, obsDim, 'obs'), n);
    const mu = this.model.pi.forward(x, n);
    const out: number[][] = [];
    for (let r = 0; r < n; r++) {
      const a = new Array<number>(actDim);
      for (let j = 0; j < actDim; j++) a[j] = mu[r * actDim + j]! + Math.exp(this.model.logStd[j]!) * this.rng.normal();
      out.push(a);
    }
    return out;
  }

  observe(obs: number[][], actions: number[][], rewards: number[], dones: boolean[], nextObs: number[][], streams?: readonly string[]): void {
    const n = obs.length;
    if (actions.length !== n || rewards.length !== n || dones.length !== n || nextObs.length !== n || (streams && streams.length !== n)) {
      throw new RangeError('observe: obs, actions, rewards, dones, nextObs (and streams) must have one row per env');
    }
    const { obsDim, actDim } = this.dims;
    for (let i = 0; i < n; i++) {
      const reward = rewards[i]!;
      if (!Number.isFinite(reward)) throw new RangeError(`observe: reward ${reward} of row ${i} is not finite`);
      this.buffer.push({
        stream: streams ? streams[i]! : String(i),
        obs: this.row(obs[i]!, obsDim, 'obs'),
        action: this.row(actions[i]!, actDim, 'action'),
        reward,
        done: dones[i]!,
        nextObs: this.row(nextObs[i]!, obsDim, 'nextObs'),
      });
    }
    if (this.buffer.length >= this.cfg.rolloutSteps) this.update();
  }

  addDemonstrations(t: readonly Demonstration[]): number {
    const { obsDim, actDim } = this.dims;
    let kept = 0;
    for (const d of t) {
      if (!isVector(d.obs, obsDim) || !isVector(d.action, actDim)) continue;
      this.demos.push({ obs: Float64Array.from(d.obs), action: Float64Array.from(d.action), usesLeft: this.cfg.bcUpdates });
      kept++;
    }
    if (this.demos.length > MAX_DEMOS) this.demos.splice(0, this.demos.length - MAX_DEMOS);
    return kept;
  }

  private update(): void {
    const steps = this.buffer;
    this.buffer = [];
    const n = steps.length;
    const { obsDim, actDim } = this.dims;
    const { cfg, model } = this;

    const rawObs = new Float64Array(n * obsDim);
    const rawNext = new Float64Array(n * obsDim);
    const actions = new Float64Array(n * actDim);
    steps.forEach((s, i) => {
      rawObs.set(s.obs, i * obsDim);
      rawNext.set(s.nextObs, i * obsDim);
      actions.set(s.action, i * actDim);
    });
    const x = this.normalized(rawObs, n);
    const xNext = this.normalized(rawNext, n);
    const rewards = this.scaleRewards(steps);

    const values = model.v.forward(x, n);
    const nextValues = model.v.forward(xNext, n);
    const mu = model.pi.forward(x, n);
    const logpOld = new Float64Array(n);
    for (let i = 0; i < n; i++) logpOld[i] = model.logProb(mu, actions, i);

    const { advantages, returns } = this.advantages(steps, rewards, values, nextValues);
    normalizeInPlace(advantages);

    const idx = Int32Array.from({ length: n }, (_, i) => i);
    const batch = Math.min(cfg.batchSize, n);
    let epochLoss = 0;
    for (let epoch = 0; epoch < cfg.nEpochs; epoch++) {
      this.rng.shuffle(idx);
      let lossSum = 0;
      let klSum = 0;
      let batches = 0;
      for (let start = 0; start < n; start += batch) {
        const mb = idx.subarray(start, Math.min(n, start + batch));
        const r = this.minibatchStep(mb, x, actions, logpOld, advantages, returns);
        lossSum += r.policyLoss;
        klSum += r.approxKl;
        batches++;
      }
      epochLoss = lossSum / batches;
      if (cfg.targetKl > 0 && klSum / batches > 1.5 * cfg.targetKl) break;
    }
    this.loss = epochLoss;
    if (cfg.normalizeObservations) this.obsRms.update(rawObs, n);
    for (const d of this.demos) d.usesLeft--;
    this.demos = this.demos.filter((d) => d.usesLeft > 0);
    this.updateCount++;
  }

  /** One gradient step on a minibatch; returns its policy loss and approximate KL(old‖new). */
  private minibatchStep(
    mb: Int32Array,
    x: Float64Array,
    actions: Float64Array,
    logpOld: Float64Array,
    advantages: Float64Array,
    returns: Float64Array,
  ): { policyLoss: number; approxKl: number } {
    const { model, cfg } = this;
    const { obsDim, actDim } = this.dims;
    const m = mb.length;
    model.grads.fill(0);

    const xb = new Float64Array(m * obsDim);
    const ab = new Float64Array(m * actDim);
    for (let k = 0; k < m; k++) {
      const i = mb[k]!;
      xb.set(x.subarray(i * obsDim, (i + 1) * obsDim), k * obsDim);
      ab.set(actions.subarray(i * actDim, (i + 1) * actDim), k * actDim);
    }

    // Policy: maximise min(ρA, clip(ρ)A); the clipped branch, when it is the minimum, has no gradient.
    const mu = model.pi.forward(xb, m);
    const dMu = new Float64Array(m * actDim);
    let surrogate = 0;
    let approxKl = 0;
    const eps = cfg.clipRange;
    for (let k = 0; k < m; k++) {
      const i = mb[k]!;
      const a = advantages[i]!;
      const logRatio = model.logProb(mu, ab, k) - logpOld[i]!;
      const ratio = Math.exp(logRatio);
      const unclipped = ratio * a;
      const clipped = eps === null ? unclipped : Math.min(Math.max(ratio, 1 - eps), 1 + eps) * a;
      surrogate -= Math.min(unclipped, clipped);
      approxKl += ratio - 1 - logRatio;
      if (unclipped <= clipped) model.addLogProbGrad(mu, ab, k, (-ratio * a) / m, dMu);
    }
    let policyLoss = surrogate / m - cfg.entCoef * model.entropy();
    for (let j = 0; j < actDim; j++) model.logStdGrad[j] = model.logStdGrad[j]! - cfg.entCoef;
    model.pi.backward(dMu);

    const v = model.v.forward(xb, m);
    const dV = new Float64Array(m);
    for (let k = 0; k < m; k++) dV[k] = (cfg.vfCoef * (v[k]! - returns[mb[k]!]!)) / m;
    model.v.backward(dV);

    if (this.demos.length && cfg.bcCoef > 0) policyLoss += this.behaviourCloningGrad(m);

    clipGradNorm(model.grads, cfg.maxGradNorm);
    this.adam.step(model.params, model.grads, cfg.learningRate);
    model.clampLogStd();
    return { policyLoss, approxKl: approxKl / m };
  }

  /** Adds the gradient of `bc_coef · −mean log π(a_human | s)` over a sample of demonstrations. */
  private behaviourCloningGrad(size: number): number {
    const { model, cfg } = this;
    const { obsDim, actDim } = this.dims;
    const m = Math.min(size, this.demos.length);
    const xb = new Float64Array(m * obsDim);
    const ab = new Float64Array(m * actDim);
    for (let k = 0; k < m; k++) {
      const d = m === this.demos.length ? this.demos[k]! : this.demos[this.rng.int(this.demos.length)]!;
      xb.set(d.obs, k * obsDim);
      ab.set(d.action, k * actDim);
    }
    const xn = this.normalized(xb, m);
    const mu = model.pi.forward(xn, m);
    const dMu = new Float64Array(m * actDim);
    let nll = 0;
    for (let k = 0; k < m; k++) {
      nll -= model.logProb(mu, ab, k);
      model.addLogProbGrad(mu, ab, k, -cfg.bcCoef / m, dMu);
    }
    model.pi.backward(dMu);
    return (cfg.bcCoef * nll) / m;
  }

  /**
   * GAE per env stream, walking each stream backwards. A terminal step does not bootstrap; a step
   * whose successor is missing (rollout end) or does not continue from it (the env was paused and
   * reset) bootstraps from V(next obs) and starts a new chain.
   */
  private advantages(
    steps: Step[],
    rewards: Float64Array,
    values: Float64Array,
    nextValues: Float64Array,
  ): { advantages: Float64Array; returns: Float64Array } {
    const { gamma, gaeLambda } = this.cfg;
    const n = steps.length;
    const advantages = new Float64Array(n);
    const returns = new Float64Array(n);
    const byStream = new Map<string, number[]>();
    steps.forEach((s, i) => {
      const list = byStream.get(s.stream);
      if (list) list.push(i);
      else byStream.set(s.stream, [i]);
    });
    for (const list of byStream.values()) {
      let next = 0;
      let nextIndex = -1;
      for (let k = list.length - 1; k >= 0; k--) {
        const i = list[k]!;
        const s = steps[i]!;
        const continues = !s.done && nextIndex >= 0 && sameVector(s.nextObs, steps[nextIndex]!.obs);
        const delta = rewards[i]! + (s.done ? 0 : gamma * nextValues[i]!) - values[i]!;
        next = delta + (continues ? gamma * gaeLambda * next : 0);
        advantages[i] = next;
        returns[i] = next + values[i]!;
        nextIndex = i;
      }
    }
    return { advantages, returns };
  }

  /**
   * Rewards divided by the running std of the discounted return (as Stable-Baselines3's
   * VecNormalize does), so value targets stay near unit scale whatever the env's reward units.
   */
  private scaleRewards(steps: Step[]): Float64Array {
    const n = steps.length;
    const rets = new Float64Array(n);
    steps.forEach((s, i) => {
      const r = (this.runningReturn.get(s.stream) ?? 0) * this.cfg.gamma + s.reward;
      rets[i] = r;
      this.runningReturn.set(s.stream, s.done ? 0 : r);
    });
    this.retRms.update(rets, n);
    const scale = 1 / Math.sqrt(this.retRms.var[0]! + 1e-8);
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) out[i] = Math.max(-10, Math.min(10, steps[i]!.reward * scale));
    return out;
  }

  private normalized(raw: Float64Array, n: number): Float64Array {
    return this.cfg.normalizeObservations ? this.obsRms.normalize(raw, n) : raw;
  }

  private pack(rows: number[][], dim: number, what: string): Float64Array {
    const out = new Float64Array(rows.length * dim);
    rows.forEach((r, i) => out.set(this.row(r, dim, what), i * dim));
    return out;
  }

  private row(v: number[], dim: number, what: string): Float64Array {
    if (!isVector(v, dim)) throw new RangeError(`${what} must be ${dim} finite numbers, got ${JSON.stringify(v).slice(0, 80)}`);
    return Float64Array.from(v);
  }
}

function isVector(v: unknown, dim: number): v is number[] {
  return Array.isArray(v) && v.length === dim && v.every((x) => typeof x === 'number' && Number.isFinite(x));
}

function sameVector(a: Float64Array, b: Float64Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function normalizeInPlace(a: Float64Array): void {
  const n = a.length;
  if (n < 2) return;
  let mean = 0;
  for (let i = 0; i < n; i++) mean += a[i]!;
  mean /= n;
  let sq = 0;
  for (let i = 0; i < n; i++) sq += (a[i]! - mean) ** 2;
  const std = Math.sqrt(sq / n) + 1e-8;
  for (let i = 0; i < n; i++) a[i] = (a[i]! - mean) / std;
}
