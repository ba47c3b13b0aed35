/**
 * Learning algorithms for Neuro's reference trainer: pure TypeScript, no I/O and no clock, seeded
 * for reproducibility. `SUPPORTED_ALGORITHMS` and `validateHyperparameters` are what Neuro's edge
 * uses to validate a CreateTrainingSession; `createLearner` is what a trainer trains with.
 */
import { resolveHyperparameters } from './hyperparameters.js';
import type { Learner, LearnerDims } from './learner.js';
import { PolicyGradientLearner } from './policy-gradient.js';

export {
  SUPPORTED_ALGORITHMS,
  validateHyperparameters,
  resolveHyperparameters,
  normalizeAlgorithm,
  knownHyperparameters,
  type HyperparameterViolation,
  type ResolvedHyperparameters,
} from './hyperparameters.js';
export type { Learner, LearnerDims, Demonstration } from './learner.js';
export { PolicyGradientLearner } from './policy-gradient.js';
export { Rng } from './random.js';

/**
 * A learner for `algorithm` ('PPO' or 'REINFORCE', case-insensitive) with the given hyperparameters
 * (strings, defaults for the rest). Throws a RangeError listing the violations when they are invalid
 * (check first with `validateHyperparameters`). A `seed` hyperparameter overrides `seed`.
 */
export function createLearner(algorithm: string, h: Record<string, string>, dims: LearnerDims, seed: number): Learner {
  const cfg = resolveHyperparameters(algorithm, h);
  return new PolicyGradientLearner(cfg, dims, cfg.seed ?? seed);
}
