/**
 * The learning algorithms Neuro's trainers run and the hyperparameters each accepts. Dependency-free
 * on purpose: Neuro's edge imports it to validate CreateTrainingSession before allocating anything,
 * and the trainer applies the very same rules, so a session the edge accepts never fails to start.
 *
 * Hyperparameters arrive as strings (`"learning_rate": "0.0003"`, as in the seed document).
 * Names follow Stable-Baselines3 where the meaning is the same.
 */

/** Algorithms a trainer can run, by the name `training_config.algorithm` uses. */
export const SUPPORTED_ALGORITHMS: readonly string[] = Object.freeze(['PPO', 'REINFORCE']);

/** One bad hyperparameter (or algorithm), shaped like a google.rpc.BadRequest field violation. */
export interface HyperparameterViolation {
  /** Path in the request, e.g. `training_config.hyperparameters.learning_rate`. */
  field: string;
  description: string;
}

/** Every hyperparameter with its value resolved (given or default). */
export interface ResolvedHyperparameters {
  algorithm: 'PPO' | 'REINFORCE';
  learningRate: number;
  gamma: number;
  /** GAE's λ; REINFORCE uses Monte-Carlo returns, i.e. 1. */
  gaeLambda: number;
  /** PPO's ε; null for REINFORCE (no clipping). */
  clipRange: number | null;
  entCoef: number;
  vfCoef: number;
  maxGradNorm: number;
  /** Transitions, summed over all envs, collected between two updates. */
  rolloutSteps: number;
  /** Minibatch size; REINFORCE uses the whole rollout. */
  batchSize: number;
  nEpochs: number;
  /** Early-stop an update's epochs when the approximate KL passes 1.5 × this (0 = never). */
  targetKl: number;
  hiddenSizes: number[];
  logStdInit: number;
  /** Weight of the behaviour-cloning term (HYBRID demonstrations). */
  bcCoef: number;
  /** How many updates a demonstration stays in the behaviour-cloning set. */
  bcUpdates: number;
  normalizeObservations: boolean;
  /** Overrides the seed the trainer derives from the session. */
  seed: number | undefined;
}

type Kind = 'real' | 'int' | 'bool' | 'sizes';

interface Rule {
  kind: Kind;
  /** Inclusive bounds unless the matching `open` flag is set. */
  min?: number;
  max?: number;
  minOpen?: boolean;
  maxOpen?: boolean;
  algorithms: readonly ('PPO' | 'REINFORCE')[];
  help: string;
}

const BOTH = ['PPO', 'REINFORCE'] as const;
const PPO_ONLY = ['PPO'] as const;

const RULES: Record<string, Rule> = {
  learning_rate: { kind: 'real', min: 0, minOpen: true, max: 1, algorithms: BOTH, help: 'Adam step size' },
  gamma: { kind: 'real', min: 0, max: 1, algorithms: BOTH, help: 'discount factor' },
  gae_lambda: { kind: 'real', min: 0, max: 1, algorithms: PPO_ONLY, help: 'GAE λ' },
  clip_range: { kind: 'real', min: 0, minOpen: true, max: 1, maxOpen: true, algorithms: PPO_ONLY, help: 'PPO clipping ε' },
  ent_coef: { kind: 'real', min: 0, max: 1, algorithms: BOTH, help: 'entropy bonus weight' },
  vf_coef: { kind: 'real', min: 0, max: 10, algorithms: BOTH, help: 'value loss weight' },
  max_grad_norm: { kind: 'real', min: 0, minOpen: true, max: 1000, algorithms: BOTH, help: 'gradient clipping norm' },
  rollout_steps: { kind: 'int', min: 16, max: 1_000_000, algorithms: BOTH, help: 'transitions (over all envs) per update' },
  batch_size: { kind: 'int', min: 1, max: 1_000_000, algorithms: PPO_ONLY, help: 'minibatch size' },
  n_epochs: { kind: 'int', min: 1, max: 100, algorithms: PPO_ONLY, help: 'passes over each rollout' },
  target_kl: { kind: 'real', min: 0, max: 10, algorithms: PPO_ONLY, help: 'KL early stop (0 = off)' },
  hidden_sizes: { kind: 'sizes', min: 1, max: 1024, algorithms: BOTH, help: 'hidden layer widths, e.g. "64,64"' },
  log_std_init: { kind: 'real', min: -5, max: 2, algorithms: BOTH, help: 'initial log σ of the policy' },
  bc_coef: { kind: 'real', min: 0, max: 100, algorithms: BOTH, help: 'behaviour-cloning weight' },
  bc_updates: { kind: 'int', min: 1, max: 100_000, algorithms: BOTH, help: 'updates a demonstration is used for' },
  normalize_observations: { kind: 'bool', algorithms: BOTH, help: '"true" or "false"' },
  seed: { kind: 'int', min: 0, max: 4294967295, algorithms: BOTH, help: 'random seed' },
};

const DEFAULTS: Omit<ResolvedHyperparameters, 'algorithm' | 'gaeLambda' | 'clipRange' | 'nEpochs' | 'batchSize' | 'seed'> = {
  learningRate: 3e-4,
  gamma: 0.99,
  entCoef: 0,
  vfCoef: 0.5,
  maxGradNorm: 0.5,
  rolloutSteps: 512,
  targetKl: 0,
  hiddenSizes: [32, 32],
  logStdInit: -0.5,
  bcCoef: 1,
  bcUpdates: 20,
  normalizeObservations: true,
};

const FIELD_PREFIX = 'training_config.hyperparameters.';
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/** The supported algorithm a name denotes (case-insensitive), or undefined. */
export function normalizeAlgorithm(name: string): 'PPO' | 'REINFORCE' | undefined {
  const upper = name.trim().toUpperCase();
  return (BOTH as readonly string[]).includes(upper) ? (upper as 'PPO' | 'REINFORCE') : undefined;
}

/** Hyperparameter names an algorithm accepts. */
export function knownHyperparameters(algorithm: string): string[] {
  const algo = normalizeAlgorithm(algorithm);
  if (!algo) return [];
  return Object.keys(RULES).filter((k) => RULES[k]!.algorithms.includes(algo));
}

type Parsed = number | boolean | number[];

function parseValue(key: string, rule: Rule, raw: string): { value?: Parsed; error?: string } {
  const s = raw.trim();
  if (rule.kind === 'bool') {
    if (s === 'true' || s === 'false') return { value: s === 'true' };
    return { error: `must be "true" or "false", got ${JSON.stringify(raw)}` };
  }
  if (rule.kind === 'sizes') {
    const parts = s.split(',').map((p) => p.trim());
    if (parts.length < 1 || parts.length > 4 || parts.some((p) => !/^\d+$/.test(p))) {
      return { error: `must be 1 to 4 comma-separated layer widths, e.g. "64,64", got ${JSON.stringify(raw)}` };
    }
    const sizes = parts.map(Number);
    if (sizes.some((n) => n < rule.min! || n > rule.max!)) return { error: `layer widths must be in [${rule.min}, ${rule.max}]` };
    return { value: sizes };
  }
  if (!DECIMAL.test(s)) return { error: `must be a ${rule.kind === 'int' ? 'whole ' : ''}number, got ${JSON.stringify(raw)}` };
  const n = Number(s);
  if (!Number.isFinite(n)) return { error: `must be a finite number, got ${JSON.stringify(raw)}` };
  if (rule.kind === 'int' && !Number.isInteger(n)) return { error: `must be a whole number, got ${JSON.stringify(raw)}` };
  const lowOk = rule.min === undefined || (rule.minOpen ? n > rule.min : n >= rule.min);
  const highOk = rule.max === undefined || (rule.maxOpen ? n < rule.max : n <= rule.max);
  if (!lowOk || !highOk) {
    const lo = rule.min === undefined ? '(-∞' : `${rule.minOpen ? '(' : '['}${rule.min}`;
    const hi = rule.max === undefined ? '∞)' : `${rule.max}${rule.maxOpen ? ')' : ']'}`;
    return { error: `${key} (${rule.help}) must be in ${lo}, ${hi}, got ${s}` };
  }
  return { value: n };
}

function check(algorithm: string, h: Record<string, string>): { algo?: 'PPO' | 'REINFORCE'; values: Map<string, Parsed>; violations: HyperparameterViolation[] } {
  const violations: HyperparameterViolation[] = [];
  const values = new Map<string, Parsed>();
  const algo = normalizeAlgorithm(algorithm);
  if (!algo) {
    violations.push({
      field: 'training_config.algorithm',
      description: `unsupported algorithm ${JSON.stringify(algorithm)}; supported: ${SUPPORTED_ALGORITHMS.join(', ')}`,
    });
    return { values, violations };
  }
  for (const [key, raw] of Object.entries(h)) {
    const field = FIELD_PREFIX + key;
    const rule = Object.hasOwn(RULES, key) ? RULES[key] : undefined;
    if (!rule) {
      violations.push({ field, description: `unknown hyperparameter for ${algo}; known: ${knownHyperparameters(algo).join(', ')}` });
      continue;
    }
    if (!rule.algorithms.includes(algo)) {
      violations.push({ field, description: `not used by ${algo} (${rule.algorithms.join(', ')} only)` });
      continue;
    }
    const { value, error } = parseValue(key, rule, raw);
    if (error !== undefined) violations.push({ field, description: error });
    else values.set(key, value!);
  }
  const batch = values.get('batch_size');
  const rollout = (values.get('rollout_steps') as number | undefined) ?? DEFAULTS.rolloutSteps;
  if (typeof batch === 'number' && batch > rollout) {
    violations.push({ field: FIELD_PREFIX + 'batch_size', description: `must not exceed rollout_steps (${rollout}), got ${batch}` });
  }
  return { algo, values, violations };
}

/**
 * Checks an algorithm name and its hyperparameters: unknown keys, keys the algorithm does not use,
 * values that are not numbers, and values out of range (learning_rate in (0, 1], gamma in [0, 1],
 * clip_range in (0, 1), ...). Empty when everything is fine.
 */
export function validateHyperparameters(algorithm: string, h: Record<string, string>): HyperparameterViolation[] {
  return check(algorithm, h).violations;
}

/** A valid configuration with defaults filled in; throws (listing every violation) when invalid. */
export function resolveHyperparameters(algorithm: string, h: Record<string, string>): ResolvedHyperparameters {
  const { algo, values, violations } = check(algorithm, h);
  if (!algo || violations.length) {
    throw new RangeError(`invalid training configuration: ${violations.map((v) => `${v.field}: ${v.description}`).join('; ')}`);
  }
  const num = (k: string, d: number) => (values.get(k) as number | undefined) ?? d;
  const ppo = algo === 'PPO';
  const rolloutSteps = num('rollout_steps', DEFAULTS.rolloutSteps);
  return {
    algorithm: algo,
    learningRate: num('learning_rate', DEFAULTS.learningRate),
    gamma: num('gamma', DEFAULTS.gamma),
    gaeLambda: ppo ? num('gae_lambda', 0.95) : 1,
    clipRange: ppo ? num('clip_range', 0.2) : null,
    entCoef: num('ent_coef', DEFAULTS.entCoef),
    vfCoef: num('vf_coef', DEFAULTS.vfCoef),
    maxGradNorm: num('max_grad_norm', DEFAULTS.maxGradNorm),
    rolloutSteps,
    batchSize: ppo ? num('batch_size', Math.min(128, rolloutSteps)) : rolloutSteps,
    nEpochs: ppo ? num('n_epochs', 5) : 1,
    targetKl: ppo ? num('target_kl', DEFAULTS.targetKl) : 0,
    hiddenSizes: (values.get('hidden_sizes') as number[] | undefined) ?? [...DEFAULTS.hiddenSizes],
    logStdInit: num('log_std_init', DEFAULTS.logStdInit),
    bcCoef: num('bc_coef', DEFAULTS.bcCoef),
    bcUpdates: num('bc_updates', DEFAULTS.bcUpdates),
    normalizeObservations: (values.get('normalize_observations') as boolean | undefined) ?? DEFAULTS.normalizeObservations,
    seed: values.get('seed') as number | undefined,
  };
}
