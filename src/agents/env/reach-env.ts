/**
 * The reach task: drive a robot's end effector to a goal among static obstacles. It is deliberately
 * small and well-shaped so a tiny PPO policy learns it in a few hundred episodes: observations are
 * O(1), episodes are short, the reward is dense (−distance every step) with a bonus for arriving, and
 * a random walk in joint space stays far from a goal that a purposeful policy reaches in a few steps.
 */
import type { RobotModel, Vec3 } from './kinematics.js';

export type ObstacleShape = 'box' | 'sphere' | 'cylinder';

/** A static obstacle in world coordinates (see neuro.v1.Obstacle for the meaning of `size`). */
export interface ObstacleSpec {
  id: string;
  shape: ObstacleShape;
  position: Vec3;
  /** Box: full extents. Sphere: x is the radius. Cylinder (upright): x the radius, z the height. */
  size: Vec3;
}

export interface SceneSpec {
  obstacles: ObstacleSpec[];
  /** The robot's base position in the world. */
  start: Vec3;
  /** Where the end effector should go; a reachable default is derived from the robot when absent. */
  goal?: Vec3;
}

export interface ReachEnvOptions {
  /** Steps per episode before it ends unreached. Default 50. */
  maxSteps?: number;
  /** Radians a revolute joint moves for an action of ±1. Default 0.1. */
  maxJointStep?: number;
  /** Metres a prismatic joint moves for an action of ±1. Default 0.02. */
  maxPrismaticStep?: number;
  /** Distance (m) at which the goal counts as reached and the episode ends. Default 0.05. */
  reachThreshold?: number;
  /** Added on the step that reaches the goal. Default 10. */
  reachBonus?: number;
  /** Subtracted on every step the end effector is inside an obstacle. Default 1. */
  obstaclePenalty?: number;
}

export interface StepResult {
  obs: number[];
  reward: number;
  done: boolean;
}

/** A small, fast, seedable PRNG (mulberry32): episodes must replay identically for a given seed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function inside(p: Vec3, o: ObstacleSpec): boolean {
  const dx = p.x - o.position.x;
  const dy = p.y - o.position.y;
  const dz = p.z - o.position.z;
  switch (o.shape) {
    case 'box':
      return Math.abs(dx) <= o.size.x / 2 && Math.abs(dy) <= o.size.y / 2 && Math.abs(dz) <= o.size.z / 2;
    case 'sphere':
      return dx * dx + dy * dy + dz * dz <= o.size.x * o.size.x;
    case 'cylinder':
      return dx * dx + dy * dy <= o.size.x * o.size.x && Math.abs(dz) <= o.size.z / 2;
  }
}

const dist = (a: Vec3, b: Vec3) => Math.hypot(a.x - b.x, a.y - b.y, a.z - b.z);

/**
 * One copy of the reach task. Actions are joint velocity commands in [-1, 1] (clipped), one per
 * movable joint. The observation is
 * `[joint angles normalised to [-1, 1] (n), ee − base (3), goal − base (3), goal − ee (3)]`, the
 * positions divided by the robot's reach. The reward per step is −distance(ee, goal) in metres, plus
 * the reach bonus on arrival, minus the obstacle penalty while the end effector is inside an obstacle.
 */
export class ReachEnv {
  readonly obsDim: number;
  readonly actDim: number;
  readonly robot: RobotModel;
  /** The goal in world coordinates. */
  readonly goal: Vec3;
  readonly start: Vec3;
  readonly obstacles: readonly ObstacleSpec[];
  readonly maxSteps: number;
  private readonly opts: Required<Omit<ReachEnvOptions, 'maxSteps'>>;
  private readonly random: () => number;
  private readonly home: number[];
  private q: number[];
  private ee: Vec3;
  private steps = 0;
  private finished = false;
  private episodes = 0;
  private lastReward = 0;

  constructor(robot: RobotModel, scene: SceneSpec, seed: number, options: ReachEnvOptions = {}) {
    this.robot = robot;
    this.start = { ...scene.start };
    this.obstacles = scene.obstacles.map((o) => ({ ...o, position: { ...o.position }, size: { ...o.size } }));
    this.actDim = robot.joints.length;
    this.obsDim = this.actDim + 9;
    this.maxSteps = options.maxSteps ?? 50;
    this.opts = {
      maxJointStep: options.maxJointStep ?? 0.1,
      maxPrismaticStep: options.maxPrismaticStep ?? 0.02,
      reachThreshold: options.reachThreshold ?? 0.05,
      reachBonus: options.reachBonus ?? 10,
      obstaclePenalty: options.obstaclePenalty ?? 1,
    };
    this.random = rng(seed);
    this.home = homePose(robot);
    this.goal = scene.goal ? { ...scene.goal } : this.defaultGoal();
    this.q = [...this.home];
    this.ee = this.world(this.q);
  }

  /** Joint values of the current configuration (radians or metres). */
  get joints(): number[] {
    return [...this.q];
  }

  /** The end effector in world coordinates. */
  get eePosition(): Vec3 {
    return { ...this.ee };
  }

  /** Steps taken in the current episode. */
  get stepCount(): number {
    return this.steps;
  }

  /** Episodes started so far (1 after the first reset). */
  get episode(): number {
    return this.episodes;
  }

  get done(): boolean {
    return this.finished;
  }

  /** The reward of the latest step (0 after a reset). */
  get reward(): number {
    return this.lastReward;
  }

  get distanceToGoal(): number {
    return dist(this.ee, this.goal);
  }

  /** Starts a new episode near the home pose and returns its first observation. */
  reset(): number[] {
    this.q = this.robot.joints.map((j, i) => {
      const spread = Math.min(0.1 * (j.upper - j.lower), 0.3);
      return clamp(this.home[i]! + (this.random() * 2 - 1) * spread, j.lower, j.upper);
    });
    this.ee = this.world(this.q);
    this.steps = 0;
    this.finished = false;
    this.lastReward = 0;
    this.episodes++;
    return this.observe();
  }

  /**
   * Applies one action (starting the first episode if reset() was never called). Throws once the
   * episode is done: call reset() first.
   */
  step(action: readonly number[]): StepResult {
    if (this.finished) throw new Error('the episode is done; call reset()');
    if (action.length !== this.actDim) throw new Error(`expected ${this.actDim} action values, got ${action.length}`);
    if (this.episodes === 0) this.reset();
    this.robot.joints.forEach((j, i) => {
      const a = action[i]!;
      const v = Number.isFinite(a) ? clamp(a, -1, 1) : 0;
      const scale = j.type === 'prismatic' ? this.opts.maxPrismaticStep : this.opts.maxJointStep;
      this.q[i] = clamp(this.q[i]! + v * scale, j.lower, j.upper);
    });
    this.ee = this.world(this.q);
    this.steps++;
    const d = dist(this.ee, this.goal);
    let reward = -d;
    const reached = d <= this.opts.reachThreshold;
    if (reached) reward += this.opts.reachBonus;
    if (this.obstacles.some((o) => inside(this.ee, o))) reward -= this.opts.obstaclePenalty;
    this.finished = reached || this.steps >= this.maxSteps;
    this.lastReward = reward;
    return { obs: this.observe(), reward, done: this.finished };
  }

  /** The current observation (what reset/step return). */
  observe(): number[] {
    const s = 1 / this.robot.reach;
    const { start: b, ee, goal: g } = this;
    const obs = this.robot.joints.map((j, i) => (j.upper > j.lower ? (2 * (this.q[i]! - j.lower)) / (j.upper - j.lower) - 1 : 0));
    obs.push(
      (ee.x - b.x) * s, (ee.y - b.y) * s, (ee.z - b.z) * s,
      (g.x - b.x) * s, (g.y - b.y) * s, (g.z - b.z) * s,
      (g.x - ee.x) * s, (g.y - ee.y) * s, (g.z - ee.z) * s,
    );
    return obs;
  }

  private world(q: readonly number[]): Vec3 {
    const p = this.robot.forwardKinematics(q);
    return { x: p.x + this.start.x, y: p.y + this.start.y, z: p.z + this.start.z };
  }

  /**
   * A goal the robot can certainly reach: the end effector at a fixed configuration away from home.
   * The first candidate that is above the base, clear of obstacles and far enough from home wins;
   * the candidates do not depend on the seed, so every copy of a scene shares its goal.
   */
  private defaultGoal(): Vec3 {
    const homeEe = this.world(this.home);
    const candidates: Vec3[] = [];
    for (const magnitude of [0.9, 0.6, 1.2, 0.3]) {
      for (const flip of [1, -1]) {
        const q = this.robot.joints.map((j, i) => {
          const sign = (i % 2 === 0 ? 1 : -1) * flip;
          return clamp(this.home[i]! + sign * Math.min(0.25 * (j.upper - j.lower), magnitude), j.lower, j.upper);
        });
        candidates.push(this.world(q));
      }
    }
    const ok = (p: Vec3) =>
      p.z >= this.start.z - 1e-9 && dist(p, homeEe) >= 0.15 * this.robot.reach && !this.obstacles.some((o) => inside(p, o));
    return candidates.find(ok) ?? candidates[0]!;
  }
}

/**
 * Mid-range with every joint after the first bent a little, alternately: the middle of every range is
 * often a stretched, singular pose (UR5, a planar arm) from which no small motion reaches inwards.
 */
function homePose(robot: RobotModel): number[] {
  return robot.midConfiguration().map((mid, i) => {
    const j = robot.joints[i]!;
    const bend = i === 0 ? 0 : Math.min(0.1 * (j.upper - j.lower), 0.5) * (i % 2 === 1 ? 1 : -1);
    return clamp(mid + bend, j.lower, j.upper);
  });
}

function clamp(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v;
}
