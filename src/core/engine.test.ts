import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Engine } from './engine.js';
import { NeuroError } from './errors.js';
import { statusOf } from './model.js';
import { gangRequest, manualRequest, simSpec, trainerSpec } from '../testing/fixtures.js';

function engineWith(sims: number, trainers: number, now = 0): Engine {
  const e = new Engine({ heartbeatGraceMs: 3000 });
  e.register(
    Array.from({ length: sims }, (_, k) => simSpec(k + 1)),
    now,
  );
  e.register(
    Array.from({ length: trainers }, (_, k) => trainerSpec(k + 1)),
    now,
  );
  beatAll(e, now);
  return e;
}

function beatAll(e: Engine, now: number, except: string[] = []): void {
  const beats = [...e.pool.instances.values()]
    .filter((i) => !except.includes(i.spec.id))
    .map((i) => ({ instanceId: i.spec.id, sessions: i.sessionId ? [{ sessionId: i.sessionId, epoch: i.epoch }] : [], fps: 0, gpuUtilization: 0, warmRobots: i.warm }));
  e.heartbeat(beats, now);
}

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return (err as NeuroError).code;
  }
  return 'OK';
}

describe('Engine', () => {
  it('gives a MANUAL session one idle simulator and its control URL', () => {
    const e = engineWith(2, 0);
    const s = e.create(manualRequest('s1'), 1);
    assert.equal(s.state, 'INITIALIZING');
    assert.equal(s.simulators.length, 1);
    const sim = e.pool.get(s.simulators[0]!)!;
    assert.equal(sim.sessionId, 's1');
    assert.equal(statusOf(sim), 'running');
    assert.equal(s.controlUrls[sim.spec.id], `${sim.spec.controlWsBase}/control/s1`);
    e.acknowledge('s1', 2, { status: 'READY', fps: 0, gpuUtilization: 1 });
    assert.equal(s.state, 'READY');
    assert.equal(s.placements[0]!.instanceId, sim.spec.id);
  });

  it('never gives joining, unhealthy or draining instances', () => {
    const e = new Engine();
    e.register([simSpec(1), simSpec(2), simSpec(3)], 0);
    assert.equal(code(() => e.create(manualRequest('a'), 0)), 'RESOURCE_EXHAUSTED', 'joining instances are not allocatable');
    beatAll(e, 0);
    e.drain('isaac-sim-1', true);
    e.sweep(0);
    beatAll(e, 4000, ['isaac-sim-2']);
    e.sweep(4000);
    assert.equal(statusOf(e.pool.get('isaac-sim-2')!), 'unhealthy');
    const s = e.create(manualRequest('b'), 4000);
    assert.deepEqual(s.simulators, ['isaac-sim-3']);
    assert.equal(code(() => e.create(manualRequest('c'), 4000)), 'RESOURCE_EXHAUSTED');
  });

  it('gang-allocates a trainer and N simulators, preferring the trainer host, or nothing', () => {
    const e = new Engine();
    // trainer-1 on host-1 with sims 1-4 (host-1), sims 5-8 on host-2.
    e.register([1, 2, 3, 4, 5, 6, 7, 8].map((n) => simSpec(n)), 0);
    e.register([trainerSpec(2, { host: 'host-2' })], 0);
    beatAll(e, 0);
    const s = e.create(gangRequest('g1', 4), 1);
    assert.equal(s.trainer, 'training-2');
    assert.deepEqual([...s.simulators].sort(), ['isaac-sim-5', 'isaac-sim-6', 'isaac-sim-7', 'isaac-sim-8']);
    assert.ok(s.placements.every((p) => p.role === 'trainer' || p.reason.startsWith('same host')));
    assert.equal(new Set(s.channels.map((c) => c.endpoint)).size, 4);
    const before = JSON.stringify([...e.pool.instances.values()]);
    assert.throws(() => e.create(gangRequest('g2', 5), 2), (err: NeuroError) => err.code === 'RESOURCE_EXHAUSTED' && /need 5 idle simulators, 4 idle/.test(err.message) && /trainer/.test(err.message));
    assert.equal(JSON.stringify([...e.pool.instances.values()]), before, 'a failed create holds nothing');
  });

  it('says what is missing when no trainer is big enough', () => {
    const e = engineWith(4, 1);
    assert.throws(
      () => e.create(gangRequest('g', 2, {}, 8), 1),
      (err: NeuroError) => err.code === 'RESOURCE_EXHAUSTED' && err.message.includes('need a trainer with 8 GPUs and 32 GB, largest idle has 4 GPUs'),
    );
  });

  it('treats a retry as the same create and a different request as ALREADY_EXISTS', () => {
    const e = engineWith(2, 0);
    const s = e.create(manualRequest('x'), 1);
    assert.equal(e.existing(manualRequest('x')), s);
    assert.equal(code(() => e.existing(manualRequest('x', { labels: { gpu: 'a100' } }))), 'ALREADY_EXISTS');
  });

  it('releases everything however a session ends', () => {
    const e = engineWith(4, 1);
    const g = e.create(gangRequest('g', 3), 1);
    e.acknowledge('g', 1);
    e.report('training-1', 'g', g.epoch, { progress: null, channelsConnected: true, completed: false, failure: '', control: null }, 2);
    assert.equal(g.state, 'RUNNING');
    const effects = e.report('training-1', 'g', g.epoch, { progress: null, channelsConnected: false, completed: true, failure: '', control: null }, 3).effects;
    assert.equal(g.state, 'COMPLETED');
    assert.equal(effects.filter((x) => x.kind === 'destroy-simulator').length, 3);
    assert.ok([...e.pool.instances.values()].every((i) => i.sessionId === null));
    // Terminate path.
    const m = e.create(manualRequest('m'), 4);
    e.beginTerminate('m', 'done', 5);
    assert.equal(m.state, 'STOPPING');
    assert.ok(e.pool.get(m.simulators[0]!)!.sessionId, 'held until the stop was sent');
    e.finishTerminate('m', 6);
    assert.equal(m.state, 'TERMINATED');
    assert.equal(e.pool.get(m.simulators[0]!)!.sessionId, null);
    assert.deepEqual(e.beginTerminate('m', '', 7).effects, [], 'terminate is idempotent');
  });

  it('fails the session of an instance that misses heartbeats and releases the rest', () => {
    const e = engineWith(4, 1);
    const g = e.create(gangRequest('g', 2), 0);
    e.acknowledge('g', 0);
    const dead = g.simulators[0]!;
    beatAll(e, 2000, [dead]);
    e.sweep(3500);
    assert.equal(g.state, 'FAILED');
    assert.match(g.failureReason, new RegExp(`${dead} missed heartbeats`));
    assert.equal(statusOf(e.pool.get(dead)!), 'unhealthy');
    assert.ok(e.heldIds(g).every((id) => e.pool.get(id)!.sessionId === null));
    // It comes back: idle again, and told to stop the session Neuro ended.
    const { directives } = e.heartbeat([{ instanceId: dead, sessions: [{ sessionId: 'g', epoch: g.epoch }], fps: 0, gpuUtilization: 0, warmRobots: [] }], 4000);
    assert.equal(statusOf(e.pool.get(dead)!), 'idle');
    assert.deepEqual(directives[0]!.stop.map((s) => s.sessionId), ['g']);
  });

  it('fails a session the instance no longer reports', () => {
    const e = engineWith(1, 0);
    const s = e.create(manualRequest('m'), 0);
    e.acknowledge('m', 0, { status: 'READY', fps: 0, gpuUtilization: 0 });
    const none = [{ instanceId: 'isaac-sim-1', sessions: [], fps: 0, gpuUtilization: 0, warmRobots: [] }];
    e.heartbeat(none, 1000);
    e.heartbeat(none, 2000);
    assert.equal(s.state, 'READY', 'beats from before the instance accepted may arrive late: ignored within the grace');
    e.heartbeat(none, 4000);
    assert.equal(s.state, 'READY', 'one missed beat may be a race');
    e.heartbeat(none, 5000);
    assert.equal(s.state, 'FAILED');
  });

  it('raises the epoch with every allocation', () => {
    const e = engineWith(2, 0);
    const a = e.create(manualRequest('a'), 0);
    const b = e.create(manualRequest('b'), 0);
    assert.ok(b.epoch > a.epoch);
    assert.equal(e.pool.get(b.simulators[0]!)!.epoch, b.epoch);
  });

  it('arbitrates control of a HYBRID simulator', () => {
    const e = engineWith(3, 1);
    const h = e.create(gangRequest('h', 2, { mode: 'HYBRID', hybrid: { initialController: 'ai', recordDemonstrations: true, idleTimeoutSeconds: 60, allowForceTakeover: false } }), 0);
    const sim = h.simulators[0]!;
    e.takeControl('h', sim, 'alice', false, 1);
    assert.equal(h.controllers[sim]!.controller, 'alice');
    assert.throws(() => e.takeControl('h', sim, 'bob', false, 2), (err: NeuroError) => err.code === 'FAILED_PRECONDITION' && err.message.includes('alice'));
    assert.throws(() => e.takeControl('h', sim, 'bob', true, 2), (err: NeuroError) => err.code === 'PERMISSION_DENIED');
    e.releaseControl('h', sim, 'alice', 3);
    assert.equal(h.controllers[sim]!.controller, 'ai');
    const m = e.create(manualRequest('m'), 0);
    assert.equal(code(() => e.takeControl(m.id, m.simulators[0]!, 'alice', false, 1)), 'FAILED_PRECONDITION');
  });

  it('does not grow its candidate scan with the pool', () => {
    const e = new Engine();
    e.register(Array.from({ length: 20000 }, (_, k) => simSpec(k + 1)), 0);
    beatAll(e, 0);
    const s = e.create(manualRequest('big'), 1);
    assert.ok(s.placements[0]!.candidatesConsidered <= e.opts.scheduler.candidateLimit);
  });
});
