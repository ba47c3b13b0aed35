/**
 * The kinematic chain of a URDF robot, from its root link to its end effector, and forward
 * kinematics over it. Transforms are 3×4 row-major matrices [R | t] in plain arrays: the chains are a
 * handful of joints long and this runs on every env step, so no matrix library is worth its weight.
 */
import type { Origin, Urdf, UrdfJoint } from './urdf.js';

/** A point or vector in metres. */
export interface Vec3 {
  x: number;
  y: number;
  z: number;
}

/** A joint the policy drives. Continuous joints get [-π, π] so they normalise like the others. */
export interface MovableJoint {
  name: string;
  type: 'revolute' | 'continuous' | 'prismatic';
  lower: number;
  upper: number;
}

type Mat34 = number[];

const IDENTITY: Mat34 = [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0];

function mul(a: Mat34, b: Mat34): Mat34 {
  const out = new Array<number>(12);
  for (let r = 0; r < 3; r++) {
    const a0 = a[r * 4]!;
    const a1 = a[r * 4 + 1]!;
    const a2 = a[r * 4 + 2]!;
    out[r * 4] = a0 * b[0]! + a1 * b[4]! + a2 * b[8]!;
    out[r * 4 + 1] = a0 * b[1]! + a1 * b[5]! + a2 * b[9]!;
    out[r * 4 + 2] = a0 * b[2]! + a1 * b[6]! + a2 * b[10]!;
    out[r * 4 + 3] = a0 * b[3]! + a1 * b[7]! + a2 * b[11]! + a[r * 4 + 3]!;
  }
  return out;
}

function fromOrigin(o: Origin): Mat34 {
  const [r, p, y] = o.rpy;
  const [cr, sr, cp, sp, cy, sy] = [Math.cos(r), Math.sin(r), Math.cos(p), Math.sin(p), Math.cos(y), Math.sin(y)];
  // URDF's fixed-axis roll-pitch-yaw: R = Rz(yaw)·Ry(pitch)·Rx(roll).
  return [
    cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr, o.xyz[0],
    sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr, o.xyz[1],
    -sp, cp * sr, cp * cr, o.xyz[2],
  ];
}

function motion(axis: readonly [number, number, number], prismatic: boolean, q: number): Mat34 {
  const [x, y, z] = axis;
  if (prismatic) return [1, 0, 0, x * q, 0, 1, 0, y * q, 0, 0, 1, z * q];
  const c = Math.cos(q);
  const s = Math.sin(q);
  const v = 1 - c;
  return [
    c + x * x * v, x * y * v - z * s, x * z * v + y * s, 0,
    y * x * v + z * s, c + y * y * v, y * z * v - x * s, 0,
    z * x * v - y * s, z * y * v + x * s, c + z * z * v, 0,
  ];
}

interface ChainLink {
  /** Fixed transforms since the previous movable joint, ending with this joint's origin. */
  before: Mat34;
  axis: readonly [number, number, number];
  prismatic: boolean;
}

/**
 * A robot reduced to the serial chain that moves its end effector. When the URDF branches (a gripper's
 * fingers, sensor mounts), the end effector is the leaf reached through the most movable joints, then
 * the deepest one, so a fixed tool frame after the wrist wins over a camera link beside it.
 * Floating and planar joints are outside the task's subset and count as fixed.
 */
export class RobotModel {
  /** The movable joints from the base outwards; a configuration is one value per joint, in this order. */
  readonly joints: readonly MovableJoint[];
  readonly baseLink: string;
  readonly eeLink: string;
  /** An upper bound of the end effector's distance from the base, for scaling observations. */
  readonly reach: number;
  private readonly chain: ChainLink[];
  private readonly after: Mat34;

  private constructor(
    /** The asset name it was loaded from, e.g. "franka_panda.urdf". */
    readonly name: string,
    /** The `<robot name>` of the URDF. */
    readonly urdfName: string,
    baseLink: string,
    eeLink: string,
    joints: MovableJoint[],
    chain: ChainLink[],
    after: Mat34,
  ) {
    this.baseLink = baseLink;
    this.eeLink = eeLink;
    this.joints = joints;
    this.chain = chain;
    this.after = after;
    let reach = Math.hypot(after[3]!, after[7]!, after[11]!);
    chain.forEach((c, i) => {
      reach += Math.hypot(c.before[3]!, c.before[7]!, c.before[11]!);
      const j = joints[i]!;
      if (j.type === 'prismatic') reach += Math.max(Math.abs(j.lower), Math.abs(j.upper));
    });
    this.reach = Math.max(reach, 1e-3);
  }

  /** Builds the chain of a parsed URDF. Throws when the URDF has no single root or no movable joint. */
  static fromUrdf(urdf: Urdf, name = urdf.name): RobotModel {
    const byChild = new Map<string, UrdfJoint>();
    const byParent = new Map<string, UrdfJoint[]>();
    for (const j of urdf.joints) {
      if (byChild.has(j.child)) throw new Error(`link ${j.child} is the child of two joints`);
      byChild.set(j.child, j);
      const list = byParent.get(j.parent) ?? [];
      list.push(j);
      byParent.set(j.parent, list);
    }
    const links = new Set([...urdf.links, ...urdf.joints.flatMap((j) => [j.parent, j.child])]);
    const roots = [...links].filter((l) => !byChild.has(l));
    if (roots.length !== 1) throw new Error(`expected one root link, found ${roots.length ? roots.join(', ') : 'none (a cycle)'}`);
    const base = roots[0]!;

    const movable = (j: UrdfJoint) => j.type === 'revolute' || j.type === 'continuous' || j.type === 'prismatic';
    let best: { path: UrdfJoint[]; moving: number } = { path: [], moving: -1 };
    const visit = (link: string, path: UrdfJoint[], moving: number) => {
      const next = byParent.get(link);
      if (!next?.length) {
        if (moving > best.moving || (moving === best.moving && path.length > best.path.length)) best = { path: [...path], moving };
        return;
      }
      for (const j of next) {
        if (path.length > urdf.joints.length) throw new Error('joint graph has a cycle');
        path.push(j);
        visit(j.child, path, moving + (movable(j) ? 1 : 0));
        path.pop();
      }
    };
    visit(base, [], 0);
    if (best.moving < 1) throw new Error('URDF has no movable (revolute, continuous or prismatic) joint');

    const joints: MovableJoint[] = [];
    const chain: ChainLink[] = [];
    let pending = IDENTITY;
    for (const j of best.path) {
      pending = mul(pending, fromOrigin(j.origin));
      if (!movable(j)) continue;
      const type = j.type as MovableJoint['type'];
      const limit = type === 'continuous' || !j.limit ? { lower: -Math.PI, upper: Math.PI } : j.limit;
      joints.push({ name: j.name, type, lower: limit.lower, upper: limit.upper });
      chain.push({ before: pending, axis: j.axis, prismatic: type === 'prismatic' });
      pending = IDENTITY;
    }
    const ee = best.path[best.path.length - 1]!.child;
    return new RobotModel(name, urdf.name, base, ee, joints, chain, pending);
  }

  /** The end effector's position in the base link's frame for configuration `q` (one value per joint). */
  forwardKinematics(q: readonly number[]): Vec3 {
    if (q.length !== this.chain.length) throw new Error(`expected ${this.chain.length} joint values, got ${q.length}`);
    let t = IDENTITY;
    for (let i = 0; i < this.chain.length; i++) {
      const c = this.chain[i]!;
      t = mul(mul(t, c.before), motion(c.axis, c.prismatic, q[i]!));
    }
    t = mul(t, this.after);
    return { x: t[3]!, y: t[7]!, z: t[11]! };
  }

  /** The positional Jacobian d(ee)/dq as 3 rows of `joints.length` columns (central differences). */
  jacobian(q: readonly number[]): number[][] {
    const h = 1e-6;
    const rows = [new Array<number>(q.length), new Array<number>(q.length), new Array<number>(q.length)];
    const probe = [...q];
    for (let i = 0; i < q.length; i++) {
      probe[i] = q[i]! + h;
      const p = this.forwardKinematics(probe);
      probe[i] = q[i]! - h;
      const m = this.forwardKinematics(probe);
      probe[i] = q[i]!;
      rows[0]![i] = (p.x - m.x) / (2 * h);
      rows[1]![i] = (p.y - m.y) / (2 * h);
      rows[2]![i] = (p.z - m.z) / (2 * h);
    }
    return rows;
  }

  /** The middle of every joint's range: a safe, deterministic home pose. */
  midConfiguration(): number[] {
    return this.joints.map((j) => (j.lower + j.upper) / 2);
  }
}
