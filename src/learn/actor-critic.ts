import { Mlp } from './mlp.js';
import type { Rng } from './random.js';

const LOG_2PI = Math.log(2 * Math.PI);

/** Bounds on log σ: below, the policy stops exploring and log-probs blow up; above, actions are noise. */
export const LOG_STD_MIN = -5;
export const LOG_STD_MAX = 2;

/**
 * A diagonal Gaussian policy π(a|s) = N(μ(s), diag(σ²)) with a state-independent learned log σ, and
 * a separate value network V(s). All parameters live in one flat vector so one Adam serves them all.
 */
export class ActorCritic {
  readonly params: Float64Array;
  readonly grads: Float64Array;
  readonly pi: Mlp;
  readonly v: Mlp;
  /** View of log σ inside `params`. */
  readonly logStd: Float64Array;
  /** View of ∂loss/∂log σ inside `grads`. */
  readonly logStdGrad: Float64Array;

  constructor(
    readonly obsDim: number,
    readonly actDim: number,
    hidden: readonly number[],
    logStdInit: number,
    rng: Rng,
  ) {
    const piSizes = [obsDim, ...hidden, actDim];
    const vSizes = [obsDim, ...hidden, 1];
    const nPi = Mlp.paramCount(piSizes);
    const nV = Mlp.paramCount(vSizes);
    this.params = new Float64Array(nPi + nV + actDim);
    this.grads = new Float64Array(this.params.length);
    this.pi = new Mlp(piSizes, this.params.subarray(0, nPi), this.grads.subarray(0, nPi));
    this.v = new Mlp(vSizes, this.params.subarray(nPi, nPi + nV), this.grads.subarray(nPi, nPi + nV));
    this.logStd = this.params.subarray(nPi + nV);
    this.logStdGrad = this.grads.subarray(nPi + nV);
    this.pi.init(rng, 0.01);
    this.v.init(rng, 1);
    this.logStd.fill(logStdInit);
  }

  /** Keeps log σ in [LOG_STD_MIN, LOG_STD_MAX] after an optimiser step. */
  clampLogStd(): void {
    for (let j = 0; j < this.actDim; j++) {
      this.logStd[j] = Math.min(LOG_STD_MAX, Math.max(LOG_STD_MIN, this.logStd[j]!));
    }
  }

  /** Entropy of the policy (independent of the state, as σ is). */
  entropy(): number {
    let h = 0;
    for (let j = 0; j < this.actDim; j++) h += this.logStd[j]! + 0.5 * (LOG_2PI + 1);
    return h;
  }

  /** log π(a|s) of row `r` given the means of a forward pass. */
  logProb(mu: Float64Array, actions: Float64Array, r: number, actRow = r): number {
    const { actDim, logStd } = this;
    let lp = 0;
    for (let j = 0; j < actDim; j++) {
      const ls = logStd[j]!;
      const z = (actions[actRow * actDim + j]! - mu[r * actDim + j]!) / Math.exp(ls);
      lp -= 0.5 * z * z + ls + 0.5 * LOG_2PI;
    }
    return lp;
  }

  /**
   * Adds `scale · ∂ log π(a|s) / ∂(μ, log σ)` for row `r`: into `dMu` for the means (to be
   * back-propagated through the policy network) and directly into the log σ gradient.
   */
  addLogProbGrad(mu: Float64Array, actions: Float64Array, r: number, scale: number, dMu: Float64Array, actRow = r): void {
    const { actDim, logStd, logStdGrad } = this;
    for (let j = 0; j < actDim; j++) {
      const sigma = Math.exp(logStd[j]!);
      const z = (actions[actRow * actDim + j]! - mu[r * actDim + j]!) / sigma;
      dMu[r * actDim + j] = dMu[r * actDim + j]! + (scale * z) / sigma;
      logStdGrad[j] = logStdGrad[j]! + scale * (z * z - 1);
    }
  }
}
