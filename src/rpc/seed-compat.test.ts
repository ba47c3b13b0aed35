/**
 * The seed's JSON examples against the contract, with a standard proto3 JSON parser: requests parse
 * into the request messages, and every field of the response examples exists under the same name.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { fromJson, toJson } from '@bufbuild/protobuf';
import { SessionMode, TrainingStatus } from '../gen/neuro/v1/common_pb.js';
import {
  CreateSessionRequestSchema,
  CreateSessionResponseSchema,
  CreateTrainingSessionRequestSchema,
  CreateTrainingSessionResponseSchema,
} from '../gen/neuro/v1/neuro_orchestrator_pb.js';
import { ResourcePoolStatusResponseSchema } from '../gen/neuro/v1/resource_pb.js';
import { SEED_EXAMPLES, seedJson, seedText } from '../testing/seed.js';

const strict = { ignoreUnknownFields: false } as const;

describe('seed examples (proto3 JSON)', () => {
  it('are the seed document verbatim', () => {
    const doc = new URL('../../../shared/seed/000_83d2dda2b902c177.txt', import.meta.url);
    // shared/ sits beside the checkout for sessions and CI; a lone clone checks only the copies.
    if (!existsSync(doc)) return;
    const text = readFileSync(doc, 'utf8');
    for (const name of SEED_EXAMPLES) assert.ok(text.includes(seedText(name)), `${name} differs from the seed`);
  });

  it('CreateSession request parses verbatim, MANUAL and "webrtc" as written', () => {
    const m = fromJson(CreateSessionRequestSchema, seedJson('create_session_request') as never, strict);
    assert.equal(m.sessionId, 'session-123');
    assert.equal(m.mode, SessionMode.MANUAL);
    assert.equal(m.sceneConfig?.robotUrdf, 'franka_panda.urdf');
    assert.deepEqual({ ...m.sceneConfig?.startPosition, $typeName: undefined }, { $typeName: undefined, x: 0, y: 0, z: 0 });
    assert.equal(m.streamConfig?.width, 1920);
    assert.equal(m.streamConfig?.transport, 'webrtc');
  });

  it('CreateTrainingSession request parses verbatim, hyperparameters as strings', () => {
    const m = fromJson(CreateTrainingSessionRequestSchema, seedJson('create_training_session_request') as never, strict);
    assert.equal(m.mode, SessionMode.TRAINING);
    assert.equal(m.trainingConfig?.algorithm, 'PPO');
    assert.equal(m.trainingConfig?.totalEpisodes, 10000);
    assert.equal(m.trainingConfig?.parallelEnvs, 4);
    assert.deepEqual(m.trainingConfig?.hyperparameters, { learning_rate: '0.0003', gamma: '0.99', clip_range: '0.2' });
    assert.equal(m.resourceRequirements?.trainingGpus, 4);
    assert.equal(m.resourceRequirements?.trainingMemoryGb, 32);
    assert.equal(m.resourceRequirements?.isaacSimInstances, 4);
  });

  it('every field of the response examples exists under the seed name and round-trips', () => {
    const cases = [
      ['create_session_response', CreateSessionResponseSchema],
      ['create_training_session_response', CreateTrainingSessionResponseSchema],
      ['resource_pool_status_response', ResourcePoolStatusResponseSchema],
    ] as const;
    for (const [name, schema] of cases) {
      const json = seedJson(name);
      const m = fromJson(schema as never, json as never, strict);
      const back = toJson(schema as never, m as never, { useProtoFieldName: true }) as Record<string, unknown>;
      assertSubset(json, back, name);
    }
    const t = fromJson(CreateTrainingSessionResponseSchema, seedJson('create_training_session_response') as never, strict);
    assert.equal(t.trainingStatus, TrainingStatus.INITIALIZING);
    assert.equal(t.zmqChannels[0]?.protocol, 'REQ-REP');
  });
});

/** Every key of `want` is in `got` with an equal value (zero values may be omitted by proto3 JSON). */
function assertSubset(want: unknown, got: unknown, path: string): void {
  if (Array.isArray(want)) {
    assert.ok(Array.isArray(got), `${path} is an array`);
    want.forEach((w, k) => assertSubset(w, (got as unknown[])[k], `${path}[${k}]`));
    return;
  }
  if (want && typeof want === 'object') {
    for (const [k, v] of Object.entries(want)) {
      const g = (got as Record<string, unknown> | undefined)?.[k];
      if (g === undefined && (v === 0 || v === false || v === '' || (Array.isArray(v) && !v.length))) continue;
      assertSubset(v, g, `${path}.${k}`);
    }
    return;
  }
  assert.equal(got, want, path);
}
