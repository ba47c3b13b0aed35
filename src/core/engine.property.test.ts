/**
 * Model-based property test of the engine and its store: random sequences of creates (MANUAL and gang),
 * retries, terminates, completions, heartbeats, instance deaths and revivals, and Neuro restarts (the
 * engine rebuilt from a real SQLite file) — checking the spec's invariants 1-6 after every step.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine } from './engine.js';
import { NeuroError } from './errors.js';
import { isLive, type CreateRequest } from './model.js';
import { SqliteStore } from '../store/sqlite.js';
import { gangRequest, manualRequest, simSpec, trainerSpec } from '../testing/fixtures.js';

const SIMS = 8;
const TRAINERS = 2;
const GRACE = 3000;

interface Real {
  engine: Engine;
  store: SqliteStore;
  path: string;
  now: number;
  /** Instances that stopped heartbeating. */
  dead: Set<string>;
}

interface Model {
  /** Sessions whose create the caller was told succeeded: id → request and allocation. */
  told: Map<string, { req: CreateRequest; held: string[] }>;
}

function commit(r: Real): void {
  r.store.commit(r.engine.takeChanges());
}

function beat(r: Real): void {
  const beats = [...r.engine.pool.instances.values()]
    .filter((i) => !r.dead.has(i.spec.id))
    .map((i) => ({ instanceId: i.spec.id, sessions: i.sessionId ? [{ sessionId: i.sessionId, epoch: i.epoch }] : [], fps: 0, gpuUtilization: 0, warmRobots: [] }));
  r.engine.heartbeat(beats, r.now);
  commit(r);
}

/** Invariants 1, 2, 3 and 6, on the whole state. */
function checkInvariants(e: Engine): void {
  const owner = new Map<string, string>();
  for (const s of e.sessions.values()) {
    if (!isLive(s)) continue;
    const held = e.heldIds(s);
    if (s.mode !== 'MANUAL') {
      assert.ok(s.trainer, `gang ${s.id} holds a trainer`);
      assert.equal(s.simulators.length, s.request.requirements!.simulators, `gang ${s.id} holds all N simulators`);
      assert.equal(new Set(s.channels.map((c) => c.endpoint)).size, s.channels.length, 'no endpoint twice');
    }
    for (const id of held) {
      assert.ok(!owner.has(id), `instance ${id} in ${owner.get(id)} and ${s.id}`);
      owner.set(id, s.id);
      assert.equal(e.pool.get(id)?.sessionId, s.id, `instance ${id} points at its session ${s.id}`);
      assert.equal(e.pool.get(id)?.epoch, s.epoch);
    }
  }
  for (const i of e.pool.instances.values()) {
    if (i.sessionId) assert.equal(owner.get(i.spec.id), i.sessionId, `${i.spec.id} is held only by a live session`);
  }
  // Live endpoints are unique across sessions too.
  const endpoints = [...e.sessions.values()].filter(isLive).flatMap((s) => s.channels.map((c) => c.endpoint));
  assert.equal(new Set(endpoints).size, endpoints.length, 'no port held twice');
}

type Cmd = fc.Command<Model, Real>;

class Create implements Cmd {
  constructor(readonly id: string, readonly gang: number, readonly gpus: number) {}
  req(): CreateRequest {
    return this.gang ? gangRequest(this.id, this.gang, {}, this.gpus) : manualRequest(this.id);
  }
  check() {
    return true;
  }
  run(m: Model, r: Real) {
    const req = this.req();
    const before = m.told.get(this.id);
    let existing;
    try {
      existing = r.engine.existing(req);
    } catch (e) {
      assert.equal((e as NeuroError).code, 'ALREADY_EXISTS');
      assert.ok(before ? before.req.sessionId === this.id : true);
      commit(r);
      return;
    }
    if (existing) {
      // Invariant 4: the retry sees the same session and allocation.
      if (before) assert.deepEqual(r.engine.heldIds(existing), before.held);
      commit(r);
      return;
    }
    const deadFree = [...r.engine.pool.instances.values()].filter((i) => r.dead.has(i.spec.id) && i.health === 'unhealthy').map((i) => i.spec.id);
    try {
      const s = r.engine.create(req, r.now);
      for (const id of r.engine.heldIds(s)) assert.ok(!deadFree.includes(id), `unhealthy ${id} allocated`);
      commit(r);
      r.engine.acknowledge(s.id, r.now, { status: 'READY', fps: 0, gpuUtilization: 0 });
      commit(r);
      m.told.set(s.id, { req, held: r.engine.heldIds(s) });
    } catch (e) {
      assert.equal((e as NeuroError).code, 'RESOURCE_EXHAUSTED', String(e));
      commit(r);
    }
  }
  toString() {
    return `create(${this.id}, ${this.gang || 'manual'}${this.gang ? `, ${this.gpus} GPUs` : ''})`;
  }
}

/** A create that Neuro crashed in the middle of: allocated and stored, the instances never answered. */
class CreateUnanswered implements Cmd {
  constructor(readonly id: string) {}
  check() {
    return true;
  }
  run(_m: Model, r: Real) {
    const req = manualRequest(this.id);
    try {
      if (r.engine.existing(req)) return;
      r.engine.create(req, r.now);
    } catch {
      // ALREADY_EXISTS or exhausted: nothing was held.
    }
    commit(r);
  }
  toString() {
    return `createUnanswered(${this.id})`;
  }
}

class Terminate implements Cmd {
  constructor(readonly id: string) {}
  check() {
    return true;
  }
  run(_m: Model, r: Real) {
    if (!r.engine.get(this.id)) return;
    r.engine.beginTerminate(this.id, 'test', r.now);
    commit(r);
    r.engine.finishTerminate(this.id, r.now);
    commit(r);
    const s = r.engine.get(this.id)!;
    assert.ok(!isLive(s));
    for (const id of r.engine.heldIds(s)) assert.notEqual(r.engine.pool.get(id)?.sessionId, this.id, 'released on terminate');
  }
  toString() {
    return `terminate(${this.id})`;
  }
}

class Complete implements Cmd {
  constructor(readonly id: string) {}
  check() {
    return true;
  }
  run(_m: Model, r: Real) {
    const s = r.engine.get(this.id);
    if (!s || !s.trainer || !isLive(s)) return;
    r.engine.report(s.trainer, s.id, s.epoch, { progress: null, channelsConnected: true, completed: false, failure: '', control: null }, r.now);
    r.engine.report(s.trainer, s.id, s.epoch, { progress: null, channelsConnected: false, completed: true, failure: '', control: null }, r.now);
    commit(r);
    assert.equal(s.state, 'COMPLETED');
  }
  toString() {
    return `complete(${this.id})`;
  }
}

class Kill implements Cmd {
  constructor(readonly instance: string) {}
  check() {
    return true;
  }
  run(_m: Model, r: Real) {
    r.dead.add(this.instance);
  }
  toString() {
    return `kill(${this.instance})`;
  }
}

class Revive implements Cmd {
  constructor(readonly instance: string) {}
  check() {
    return true;
  }
  run(_m: Model, r: Real) {
    r.dead.delete(this.instance);
  }
  toString() {
    return `revive(${this.instance})`;
  }
}

class Tick implements Cmd {
  constructor(readonly ms: number) {}
  check() {
    return true;
  }
  run(_m: Model, r: Real) {
    r.now += this.ms;
    beat(r);
    r.engine.sweep(r.now);
    commit(r);
    // Invariant 6: anything silent past the grace is unhealthy and holds no session.
    for (const i of r.engine.pool.instances.values()) {
      if (r.now - i.lastHeartbeat > GRACE) {
        assert.equal(i.health, 'unhealthy', `${i.spec.id} silent for ${r.now - i.lastHeartbeat} ms`);
        assert.equal(i.sessionId, null);
      }
    }
  }
  toString() {
    return `tick(${this.ms})`;
  }
}

class Restart implements Cmd {
  check() {
    return true;
  }
  run(m: Model, r: Real) {
    const before = new Map([...r.engine.sessions.values()].map((s) => [s.id, { state: s.state, held: r.engine.heldIds(s), epoch: s.epoch }]));
    const epoch = r.engine.currentEpoch;
    r.store.close();
    r.store = new SqliteStore({ path: r.path });
    r.engine = new Engine({ heartbeatGraceMs: GRACE, recoveryGraceMs: GRACE });
    r.engine.restore(r.store.load(), r.now);
    commit(r);
    // Invariant 5: everything a caller was told is back, with its allocation.
    for (const [id, t] of m.told) {
      const s = r.engine.get(id);
      assert.ok(s, `session ${id} lost in the restart`);
      const b = before.get(id)!;
      assert.deepEqual(r.engine.heldIds(s), t.held);
      assert.equal(s.state, b.state, `${id} state survives`);
      assert.equal(s.epoch, b.epoch);
    }
    assert.ok(r.engine.currentEpoch >= epoch, 'epochs never go back');
    // A create nobody was told about holds nothing after the restart (invariant 3), and a retry may redo it.
    for (const s of r.engine.sessions.values()) if (isLive(s)) assert.ok(s.acknowledged, `unanswered ${s.id} still holds ${r.engine.heldIds(s)}`);
  }
  toString() {
    return 'restart';
  }
}

const ids = fc.constantFrom('s1', 's2', 's3', 's4', 's5', 's6');
const instanceIds = fc.constantFrom(...Array.from({ length: SIMS }, (_, k) => `isaac-sim-${k + 1}`), ...Array.from({ length: TRAINERS }, (_, k) => `training-${k + 1}`));
const commands = [
  fc.tuple(ids, fc.constantFrom(0, 0, 1, 2, 3, 4, 5), fc.constantFrom(2, 4, 8)).map(([id, g, gpus]) => new Create(id, g, gpus)),
  ids.map((id) => new Terminate(id)),
  fc.constantFrom('u1', 'u2').map((id) => new CreateUnanswered(id)),
  ids.map((id) => new Complete(id)),
  instanceIds.map((id) => new Kill(id)),
  instanceIds.map((id) => new Revive(id)),
  fc.constantFrom(500, 1000, 4000).map((ms) => new Tick(ms)),
  fc.constant(new Restart()),
];

describe('engine invariants under random operations, instance deaths and restarts', () => {
  it('holds invariants 1-6', () => {
    const dir = mkdtempSync(join(tmpdir(), 'neuro-prop-'));
    let run = 0;
    try {
      fc.assert(
        fc.property(fc.commands(commands, { maxCommands: 60 }), (cmds) => {
          const path = join(dir, `run-${run++}.db`);
          const setup = () => {
            const engine = new Engine({ heartbeatGraceMs: GRACE, recoveryGraceMs: GRACE });
            const store = new SqliteStore({ path });
            const real: Real = { engine, store, path, now: 0, dead: new Set() };
            engine.register(Array.from({ length: SIMS }, (_, k) => simSpec(k + 1, { host: `host-${(k % 3) + 1}` })), 0);
            engine.register(Array.from({ length: TRAINERS }, (_, k) => trainerSpec(k + 1, { host: `host-${k + 1}` })), 0);
            commit(real);
            beat(real);
            return { model: { told: new Map() } as Model, real };
          };
          let real: Real | undefined;
          fc.modelRun(() => {
            const s = setup();
            real = s.real;
            return s;
          }, [...cmds].flatMap((c) => [c, { check: () => true, run: (_m: Model, r: Real) => checkInvariants(r.engine), toString: () => '' } as Cmd]));
          real?.store.close();
        }),
        { numRuns: Number(process.env.NEURO_PROPERTY_RUNS ?? 150) },
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('gang placement prefers the trainer topology', () => {
  it('puts simulators on the trainer host, then its zone, whenever enough are idle there', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ host: fc.integer({ min: 1, max: 4 }), zone: fc.integer({ min: 1, max: 2 }) }), { minLength: 4, maxLength: 40 }),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 4 }),
        (sims, trainerHost, n) => {
          const zoneOf = (h: number) => `zone-${h <= 2 ? 1 : 2}`;
          const e = new Engine();
          e.register(
            sims.map((s, k) => simSpec(k + 1, { host: `host-${s.host}`, zone: zoneOf(s.host), zmqHost: `host-${s.host}` })),
            0,
          );
          e.register([trainerSpec(1, { host: `host-${trainerHost}`, zone: zoneOf(trainerHost) })], 0);
          const beats = [...e.pool.instances.values()].map((i) => ({ instanceId: i.spec.id, sessions: [], fps: 0, gpuUtilization: 0, warmRobots: [] }));
          e.heartbeat(beats, 0);
          if (sims.length < n) return;
          const s = e.create(gangRequest('g', n), 0);
          const onHost = sims.filter((x) => x.host === trainerHost).length;
          const inZone = sims.filter((x) => zoneOf(x.host) === zoneOf(trainerHost)).length;
          const chosen = s.simulators.map((id) => e.pool.get(id)!.spec);
          const chosenOnHost = chosen.filter((c) => c.host === `host-${trainerHost}`).length;
          const chosenInZone = chosen.filter((c) => c.zone === zoneOf(trainerHost)).length;
          assert.equal(chosenOnHost, Math.min(n, onHost), 'as many on the trainer host as there are');
          assert.equal(chosenInZone, Math.min(n, inZone), 'then as many in its zone as there are');
        },
      ),
      { numRuns: 300 },
    );
  });
});
