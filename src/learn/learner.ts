/** The contract between a training loop and a learning algorithm. */

/** A recorded transition, e.g. of a human driving the env in a HYBRID session. */
export interface Demonstration {
  obs: number[];
  action: number[];
  reward: number;
  done: boolean;
  next_obs: number[];
}

/** Sizes of an env's observation and action vectors. */
export interface LearnerDims {
  obsDim: number;
  actDim: number;
}

/**
 * An on-policy learner driven by a training loop: it picks actions, is told what happened, and
 * updates its policy by itself whenever its rollout buffer is full.
 */
export interface Learner {
  /** Samples one action per observation row (exploration included). */
  act(obs: number[][]): number[][];
  /**
   * Records one transition per row. `dones[i]` means the episode ended at this step (`nextObs[i]` is
   * then not used). `streams[i]` names the env the row came from (default: the row index), so
   * returns are chained per env however the loop interleaves envs; a chain is also cut wherever an
   * env's next observation does not continue from the previous one (e.g. after a pause and reset).
   * May run an update before returning.
   */
  observe(obs: number[][], actions: number[][], rewards: number[], dones: boolean[], nextObs: number[][], streams?: readonly string[]): void;
  /**
   * Adds demonstrations: for the next updates the policy loss also maximises the log-probability of
   * these actions (behaviour cloning). Transitions of the wrong shape are ignored; returns how many
   * were kept.
   */
  addDemonstrations(t: readonly Demonstration[]): number;
  /** Policy updates done so far. */
  readonly updates: number;
  /** Policy loss (surrogate + behaviour cloning − entropy bonus) of the last update's last epoch; 0 before any. */
  readonly lastLoss: number;
}
