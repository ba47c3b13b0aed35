/**
 * The `neuro` command as a person uses it, against a real Neuro and real agents: tables by default,
 * proto3 JSON with --json, the training watch with its progress bar, and driving a HYBRID simulator
 * from the keyboard (keys piped in).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { BIN, client, poolUntil, startNeuro, startSimAgent, startTrainerAgent, type AgentProc, type Api, type NeuroProc } from '../testing/processes.js';

function cli(address: string, args: string[], input?: string): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, '--address', address, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('exit', (code) => resolve({ code: code ?? -1, out, err }));
    if (input !== undefined) child.stdin.end(input);
    else child.stdin.end();
  });
}

describe('the neuro CLI', () => {
  let neuro: NeuroProc;
  let sims: AgentProc;
  let trainers: AgentProc;
  let api: Api;

  before(async () => {
    neuro = await startNeuro();
    [sims, trainers] = await Promise.all([startSimAgent(neuro.address, 4, ['--zmq-port-base', '25000']), startTrainerAgent(neuro.address, 1)]);
    api = client(neuro.address);
    await poolUntil(api, (s, t) => s.idleInstances === 4 && t.idleInstances === 1);
  });

  after(async () => {
    api?.close();
    await Promise.all([sims?.kill('SIGKILL'), trainers?.kill('SIGKILL')]);
    await neuro?.kill('SIGKILL');
  });

  it('shows the pools as a table and as JSON', async () => {
    const t = await cli(neuro.address, ['pool', 'status']);
    assert.equal(t.code, 0, t.err);
    assert.match(t.out, /simulators: 4 total, 4 idle, 0 running/);
    assert.match(t.out, /INSTANCE\s+STATUS\s+HOST\s+GPUS\s+SESSION\s+PAIRED/);
    const j = await cli(neuro.address, ['--json', 'pool', 'status']);
    const parsed = JSON.parse(j.out) as { isaac_pool: { total_instances: number; instances: { instance_id: string }[] } };
    assert.equal(parsed.isaac_pool.total_instances, 4);
    assert.ok(parsed.isaac_pool.instances.every((i) => i.instance_id.startsWith('isaac-sim-')));
  });

  it('creates, shows, lists and terminates a MANUAL session; reports errors with the field', async () => {
    const c = await cli(neuro.address, ['session', 'create', '--id', 'cli-1']);
    assert.equal(c.code, 0, c.err);
    assert.match(c.out, /control: ws:\/\/.*\/control\/cli-1/);
    const g = await cli(neuro.address, ['session', 'get', 'cli-1']);
    assert.match(g.out, /state\s+ready/);
    assert.match(g.out, /placement\n\s+simulator/);
    const l = await cli(neuro.address, ['session', 'list', '--mode', 'MANUAL']);
    assert.match(l.out, /cli-1\s+MANUAL\s+ready/);
    const t = await cli(neuro.address, ['session', 'terminate', 'cli-1']);
    assert.match(t.out, /terminated/);
    const bad = await cli(neuro.address, ['session', 'create', '--id', 'cli-2', '--width', '99999']);
    assert.equal(bad.code, 1);
    assert.match(bad.err, /INVALID_ARGUMENT[\s\S]*stream_config\.width/);
  });

  it('trains, watching progress to completion', async () => {
    const t = await cli(neuro.address, ['session', 'train', '--id', 'cli-train', '--robot', 'two_link_arm.urdf', '--total-episodes', '60', '--parallel-envs', '2', '--isaac-sim-instances', '2']);
    assert.equal(t.code, 0, t.err);
    assert.match(t.out, /tcp:\/\/127\.0\.0\.1:\d+\s+REQ-REP/);
    const w = await cli(neuro.address, ['session', 'watch', 'cli-train']);
    assert.equal(w.code, 0, w.err);
    assert.match(w.out, /\[[#.]+\]\s+\d+% \d+\/60 episodes\s+reward -?\d/);
    // Watched from the start or after the end (the run is short): either way it ends completed.
    assert.match(w.out, /state completed: training completed|cli-train: completed/);
  });

  it('takes a HYBRID simulator over and drives it from the keyboard', async () => {
    const h = await cli(neuro.address, ['session', 'hybrid', '--id', 'cli-h', '--robot', 'two_link_arm.urdf', '--total-episodes', '100000', '--parallel-envs', '2', '--isaac-sim-instances', '2']);
    assert.equal(h.code, 0, h.err);
    const sim = /take one over: neuro control drive cli-h (\S+)/.exec(h.out)![1]!;
    const d = await cli(neuro.address, ['control', 'drive', 'cli-h', sim, '--user', 'alice', '--take'], '1wwwws2ss q');
    assert.equal(d.code, 0, d.err);
    assert.match(d.out, /sent 8 actions; controller alice; demonstrations 8/);
    const s = (await api.getSession({ sessionId: 'cli-h' })).session!;
    assert.equal(s.controllers.find((c) => c.isaacInstanceId === sim)?.controller, 'ai', 'released on quit');
    const take = await cli(neuro.address, ['control', 'take', 'cli-h', sim, '--user', 'bob']);
    assert.match(take.out, /bob controls/);
    const second = await cli(neuro.address, ['control', 'take', 'cli-h', sim, '--user', 'carol']);
    assert.equal(second.code, 1);
    assert.match(second.err, /FAILED_PRECONDITION CONTROL_HELD: .*bob/);
    const rel = await cli(neuro.address, ['control', 'release', 'cli-h', sim, '--user', 'bob']);
    assert.match(rel.out, /the AI controls/);
    await cli(neuro.address, ['session', 'terminate', 'cli-h']);
  });
});
