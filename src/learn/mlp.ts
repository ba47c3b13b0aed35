import type { Rng } from './random.js';

/**
 * A fully connected network with tanh hidden layers and a linear output, over row-major batches.
 *
 * Its weights and gradients are views into arrays the caller owns, so several networks (policy,
 * value head, log-std) can share one flat parameter vector and one optimiser.
 * `forward` keeps the activations of its batch; the next `backward` uses them and *adds* into the
 * gradient view (the caller zeroes it), which lets two losses on two batches share one step.
 */
export class Mlp {
  /** Number of parameters this network needs in the flat vector. */
  static paramCount(sizes: readonly number[]): number {
    let n = 0;
    for (let l = 0; l + 1 < sizes.length; l++) n += sizes[l]! * sizes[l + 1]! + sizes[l + 1]!;
    return n;
  }

  private readonly wOff: number[] = [];
  private readonly bOff: number[] = [];
  private acts: Float64Array[] = [];
  private batch = 0;

  constructor(
    readonly sizes: readonly number[],
    private readonly params: Float64Array,
    private readonly grads: Float64Array,
  ) {
    if (sizes.length < 2) throw new Error('an MLP needs an input and an output size');
    if (params.length !== Mlp.paramCount(sizes) || grads.length !== params.length) {
      throw new Error(`MLP ${sizes.join('x')} needs ${Mlp.paramCount(sizes)} parameters, got ${params.length}`);
    }
    let off = 0;
    for (let l = 0; l + 1 < sizes.length; l++) {
      this.wOff.push(off);
      off += sizes[l]! * sizes[l + 1]!;
      this.bOff.push(off);
      off += sizes[l + 1]!;
    }
  }

  get inputSize(): number {
    return this.sizes[0]!;
  }

  get outputSize(): number {
    return this.sizes[this.sizes.length - 1]!;
  }

  /**
   * Scaled-Gaussian initialisation: hidden layers keep unit variance through tanh (gain √2, as the
   * orthogonal init of common PPO implementations), the output layer uses `outputGain` — tiny for a
   * policy so the first actions are near zero mean, about 1 for a value head. Biases start at zero.
   */
  init(rng: Rng, outputGain: number, hiddenGain = Math.SQRT2): void {
    const last = this.sizes.length - 2;
    for (let l = 0; l <= last; l++) {
      const fanIn = this.sizes[l]!;
      const fanOut = this.sizes[l + 1]!;
      const gain = l === last ? outputGain : hiddenGain;
      const std = gain / Math.sqrt(fanIn);
      const w = this.wOff[l]!;
      for (let i = 0; i < fanIn * fanOut; i++) this.params[w + i] = rng.normal() * std;
      this.params.fill(0, this.bOff[l]!, this.bOff[l]! + fanOut);
    }
  }

  /** Output for `batch` rows of input (`batch × inputSize`), as `batch × outputSize`. */
  forward(input: Float64Array, batch: number): Float64Array {
    const { sizes, params } = this;
    if (input.length < batch * this.inputSize) throw new Error('MLP input shorter than batch × input size');
    const acts: Float64Array[] = [input];
    let x = input;
    const last = sizes.length - 2;
    for (let l = 0; l <= last; l++) {
      const nIn = sizes[l]!;
      const nOut = sizes[l + 1]!;
      const w = this.wOff[l]!;
      const b = this.bOff[l]!;
      const y = new Float64Array(batch * nOut);
      for (let r = 0; r < batch; r++) {
        const xr = r * nIn;
        const yr = r * nOut;
        for (let o = 0; o < nOut; o++) {
          let s = params[b + o]!;
          const wo = w + o * nIn;
          for (let i = 0; i < nIn; i++) s += params[wo + i]! * x[xr + i]!;
          y[yr + o] = l === last ? s : Math.tanh(s);
        }
      }
      acts.push(y);
      x = y;
    }
    this.acts = acts;
    this.batch = batch;
    return x;
  }

  /**
   * Back-propagates `dOut` (∂loss/∂output of the last forward batch) and adds the parameter gradients
   * into the gradient view. Returns ∂loss/∂input when `needInputGrad`, else an empty array.
   */
  backward(dOut: Float64Array, needInputGrad = false): Float64Array {
    const { sizes, params, grads, acts, batch } = this;
    if (acts.length !== sizes.length) throw new Error('MLP backward without a forward');
    let d = dOut;
    for (let l = sizes.length - 2; l >= 0; l--) {
      const nIn = sizes[l]!;
      const nOut = sizes[l + 1]!;
      const w = this.wOff[l]!;
      const b = this.bOff[l]!;
      const x = acts[l]!;
      const y = acts[l + 1]!;
      // Through tanh: d(tanh z)/dz = 1 - tanh(z)², and y holds tanh(z) for hidden layers.
      if (l !== sizes.length - 2) {
        const dz = new Float64Array(d.length);
        for (let k = 0; k < d.length; k++) dz[k] = d[k]! * (1 - y[k]! * y[k]!);
        d = dz;
      }
      // Nobody needs ∂loss/∂input of the network's own input layer: skip that third of the work.
      const wantDx = l > 0 || needInputGrad;
      const dx = new Float64Array(wantDx ? batch * nIn : 0);
      for (let r = 0; r < batch; r++) {
        const xr = r * nIn;
        const dr = r * nOut;
        for (let o = 0; o < nOut; o++) {
          const g = d[dr + o]!;
          if (g === 0) continue;
          grads[b + o] = grads[b + o]! + g;
          const wo = w + o * nIn;
          for (let i = 0; i < nIn; i++) grads[wo + i] = grads[wo + i]! + g * x[xr + i]!;
          if (wantDx) for (let i = 0; i < nIn; i++) dx[xr + i] = dx[xr + i]! + g * params[wo + i]!;
        }
      }
      d = dx;
    }
    return d;
  }
}
