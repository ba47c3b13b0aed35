/**
 * Keyboard driving: which keys move which joint. Pure (no DOM), so tests check it directly.
 * Keys are `KeyboardEvent.code`s, so the layout does not matter: Q/A move joint 1 up/down, W/S
 * joint 2, … U/J joint 7; the arrow keys move joints 1 (←/→) and 2 (↑/↓); Shift moves at half speed.
 */

/** [increase, decrease] per joint. */
export const JOINT_KEYS: readonly (readonly [string, string])[] = [
  ['KeyQ', 'KeyA'],
  ['KeyW', 'KeyS'],
  ['KeyE', 'KeyD'],
  ['KeyR', 'KeyF'],
  ['KeyT', 'KeyG'],
  ['KeyY', 'KeyH'],
  ['KeyU', 'KeyJ'],
];

const ARROWS: Record<string, [joint: number, sign: number]> = {
  ArrowRight: [0, 1],
  ArrowLeft: [0, -1],
  ArrowUp: [1, 1],
  ArrowDown: [1, -1],
};

/** Whether `code` is a driving key for a robot with `joints` movable joints. */
export function isDriveKey(code: string, joints: number): boolean {
  if (code in ARROWS) return ARROWS[code]![0] < joints;
  const j = JOINT_KEYS.findIndex(([p, m]) => p === code || m === code);
  return j >= 0 && j < joints;
}

/**
 * The action vector (one value in [-1, 1] per joint) for the keys held, or null when none moves
 * anything. Opposite keys cancel out.
 */
export function actionFor(held: ReadonlySet<string>, joints: number, slow = false): number[] | null {
  const a = new Array<number>(joints).fill(0);
  const gain = slow ? 0.5 : 1;
  for (const code of held) {
    const arrow = ARROWS[code];
    if (arrow) {
      if (arrow[0] < joints) a[arrow[0]]! += arrow[1] * gain;
      continue;
    }
    const j = JOINT_KEYS.findIndex(([p, m]) => p === code || m === code);
    if (j < 0 || j >= joints) continue;
    a[j]! += (JOINT_KEYS[j]![0] === code ? 1 : -1) * gain;
  }
  for (let k = 0; k < joints; k++) a[k] = Math.max(-1, Math.min(1, a[k]!));
  return a.some((v) => v !== 0) ? a : null;
}

/** The keys of joint `j` as shown to people ("Q/A"). */
export function keyLabel(j: number): string {
  const k = JOINT_KEYS[j];
  return k ? `${k[0].slice(3)}/${k[1].slice(3)}` : '';
}

/** Frames of the simulator's control WebSocket (see src/agents/sim/control-socket.ts). */
export interface Vec3 {
  x: number;
  y: number;
  z: number;
}

export interface HelloFrame {
  type: 'hello';
  session_id: string;
  instance_id: string;
  mode: string;
  controller: string;
  robot: { name: string; joints: { name: string; lower: number; upper: number }[] };
  obstacles: { id: string; shape: string; position: Vec3; size: Vec3 }[];
  goal: Vec3;
  start: Vec3;
}

export interface StateFrame {
  type: 'state';
  t: number;
  joints: number[];
  ee: Vec3;
  goal: Vec3;
  reward: number;
  done: boolean;
  controller: string;
  demonstrations: number;
  episode: number;
}

export interface ControlFrame {
  type: 'control';
  controller: string;
  reason?: string;
}

export interface ErrorFrame {
  type: 'error';
  error: string;
  message: string;
  controller?: string;
}

export type ServerFrame = HelloFrame | StateFrame | ControlFrame | ErrorFrame;

/** A server frame, or undefined for anything else. */
export function parseFrame(data: unknown): ServerFrame | undefined {
  if (typeof data !== 'string') return undefined;
  try {
    const f = JSON.parse(data) as { type?: unknown };
    if (f && typeof f === 'object' && (f.type === 'hello' || f.type === 'state' || f.type === 'control' || f.type === 'error')) return f as ServerFrame;
  } catch {
    // not JSON
  }
  return undefined;
}
