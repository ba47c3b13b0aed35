/**
 * Test support: domain objects with sensible defaults. Not imported by production code.
 */
import type { CreateRequest, InstanceSpec } from '../core/model.js';

export function simSpec(n: number, over: Partial<InstanceSpec> = {}): InstanceSpec {
  const host = over.host ?? `host-${Math.floor((n - 1) / 4) + 1}`;
  return {
    id: `isaac-sim-${n}`,
    kind: 'simulator',
    address: `127.0.0.1:${6000 + n}`,
    host,
    zone: over.zone ?? 'zone-a',
    gpus: [{ id: 'GPU-0', memoryMb: 24000 }],
    memoryGb: 16,
    labels: {},
    controlWsBase: `ws://isaac-sim-${n}:8766`,
    zmqHost: host,
    zmqPortMin: 5555,
    zmqPortMax: 5558,
    ...over,
  };
}

export function trainerSpec(n: number, over: Partial<InstanceSpec> = {}): InstanceSpec {
  const host = over.host ?? `host-${n}`;
  return {
    id: `training-${n}`,
    kind: 'trainer',
    address: `127.0.0.1:${7000 + n}`,
    host,
    zone: over.zone ?? 'zone-a',
    gpus: [0, 1, 2, 3].map((g) => ({ id: `GPU-${g}`, memoryMb: 80000 })),
    memoryGb: 32,
    labels: {},
    controlWsBase: '',
    zmqHost: '',
    zmqPortMin: 0,
    zmqPortMax: 0,
    ...over,
  };
}

export function manualRequest(id: string, over: Partial<CreateRequest> = {}): CreateRequest {
  return {
    sessionId: id,
    mode: 'MANUAL',
    scene: { robotUrdf: 'franka_panda.urdf', obstacles: [], start: { x: 0, y: 0, z: 0 }, goal: null },
    stream: { width: 1920, height: 1080, fps: 30, transport: 'webrtc' },
    training: null,
    requirements: null,
    hybrid: null,
    labels: {},
    ...over,
  };
}

export function gangRequest(id: string, sims: number, over: Partial<CreateRequest> = {}, gpus = 4): CreateRequest {
  return {
    sessionId: id,
    mode: 'TRAINING',
    scene: { robotUrdf: 'franka_panda.urdf', obstacles: [], start: { x: 0, y: 0, z: 0 }, goal: null },
    stream: null,
    training: { algorithm: 'PPO', totalEpisodes: 100, parallelEnvs: sims, hyperparameters: { learning_rate: '0.0003', gamma: '0.99', clip_range: '0.2' } },
    requirements: { trainingGpus: gpus, trainingMemoryGb: 32, simulators: sims, labels: {} },
    hybrid: null,
    labels: {},
    ...over,
  };
}
