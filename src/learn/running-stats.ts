/**
 * Running mean and variance per dimension (Chan et al.'s parallel merge), used to normalise
 * observations and to scale rewards: robots report positions in metres and joint angles in radians,
 * and a network learns far faster on inputs of unit scale.
 */
export class RunningMeanStd {
  readonly mean: Float64Array;
  readonly var: Float64Array;
  count = 0;

  constructor(readonly dim: number) {
    this.mean = new Float64Array(dim);
    this.var = new Float64Array(dim).fill(1);
  }

  /** Merges a batch of `n` rows of `dim` values (row-major). */
  update(rows: Float64Array, n: number): void {
    if (n === 0) return;
    const { dim } = this;
    for (let d = 0; d < dim; d++) {
      let s = 0;
      for (let i = 0; i < n; i++) s += rows[i * dim + d]!;
      const bMean = s / n;
      let sq = 0;
      for (let i = 0; i < n; i++) {
        const x = rows[i * dim + d]! - bMean;
        sq += x * x;
      }
      const bVar = sq / n;
      if (this.count === 0) {
        this.mean[d] = bMean;
        this.var[d] = bVar;
        continue;
      }
      const total = this.count + n;
      const delta = bMean - this.mean[d]!;
      this.mean[d] = this.mean[d]! + (delta * n) / total;
      const m2 = this.var[d]! * this.count + bVar * n + (delta * delta * this.count * n) / total;
      this.var[d] = m2 / total;
    }
    this.count += n;
  }

  /** Writes `(x - mean) / std`, clipped to ±clip, into `out` (which may be `x`). */
  normalize(x: Float64Array, n: number, out: Float64Array = new Float64Array(x.length), clip = 10): Float64Array {
    const { dim } = this;
    for (let d = 0; d < dim; d++) {
      const mu = this.mean[d]!;
      const inv = 1 / Math.sqrt(this.var[d]! + 1e-8);
      for (let i = 0; i < n; i++) {
        const k = i * dim + d;
        const z = (x[k]! - mu) * inv;
        out[k] = z > clip ? clip : z < -clip ? -clip : z;
      }
    }
    return out;
  }
}
