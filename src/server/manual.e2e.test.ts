/**
 * MANUAL sessions end to end: a real Neuro process, real simulator agent processes, real gRPC. The
 * seed's examples are sent verbatim; bad input is refused with the field named; Neuro is killed with -9
 * under traffic and comes back with everything it told callers; a simulator agent is killed.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fromJson, toJson } from '@bufbuild/protobuf';
import { CreateSessionRequestSchema, CreateSessionResponseSchema, NeuroOrchestratorService, SessionState } from '../gen/neuro/v1/neuro_orchestrator_pb.js';
import { ResourcePoolStatusResponseSchema } from '../gen/neuro/v1/resource_pb.js';
import { SessionMode } from '../gen/neuro/v1/common_pb.js';
import { Health, HealthCheckResponse_ServingStatus } from '../gen/grpc/health/v1/health_pb.js';
import { ServerReflection, type ServerReflectionResponse } from '../gen/grpc/reflection/v1/reflection_pb.js';
import { createClient } from '../rpc/grpc-adapter.js';
import { seedJson } from '../testing/seed.js';
import { client, freePort, poolUntil, startNeuro, startSimAgent, tempDir, type AgentProc, type Api, type NeuroProc, refused } from '../testing/processes.js';


function manual(id: string, robot = 'franka_panda.urdf') {
  return { sessionId: id, mode: SessionMode.MANUAL, sceneConfig: { robotUrdf: robot }, streamConfig: { width: 1280, height: 720, fps: 30, transport: 'webrtc' } };
}

describe('MANUAL sessions over real gRPC', () => {
  let neuro: NeuroProc;
  let sims: AgentProc;
  let api: Api;
  let dataDir: string;
  let grpcPort: number;

  before(async () => {
    dataDir = tempDir();
    grpcPort = await freePort();
    neuro = await startNeuro({ dataDir, grpcPort });
    sims = await startSimAgent(neuro.address, 6);
    api = client(neuro.address);
    await poolUntil(api, (s) => s.idleInstances === 6);
  });

  after(async () => {
    api?.close();
    await sims?.kill('SIGKILL');
    await neuro?.kill('SIGKILL');
  });

  it('answers the seed CreateSession example verbatim with the seed fields', async () => {
    const req = fromJson(CreateSessionRequestSchema, seedJson('create_session_request') as never);
    const res = await api.createSession(req);
    const json = toJson(CreateSessionResponseSchema, res, { useProtoFieldName: true }) as Record<string, unknown>;
    assert.equal(json.success, true);
    assert.equal(json.message, 'Session created successfully');
    assert.equal(json.session_id, 'session-123');
    assert.match(String(json.instance_id), /^isaac-sim-\d+$/);
    assert.equal(json.control_ws_url, `${(await api.getSession({ sessionId: 'session-123' })).session!.controlWsUrl}`);
    assert.match(String(json.control_ws_url), /\/control\/session-123$/);
    assert.equal(json.webrtc_signaling_url, 'ws://nexus:8080/api/webrtc/signaling/isaac-sim/session-123');
    assert.equal((json.status as Record<string, unknown>).status, 'READY');
    // Same request again: the same answer. A different one under the id: ALREADY_EXISTS.
    const again = await api.createSession(req);
    assert.equal(again.instanceId, res.instanceId);
    const err = await refused(api.createSession({ ...manual('session-123'), streamConfig: { width: 640, height: 480, fps: 30, transport: 'webrtc' } }));
    assert.equal(err.code, 'ALREADY_EXISTS');
    // The pool shows it as the seed does.
    const pool = await api.getResourcePoolStatus({ includeIsaacPool: true, includeTrainingPool: true });
    const pj = toJson(ResourcePoolStatusResponseSchema, pool, { useProtoFieldName: true }) as { isaac_pool: Record<string, unknown> };
    assert.equal(pj.isaac_pool.total_instances, 6);
    assert.equal(pj.isaac_pool.running_instances, 1);
    assert.equal(pj.isaac_pool.idle_instances, 5);
    const mine = (pj.isaac_pool.instances as Record<string, unknown>[]).find((i) => i.instance_id === res.instanceId)!;
    assert.deepEqual([mine.status, mine.session_id, mine.gpu_id], ['running', 'session-123', 'GPU-0']);
    const t = await api.terminateSession({ sessionId: 'session-123' });
    assert.equal(t.state, SessionState.TERMINATED);
    const t2 = await api.terminateSession({ sessionId: 'session-123' });
    assert.equal(t2.success, true, 'terminate is idempotent');
    await poolUntil(api, (s) => s.idleInstances === 6);
  });

  it('routes Start/StopSimulation, lists, explains and streams a session', async () => {
    await api.createSession(manual('m-watch'));
    const events: string[] = [];
    const stream = api.watchSession({ sessionId: 'm-watch' });
    const done = (async () => {
      for await (const m of stream) if (m.event) events.push(`${m.event.type}:${SessionState[m.event.state]}`);
    })();
    const started = await api.startSimulation({ sessionId: 'm-watch' });
    assert.equal(started.status?.status, 'RUNNING');
    const stopped = await api.stopSimulation({ sessionId: 'm-watch' });
    assert.equal(stopped.status?.status, 'STOPPED');
    const got = await api.getSession({ sessionId: 'm-watch' });
    assert.equal(got.session!.placements.length, 1);
    assert.ok(got.session!.placements[0]!.reason.length > 0, 'says why the instance was chosen');
    const list = await api.listSessions({ mode: SessionMode.MANUAL, state: SessionState.READY, pageSize: 10 });
    assert.ok(list.sessions.some((s) => s.sessionId === 'm-watch'));
    await api.terminateSession({ sessionId: 'm-watch', reason: 'test' });
    await done;
    assert.ok(events.includes('state:STOPPING'), events.join());
    assert.equal(events.at(-1), 'state:TERMINATED');
    assert.equal((await refused(api.startSimulation({ sessionId: 'm-watch' }))).code, 'FAILED_PRECONDITION');
    assert.equal((await refused(api.getSession({ sessionId: 'nope' }))).code, 'NOT_FOUND');
  });

  it('pages ListSessions, newest first, and filters by mode and state', async () => {
    for (const id of ['page-1', 'page-2', 'page-3']) await api.createSession(manual(id));
    const first = await api.listSessions({ mode: SessionMode.MANUAL, state: SessionState.READY, pageSize: 2 });
    assert.deepEqual(first.sessions.map((s) => s.sessionId), ['page-3', 'page-2']);
    assert.equal(first.totalSize, 3);
    assert.ok(first.nextPageToken);
    const second = await api.listSessions({ mode: SessionMode.MANUAL, state: SessionState.READY, pageSize: 2, pageToken: first.nextPageToken });
    assert.deepEqual(second.sessions.map((s) => s.sessionId), ['page-1']);
    assert.equal(second.nextPageToken, '');
    assert.equal((await api.listSessions({ mode: SessionMode.TRAINING })).totalSize, 0);
    assert.equal((await refused(api.listSessions({ pageToken: '!!' }))).code, 'INVALID_ARGUMENT');
    for (const id of ['page-1', 'page-2', 'page-3']) await api.terminateSession({ sessionId: id });
  });

  it('refuses bad input at the edge, naming the field, and changes nothing', async () => {
    const before = await api.getResourcePoolStatus({ includeIsaacPool: true });
    const cases: [string, unknown, string][] = [
      ['empty session_id', { ...manual('') }, 'session_id'],
      ['oversized session_id', { ...manual('x'.repeat(200)) }, 'session_id'],
      ['unknown mode', { ...manual('b1'), mode: 42 }, 'mode'],
      ['mode of another RPC', { ...manual('b2'), mode: SessionMode.TRAINING }, 'mode'],
      ['width out of range', { ...manual('b3'), streamConfig: { width: 100000, height: 720, fps: 30, transport: 'webrtc' } }, 'stream_config.width'],
      ['fps out of range', { ...manual('b4'), streamConfig: { width: 640, height: 480, fps: 0, transport: 'webrtc' } }, 'stream_config.fps'],
      ['path as robot', manual('b5', '../../etc/passwd'), 'scene_config.robot_urdf'],
      ['absolute path as robot', manual('b6', '/etc/robot.urdf'), 'scene_config.robot_urdf'],
      ['NUL in robot', manual('b7', 'a\0.urdf'), 'scene_config.robot_urdf'],
      ['unknown transport', { ...manual('b8'), streamConfig: { width: 640, height: 480, fps: 30, transport: 'smoke-signals' } }, 'stream_config.transport'],
    ];
    for (const [what, req, field] of cases) {
      const err = await refused(api.createSession(req as never));
      assert.equal(err.code, 'INVALID_ARGUMENT', what);
      assert.ok(err.details.fieldViolations?.some((v) => v.field === field), `${what}: ${JSON.stringify(err.details)}`);
    }
    const big = await refused(api.createSession({ ...manual('big'), labels: { k: 'v'.repeat(5 * 1024 * 1024) } }));
    assert.equal(big.code, 'RESOURCE_EXHAUSTED', 'oversized message');
    const after = await api.getResourcePoolStatus({ includeIsaacPool: true });
    assert.equal(after.isaacPool?.idleInstances, before.isaacPool?.idleInstances);
    assert.equal((await api.listSessions({})).sessions.filter((s) => s.sessionId.startsWith('b')).length, 0);
  });

  it('fails a create the simulator refuses, releases the instance and says why', async () => {
    const err = await refused(api.createSession(manual('no-robot', 'no_such_robot.urdf')));
    assert.equal(err.code, 'INVALID_ARGUMENT');
    assert.match(err.message, /no_such_robot/);
    const s = await api.getSession({ sessionId: 'no-robot' });
    assert.equal(s.session!.state, SessionState.FAILED);
    await poolUntil(api, (p) => p.idleInstances === 6);
  });

  it('serves grpc.health.v1 and reflection', async () => {
    const health = createClient(Health, neuro.address);
    const h = await health.check({ service: '' });
    assert.equal(h.status, HealthCheckResponse_ServingStatus.SERVING);
    const h2 = await health.check({ service: 'neuro.v1.NeuroOrchestratorService' });
    assert.equal(h2.status, HealthCheckResponse_ServingStatus.SERVING);
    health.close();
    const refl = createClient(ServerReflection, neuro.address);
    const call = refl.serverReflectionInfo();
    const replies: ServerReflectionResponse[] = [];
    const got = new Promise<void>((resolve, reject) => {
      call.on('data', (r: ServerReflectionResponse) => {
        replies.push(r);
        if (replies.length === 2) {
          call.end();
          resolve();
        }
      });
      call.on('error', reject);
    });
    call.write({ messageRequest: { case: 'listServices', value: '' } });
    call.write({ messageRequest: { case: 'fileContainingSymbol', value: 'neuro.v1.NeuroOrchestratorService' } });
    await got;
    const names = replies[0]!.messageResponse.case === 'listServicesResponse' ? replies[0]!.messageResponse.value.service.map((s) => s.name) : [];
    assert.ok(names.includes('neuro.v1.NeuroOrchestratorService'), names.join());
    assert.equal(replies[1]!.messageResponse.case, 'fileDescriptorResponse');
    refl.close();
  });

  it('serves metrics, healthz and readyz on the HTTP port', async () => {
    const base = `http://127.0.0.1:${neuro.httpPort}`;
    const m = await (await fetch(`${base}/metrics`)).text();
    assert.match(m, /neuro_rpc_requests_total\{method="CreateSession",code="OK"\}/);
    assert.match(m, /neuro_rpc_duration_seconds_bucket\{le="[^"]+",method="CreateSession"\}/);
    assert.match(m, /neuro_sessions\{mode="MANUAL",state="TERMINATED"\}/);
    assert.match(m, /neuro_instances\{kind="simulator",state="idle"\} 6/);
    assert.equal((await fetch(`${base}/healthz`)).status, 200);
    assert.equal((await fetch(`${base}/readyz`)).status, 200);
  });

  it('keeps what it told callers across kill -9 under traffic, and re-attaches instances', async () => {
    // Traffic: creates in flight while Neuro dies.
    const told = new Map<string, string>();
    const inflight: Promise<unknown>[] = [];
    for (let k = 0; k < 4; k++) {
      const id = `k9-${k}`;
      inflight.push(api.createSession(manual(id)).then((r) => told.set(id, r.instanceId), () => undefined));
    }
    await Promise.race([Promise.all(inflight), new Promise((r) => setTimeout(r, 30))]);
    await neuro.kill('SIGKILL');
    await Promise.allSettled(inflight);
    neuro = await startNeuro({ dataDir, grpcPort });
    api.close();
    api = client(neuro.address);
    for (const [id, inst] of told) {
      const s = (await api.getSession({ sessionId: id })).session!;
      assert.equal(s.instanceId, inst, `${id} keeps its instance`);
      assert.equal(s.state, SessionState.READY, `${id} is still ready`);
    }
    // Instances re-attach; nothing is double-allocated: sessions + idle = pool.
    await poolUntil(api, (s) => s.joiningInstances === 0 && s.totalInstances === 6);
    const pool = await api.getResourcePoolStatus({ includeIsaacPool: true });
    const running = pool.isaacPool!.instances.filter((i) => i.status === 'running');
    assert.equal(new Set(running.map((i) => i.sessionId)).size, running.length);
    const live = (await api.listSessions({ state: SessionState.READY })).sessions;
    assert.equal(running.length, live.length);
    // A retry of a create whose answer was lost gets a session, not an error.
    for (let k = 0; k < 4; k++) {
      const id = `k9-${k}`;
      if (told.has(id)) continue;
      const r = await api.createSession(manual(id));
      assert.equal(r.success, true);
    }
    for (let k = 0; k < 4; k++) await api.terminateSession({ sessionId: `k9-${k}` });
    await poolUntil(api, (s) => s.idleInstances === 6);
  });

  it('fails the sessions of a simulator agent that dies, and counts it unhealthy', async () => {
    const extra = await startSimAgent(neuro.address, 2, ['--id-prefix', 'doomed-', '--zone', 'zone-b']);
    await poolUntil(api, (s) => s.idleInstances === 8);
    await api.createSession({ ...manual('doomed-1'), labels: {} });
    const sessions: string[] = [];
    // Fill the pool so a session lands on the doomed agent.
    for (let k = 0; k < 7; k++) {
      await api.createSession(manual(`fill-${k}`));
      sessions.push(`fill-${k}`);
    }
    await extra.kill('SIGKILL');
    const pool = await poolUntil(api, (s) => s.unhealthyInstances === 2);
    assert.equal(pool.sims.unhealthyInstances, 2);
    const all = [...sessions, 'doomed-1'];
    const states = await Promise.all(all.map(async (id) => (await api.getSession({ sessionId: id })).session!));
    const failed = states.filter((s) => s.state === SessionState.FAILED);
    assert.equal(failed.length, 2, 'the two sessions on the dead agent failed');
    assert.ok(failed.every((s) => s.instanceId.startsWith('doomed-') && /missed heartbeats/.test(s.failureReason)));
    for (const id of all) await api.terminateSession({ sessionId: id });
    await poolUntil(api, (s) => s.idleInstances === 6 && s.unhealthyInstances === 2);
  });

  it('stops gracefully on SIGTERM with exit code 0', async () => {
    const other = await startNeuro();
    assert.equal(await other.kill('SIGTERM'), 0);
    assert.match(other.output(), /"msg":"stopped"/);
  });
});

describe('TLS on the gRPC port', () => {
  it('serves over TLS with the configured certificate', async () => {
    const dir = tempDir('neuro-tls-');
    const key = join(dir, 'key.pem');
    const cert = join(dir, 'cert.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], {
      stdio: 'ignore',
    });
    const neuro = await startNeuro({ env: { NEURO_TLS_CERT: cert, NEURO_TLS_KEY: key } });
    try {
      const tls = createClient(NeuroOrchestratorService, neuro.address, { credentials: grpc.credentials.createSsl(readFileSync(cert)) });
      const res = await tls.getResourcePoolStatus({});
      assert.equal(res.success, true);
      tls.close();
      const plain = client(neuro.address);
      assert.equal((await refused(plain.getResourcePoolStatus({}))).code, 'UNAVAILABLE', 'plaintext is refused');
      plain.close();
    } finally {
      await neuro.kill('SIGKILL');
    }
  });
});

describe('authentication', () => {
  it('needs the caller token on the API and the instance token on the registry', async () => {
    const neuro = await startNeuro({ env: { NEURO_TOKEN: 'caller-secret', NEURO_INSTANCE_TOKEN: 'instance-secret' } });
    const wrongAgent = await startSimAgent(neuro.address, 1, ['--id-prefix', 'wrong-'], { NEURO_INSTANCE_TOKEN: 'nope' });
    const agent = await startSimAgent(neuro.address, 2, [], { NEURO_INSTANCE_TOKEN: 'instance-secret' });
    try {
      const anon = client(neuro.address);
      const e1 = await refused(anon.getResourcePoolStatus({}));
      assert.equal(e1.code, 'UNAUTHENTICATED');
      const wrong = client(neuro.address, 'wrong');
      assert.equal((await refused(wrong.getResourcePoolStatus({}))).code, 'UNAUTHENTICATED');
      const good = client(neuro.address, 'caller-secret');
      const pool = await poolUntil(good, (s) => s.idleInstances === 2);
      assert.ok(pool.sims.instances.every((i) => !i.instanceId.startsWith('wrong-')), 'an instance with a bad token never joins');
      // The caller token does not open the registry.
      const { InstanceRegistryService } = await import('../gen/neuro/v1/registry_pb.js');
      const md = new grpc.Metadata();
      md.set('authorization', 'Bearer caller-secret');
      const reg = createClient(InstanceRegistryService, neuro.address, { metadata: md });
      assert.equal((await refused(reg.deregister({ instanceIds: ['isaac-sim-1'] }))).code, 'UNAUTHENTICATED');
      reg.close();
      anon.close();
      wrong.close();
      good.close();
    } finally {
      await wrongAgent.kill('SIGKILL');
      await agent.kill('SIGKILL');
      await neuro.kill('SIGKILL');
    }
  });
});
