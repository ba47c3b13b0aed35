/**
 * The reference simulator's task layer: URDF robots, their forward kinematics and the reach task
 * built from a session's scene. Pure computation; the only I/O is reading robot assets.
 */
export { parseXml, parseUrdf, type XmlElement, type Urdf, type UrdfJoint, type UrdfJointType, type Origin } from './urdf.js';
export { RobotModel, type Vec3, type MovableJoint } from './kinematics.js';
export { ReachEnv, type SceneSpec, type ObstacleSpec, type ObstacleShape, type ReachEnvOptions, type StepResult } from './reach-env.js';
export { loadRobot, DEFAULT_ASSETS_DIR, RobotAssetError, ROBOT_URDF_FIELD, isPlainAssetName } from './robot-assets.js';
