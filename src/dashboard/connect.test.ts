/**
 * The public API over Connect (JSON) and gRPC-Web on the HTTP port, and the dashboard's static files:
 * a real Neuro (in this process) with a real simulator agent process, real HTTP.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { Code, ConnectError, createClient, type Client } from '@connectrpc/connect';
import { createConnectTransport, createGrpcWebTransport } from '@connectrpc/connect-node';
import { BadRequestSchema, ErrorInfoSchema } from '../gen/google/rpc/error_details_pb.js';
import { SessionMode } from '../gen/neuro/v1/common_pb.js';
import { NeuroOrchestratorService } from '../gen/neuro/v1/neuro_orchestrator_pb.js';
import { loadConfig } from '../server/config.js';
import { createDashboardHandler } from '../server/dashboard.js';
import { startNeuroWithDashboard, type DashboardNeuro } from './testing/serve.js';
import { startSimAgent, tempDir, type AgentProc } from '../testing/processes.js';

type Api = Client<typeof NeuroOrchestratorService>;

function config(token = '') {
  const c = loadConfig({ env: {}, overrides: { dataDir: tempDir(), callerToken: token, heartbeatIntervalMs: 200, heartbeatGraceMs: 1200, logLevel: 'warn' } });
  c.grpc.host = '127.0.0.1';
  c.grpc.port = 0;
  c.http = { host: '127.0.0.1', port: 0 };
  c.advertiseAddress = '127.0.0.1:0';
  return c;
}

function connectApi(port: number, token?: string): Api {
  return createClient(
    NeuroOrchestratorService,
    createConnectTransport({
      baseUrl: `http://127.0.0.1:${port}`,
      httpVersion: '1.1',
      interceptors: token ? [(next) => (req) => (req.header.set('authorization', `Bearer ${token}`), next(req))] : [],
    }),
  );
}

async function refused(p: Promise<unknown>): Promise<ConnectError> {
  try {
    await p;
  } catch (e) {
    return ConnectError.from(e);
  }
  assert.fail('the call succeeded');
}

function get(port: number, path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('Connect and gRPC-Web on the HTTP port', () => {
  let neuro: DashboardNeuro;
  let sims: AgentProc;
  let api: Api;
  const observed: string[] = [];

  before(async () => {
    neuro = await startNeuroWithDashboard(config());
    sims = await startSimAgent(`127.0.0.1:${neuro.server.grpcPort}`, 4);
    api = connectApi(neuro.dashboardPort);
    // The pool, as the dashboard sees it: wait for the agent's instances over the Connect stream itself.
    const ac = new AbortController();
    const t = setTimeout(() => ac.abort(), 20_000);
    for await (const m of api.watchResourcePool({ includeIsaacPool: true }, { signal: ac.signal })) {
      if ((m.isaacPool?.idleInstances ?? 0) === 4) break;
    }
    clearTimeout(t);
    ac.abort();
  });

  after(async () => {
    await sims?.kill('SIGKILL');
    await neuro?.stop();
  });

  it('answers unary calls in Connect JSON, as the gRPC port does', async () => {
    const r = await api.getResourcePoolStatus({ includeIsaacPool: true, includeTrainingPool: true });
    assert.equal(r.success, true);
    assert.equal(r.isaacPool?.totalInstances, 4);
    assert.equal(r.isaacPool?.instances.length, 4);
    // Plain JSON with the proto field names, as curl would send it.
    const res = await fetch(`http://127.0.0.1:${neuro.dashboardPort}/neuro.v1.NeuroOrchestratorService/GetResourcePoolStatus`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ include_isaac_pool: true, summary_only: true }),
    });
    assert.equal(res.status, 200);
    const json = (await res.json()) as { isaacPool: { totalInstances: number; instances?: unknown[] } };
    assert.equal(json.isaacPool.totalInstances, 4);
    assert.equal(json.isaacPool.instances, undefined);
  });

  it('answers gRPC-Web clients too', async () => {
    const web = createClient(NeuroOrchestratorService, createGrpcWebTransport({ baseUrl: `http://127.0.0.1:${neuro.dashboardPort}`, httpVersion: '1.1' }));
    const r = await web.getResourcePoolStatus({ summaryOnly: true });
    assert.equal(r.isaacPool?.idleInstances, 4);
  });

  it('keeps the error code and its google.rpc details', async () => {
    const nf = await refused(api.getSession({ sessionId: 'nope' }));
    assert.equal(nf.code, Code.NotFound);
    assert.equal(nf.findDetails(ErrorInfoSchema)[0]?.reason, 'SESSION_NOT_FOUND');
    assert.equal(nf.findDetails(ErrorInfoSchema)[0]?.domain, 'neuro.robotics');
    const bad = await refused(
      api.createTrainingSession({
        sessionId: 'bad-1',
        mode: SessionMode.TRAINING,
        sceneConfig: { robotUrdf: 'franka_panda.urdf' },
        trainingConfig: { algorithm: 'PPO', totalEpisodes: 10, parallelEnvs: 3 },
        resourceRequirements: { trainingGpus: 1, trainingMemoryGb: 1, isaacSimInstances: 2 },
      }),
    );
    assert.equal(bad.code, Code.InvalidArgument);
    const fields = bad.findDetails(BadRequestSchema).flatMap((b) => b.fieldViolations.map((v) => v.field));
    assert.ok(fields.includes('training_config.parallel_envs'), `violations name the field: ${fields.join(', ')}`);
    const ex = await refused(api.createTrainingSession({ sessionId: 'big-1', mode: SessionMode.TRAINING, sceneConfig: { robotUrdf: 'franka_panda.urdf' }, trainingConfig: { algorithm: 'PPO', totalEpisodes: 10, parallelEnvs: 2 }, resourceRequirements: { trainingGpus: 4, trainingMemoryGb: 8, isaacSimInstances: 2 } }));
    assert.equal(ex.code, Code.ResourceExhausted, ex.message);
  });

  it('streams pool changes live and stops the handler when the client goes away', async () => {
    const ac = new AbortController();
    const stream = api.watchResourcePool({ includeIsaacPool: true, includeTrainingPool: true }, { signal: ac.signal });
    const it = stream[Symbol.asyncIterator]();
    const first = await it.next();
    assert.equal(first.value?.snapshot, true);
    assert.equal(first.value?.isaacPool?.instances.length, 4);
    const created = await api.createSession({ sessionId: 'connect-1', mode: SessionMode.MANUAL, sceneConfig: { robotUrdf: 'franka_panda.urdf' }, streamConfig: { width: 640, height: 480, fps: 30, transport: 'webrtc' } });
    assert.match(created.controlWsUrl, /\/control\/connect-1$/);
    let seen = false;
    const deadline = Date.now() + 10_000;
    while (!seen && Date.now() < deadline) {
      const m = await it.next();
      assert.equal(m.done, false);
      seen = m.value!.changed.some((i) => i.instanceId === created.instanceId && i.sessionId === 'connect-1');
    }
    assert.ok(seen, 'the allocated instance arrives in a change message');
    ac.abort();
    await assert.rejects(it.next(), (e: unknown) => ConnectError.from(e).code === Code.Canceled);
    // WatchSession: the snapshot, then the termination's events, then the stream ends by itself.
    const events: string[] = [];
    const watching = (async () => {
      for await (const m of api.watchSession({ sessionId: 'connect-1' })) {
        events.push(m.event ? `${m.event.type}:${m.event.message}` : 'snapshot');
        if (events.length === 1) await api.terminateSession({ sessionId: 'connect-1', reason: 'test' });
      }
    })();
    await watching;
    assert.equal(events[0], 'snapshot');
    assert.ok(events.length >= 2, events.join(' | '));
  });

  it('serves the dashboard without shadowing metrics and health', async () => {
    const dir = tempDir('dash-static-');
    mkdirSync(join(dir, 'assets'));
    writeFileSync(join(dir, 'index.html'), `<!doctype html><div id="app"></div>${' '.repeat(2000)}`);
    writeFileSync(join(dir, 'assets', 'index-abc.js'), 'console.log(1)');
    writeFileSync(join(dir, 'favicon.svg'), '<svg/>');
    const handler = createDashboardHandler({ dir });
    const srv = http.createServer(async (req, res) => {
      if (await handler(req, res)) return;
      res.writeHead(404);
      res.end('fallthrough');
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    const port = (srv.address() as { port: number }).port;
    try {
      const index = await get(port, '/', { 'accept-encoding': 'gzip' });
      assert.equal(index.status, 200);
      assert.equal(index.headers['content-encoding'], 'gzip');
      assert.match(gunzipSync(index.body).toString(), /id="app"/);
      assert.equal(index.headers['cache-control'], 'no-cache');
      assert.match(String(index.headers['content-security-policy']), /default-src 'self'/);
      const again = await get(port, '/', { 'if-none-match': String(index.headers.etag) });
      assert.equal(again.status, 304);
      const asset = await get(port, '/assets/index-abc.js');
      assert.equal(asset.status, 200);
      assert.match(String(asset.headers['content-type']), /javascript/);
      assert.match(String(asset.headers['cache-control']), /immutable/);
      assert.equal((await get(port, '/favicon.svg')).status, 200);
      assert.equal((await get(port, '/favicon.svg', {}, 'HEAD')).body.length, 0);
      for (const path of ['/metrics', '/healthz', '/readyz', '/assets/missing.js', '/assets/../../etc/passwd', '/%2e%2e/%2e%2e/etc/passwd', '/neuro.v1.NeuroOrchestratorService/GetSession']) {
        const r = await get(port, path);
        assert.equal(r.body.toString(), 'fallthrough', `${path} is left to the other routes`);
      }
      assert.equal((await get(port, '/', {}, 'POST')).body.toString(), 'fallthrough');
      // Not built yet: the page says how to build it.
      const empty = createDashboardHandler({ dir: tempDir('dash-empty-') });
      const srv2 = http.createServer(async (req, res) => void (await empty(req, res)));
      await new Promise<void>((r) => srv2.listen(0, '127.0.0.1', () => r()));
      const r = await get((srv2.address() as { port: number }).port, '/');
      srv2.close();
      assert.equal(r.status, 503);
      assert.match(r.body.toString(), /npm run build/);
    } finally {
      srv.close();
    }
  });
});

describe('the Connect endpoint with a caller token', () => {
  let neuro: DashboardNeuro;

  before(async () => {
    neuro = await startNeuroWithDashboard(config('s3cret'));
  });

  after(async () => {
    await neuro?.stop();
  });

  it('refuses calls without the token, or with a wrong one (UNAUTHENTICATED), and serves the right one', async () => {
    const none = await refused(connectApi(neuro.dashboardPort).getResourcePoolStatus({}));
    assert.equal(none.code, Code.Unauthenticated);
    assert.equal(none.findDetails(ErrorInfoSchema)[0]?.reason, 'TOKEN_MISSING');
    const wrong = await refused(connectApi(neuro.dashboardPort, 'guess').getResourcePoolStatus({}));
    assert.equal(wrong.code, Code.Unauthenticated);
    assert.equal(wrong.findDetails(ErrorInfoSchema)[0]?.reason, 'TOKEN_INVALID');
    const stream = await refused(
      (async () => {
        for await (const _ of connectApi(neuro.dashboardPort).watchResourcePool({})) break;
      })(),
    );
    assert.equal(stream.code, Code.Unauthenticated);
    const raw = await fetch(`http://127.0.0.1:${neuro.dashboardPort}/neuro.v1.NeuroOrchestratorService/ListSessions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    assert.equal(raw.status, 401);
    assert.equal(((await raw.json()) as { code: string }).code, 'unauthenticated');
    const ok = await connectApi(neuro.dashboardPort, 's3cret').getResourcePoolStatus({});
    assert.equal(ok.success, true);
  });
});
