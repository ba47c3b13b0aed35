/**
 * What every part of the benchmark shares: its sizes (full or --quick), the figures it returns and the
 * requests it sends.
 */
import type { MessageInitShape } from '@bufbuild/protobuf';
import { SessionMode } from '../../src/gen/neuro/v1/common_pb.js';
import { SessionState, type CreateSessionRequestSchema, type CreateTrainingSessionRequestSchema } from '../../src/gen/neuro/v1/neuro_orchestrator_pb.js';
import { pool } from '../lib/load.js';
import { failedSessions, nowMs, sleep, type Api } from '../lib/procs.js';

export interface Sizes {
  /** Sequential calls for latency percentiles. */
  floorCalls: number;
  manualCalls: number;
  gangCalls: number;
  /** Closed-loop throughput: counted window and warm-up before it. */
  throughputMs: number;
  warmupMs: number;
  concurrencies: number[];
  /** Pool sizes of the allocation-at-scale figure (the first is the reference). */
  scaleSizes: number[];
  allocCalls: number;
  /** Pool size at which GetResourcePoolStatus is timed, and how many calls. */
  poolStatusAt: number;
  poolStatusCalls: number;
  /** Pool sizes at which heartbeat CPU is measured, and the windows. */
  heartbeatSizes: number[];
  heartbeatWindowMs: number;
  idleWindowMs: number;
  recoverySessions: number;
  memoryInstances: number;
  memorySessions: number;
}

export const FULL: Sizes = {
  floorCalls: 2000,
  manualCalls: 1000,
  gangCalls: 200,
  throughputMs: 4000,
  warmupMs: 700,
  concurrencies: [16, 64],
  scaleSizes: [100, 10_000, 100_000],
  allocCalls: 1000,
  poolStatusAt: 10_000,
  poolStatusCalls: 50,
  heartbeatSizes: [10_000, 100_000],
  heartbeatWindowMs: 5000,
  idleWindowMs: 2000,
  recoverySessions: 10_000,
  memoryInstances: 100_000,
  memorySessions: 10_000,
};

export const QUICK: Sizes = {
  floorCalls: 300,
  manualCalls: 150,
  gangCalls: 20,
  throughputMs: 1500,
  warmupMs: 300,
  concurrencies: [16, 64],
  scaleSizes: [100, 2000],
  allocCalls: 150,
  poolStatusAt: 2000,
  poolStatusCalls: 10,
  heartbeatSizes: [2000],
  heartbeatWindowMs: 3000,
  idleWindowMs: 1500,
  recoverySessions: 500,
  memoryInstances: 3000,
  memorySessions: 500,
};

/** Figures of one run of one part: name → value (ms, per second, %, MB, counts). */
export type Figures = Record<string, number>;

export interface PartResult {
  figures: Figures;
  /** Anything worth reading next to the figures (errors, what exactly was timed). */
  notes: string[];
}

export type Part = (sizes: Sizes, run: number) => Promise<PartResult>;

let seq = 0;
/** A session id unique in this benchmark process. */
export function sessionId(tag: string): string {
  return `bench-${tag}-${process.pid}-${++seq}`;
}

export const ROBOT = 'franka_panda.urdf';

export function manualRequest(id: string): MessageInitShape<typeof CreateSessionRequestSchema> {
  return {
    sessionId: id,
    mode: SessionMode.MANUAL,
    sceneConfig: { robotUrdf: ROBOT, startPosition: { x: 0, y: 0, z: 0 } },
    streamConfig: { width: 1920, height: 1080, fps: 30, transport: 'webrtc' },
  };
}

/** The seed's training example, with total_episodes large enough that no session completes during a cycle. */
export function gangRequest(id: string): MessageInitShape<typeof CreateTrainingSessionRequestSchema> {
  return {
    sessionId: id,
    mode: SessionMode.TRAINING,
    sceneConfig: { robotUrdf: ROBOT, startPosition: { x: 0, y: 0, z: 0 } },
    trainingConfig: { algorithm: 'PPO', totalEpisodes: 10_000_000, parallelEnvs: 4, hyperparameters: { learning_rate: '0.0003', gamma: '0.99', clip_range: '0.2' } },
    resourceRequirements: { trainingGpus: 4, trainingMemoryGb: 32, isaacSimInstances: 4 },
  };
}

export const round = (v: number, digits = 2) => (Number.isFinite(v) ? Math.round(v * 10 ** digits) / 10 ** digits : v);

/**
 * Creates MANUAL sessions (`concurrency` at a time) until `n` are READY at once, and waits for them to
 * stay so: under load Neuro may fail some sessions it has just created (see the README), and those are
 * replaced. Returns the ids created and how many sessions failed on the way.
 */
export async function holdLiveSessions(api: Api, n: number, concurrency: number, tag: string): Promise<{ ids: string[]; failed: number; createsPerSecond: number }> {
  const ids: string[] = [];
  let ready = 0;
  let seconds = 0;
  for (let round = 0; round < 6 && ready < n; round++) {
    const batch = Array.from({ length: n - ready }, () => sessionId(tag));
    ids.push(...batch);
    const t = nowMs();
    await pool(batch, concurrency, async (id) => {
      const r = await api.createSession(manualRequest(id), { timeoutMs: 30_000 });
      if (!r.success) throw new Error(`create ${id}: ${r.message}`);
    });
    seconds += (nowMs() - t) / 1000;
    // Beats that were on their way when the creates ended land now; let them.
    await sleep(2000);
    ready = (await api.listSessions({ state: SessionState.READY, pageSize: 1 })).totalSize;
  }
  if (ready !== n) throw new Error(`could not hold ${n} READY sessions (${ready}): ${await failedSessions(api)}`);
  const failed = (await api.listSessions({ state: SessionState.FAILED, pageSize: 1 })).totalSize;
  return { ids, failed, createsPerSecond: ids.length / seconds };
}
