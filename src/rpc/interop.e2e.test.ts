/**
 * A client in another language: Python's grpcio with messages compiled from proto/ by protoc sends the
 * seed's examples, parsed by protobuf's own proto3 JSON parser, to a real Neuro, and reads the seed's
 * fields back. (.ci/run installs protoc, python3-grpcio and python3-protobuf from Debian.)
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { client, poolUntil, startNeuro, startSimAgent, startTrainerAgent, tempDir, type AgentProc, type Api, type NeuroProc } from '../testing/processes.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

describe('a Python gRPC client compiled from proto/ with protoc', () => {
  let neuro: NeuroProc;
  let agents: AgentProc[];
  let api: Api;

  before(async () => {
    neuro = await startNeuro();
    agents = await Promise.all([startSimAgent(neuro.address, 5, ['--zmq-port-base', '26000']), startTrainerAgent(neuro.address, 1)]);
    api = client(neuro.address);
    await poolUntil(api, (s, t) => s.idleInstances === 5 && t.idleInstances === 1);
  });

  after(async () => {
    api?.close();
    for (const a of agents ?? []) await a.kill('SIGKILL');
    await neuro?.kill('SIGKILL');
  });

  it('sends the seed examples verbatim and reads the seed fields back', () => {
    const out = tempDir('neuro-py-');
    execFileSync('protoc', ['-I', 'proto', '-I', 'third_party/proto', `--python_out=${out}`, 'proto/neuro/v1/common.proto', 'proto/neuro/v1/resource.proto', 'proto/neuro/v1/neuro_orchestrator.proto'], { cwd: ROOT });
    const stdout = execFileSync('/usr/bin/python3', ['src/testing/interop/seed_client.py', out, neuro.address, 'src/rpc/testdata'], { cwd: ROOT, encoding: 'utf8' });
    const lines = stdout.trim().split('\n').map((l) => JSON.parse(l) as { method: string; response?: Record<string, any>; error?: string; details?: string });
    const [manual, training, pool, bad] = lines;
    assert.deepEqual(Object.keys(manual!.response!).sort(), ['control_ws_url', 'epoch', 'instance_id', 'message', 'session_id', 'status', 'success', 'webrtc_signaling_url']);
    assert.equal(manual!.response!.session_id, 'session-123');
    assert.equal(manual!.response!.webrtc_signaling_url, 'ws://nexus:8080/api/webrtc/signaling/isaac-sim/session-123');
    assert.equal(manual!.response!.status.status, 'READY');
    const t = training!.response!;
    assert.equal(t.success, true);
    assert.equal(t.session_id, 'training-session-456');
    assert.equal(t.isaac_instance_ids.length, 4);
    assert.equal(t.zmq_channels[0].protocol, 'REQ-REP');
    assert.ok(['INITIALIZING', 'RUNNING'].includes(t.training_status));
    const p = pool!.response!;
    assert.equal(p.isaac_pool.total_instances, 5);
    assert.equal(p.isaac_pool.running_instances, 5);
    assert.equal(p.training_pool.running_instances, 1);
    const sim = p.isaac_pool.instances.find((i: { session_id?: string }) => i.session_id === 'training-session-456');
    assert.equal(sim.status, 'running');
    assert.equal(sim.paired_with, t.training_instance_id);
    assert.equal(bad!.error, 'INVALID_ARGUMENT');
    assert.match(bad!.details!, /session_id/);
  });
});
