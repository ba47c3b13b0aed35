/**
 * Robots come from an asset folder by plain name, never by path: the name arrives in a session
 * request (`scene_config.robot_urdf`), so anything that could walk the filesystem is refused.
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RobotModel } from './kinematics.js';
import { parseUrdf } from './urdf.js';

/** The request field robot names come from; errors name it so callers know what to fix. */
export const ROBOT_URDF_FIELD = 'scene_config.robot_urdf';

/** The repository's own robots (`assets/robots`). */
export const DEFAULT_ASSETS_DIR = fileURLToPath(new URL('../../../assets/robots', import.meta.url));

/** A robot name that is not a plain asset name, a missing asset or an unusable URDF. */
export class RobotAssetError extends Error {
  override readonly name = 'RobotAssetError';
  /** The request field at fault. */
  readonly field = ROBOT_URDF_FIELD;
}

/** True for a bare file name: no separators, no parent references, no NUL, not absolute. */
export function isPlainAssetName(name: string): boolean {
  return (
    name.length > 0 &&
    name.length <= 255 &&
    !name.includes('/') &&
    !name.includes('\\') &&
    !name.includes('..') &&
    !name.includes('\0') &&
    !isAbsolute(name) &&
    name !== '.'
  );
}

const cache = new Map<string, RobotModel>();

/**
 * Loads and caches a robot from `assetsDir`. `name` is an asset file name such as
 * "franka_panda.urdf" ("franka_panda" also works). Throws {@link RobotAssetError}, whose message names
 * `scene_config.robot_urdf`, for a name that is not plain, a missing file or a URDF without a usable chain.
 */
export function loadRobot(assetsDir: string, name: string): RobotModel {
  if (!isPlainAssetName(name)) {
    throw new RobotAssetError(`${ROBOT_URDF_FIELD}: ${JSON.stringify(name)} is not a plain asset name (e.g. "franka_panda.urdf")`);
  }
  const file = name.endsWith('.urdf') ? name : `${name}.urdf`;
  const key = join(resolve(assetsDir), file);
  const hit = cache.get(key);
  if (hit) return hit;
  let text: string;
  try {
    text = readFileSync(key, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such robot asset' : `cannot read the robot asset (${code ?? String(e)})`;
    throw new RobotAssetError(`${ROBOT_URDF_FIELD}: ${why}: ${JSON.stringify(name)}`, { cause: e });
  }
  let robot: RobotModel;
  try {
    robot = RobotModel.fromUrdf(parseUrdf(text), file);
  } catch (e) {
    throw new RobotAssetError(`${ROBOT_URDF_FIELD}: ${JSON.stringify(name)} is not a usable URDF: ${(e as Error).message}`, { cause: e });
  }
  cache.set(key, robot);
  return robot;
}
