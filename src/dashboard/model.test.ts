/**
 * The dashboard's logic without a browser: the pool model (snapshot, changes, order, filters,
 * virtualised layout, map) at 10,000 instances, keyboard driving, the chart's helpers, form parsing.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { create, type MessageInitShape } from '@bufbuild/protobuf';
import { WatchResourcePoolResponseSchema, type WatchResourcePoolResponse } from '../gen/neuro/v1/neuro_orchestrator_pb.js';
import { InstanceInfoSchema, type InstanceInfo } from '../gen/neuro/v1/resource_pb.js';
import { downsample, tickLabel, ticks } from './chart.js';
import { actionFor, isDriveKey, keyLabel, parseFrame } from './drive.js';
import { parsePairs } from './forms.js';
import { firstVisibleRow, layoutRows, mapLayout, PoolModel } from './pool-model.js';

function inst(id: string, o: Omit<MessageInitShape<typeof InstanceInfoSchema>, '$typeName'> = {}): InstanceInfo {
  return create(InstanceInfoSchema, { instanceId: id, kind: id.startsWith('training') ? 'trainer' : 'simulator', status: 'idle', host: 'h1', zone: 'z1', gpuIds: ['GPU-0'], ...o });
}

function snapshot(list: InstanceInfo[]): WatchResourcePoolResponse {
  const sims = list.filter((i) => i.kind === 'simulator');
  const trainers = list.filter((i) => i.kind === 'trainer');
  return create(WatchResourcePoolResponseSchema, {
    snapshot: true,
    isaacPool: { totalInstances: sims.length, idleInstances: sims.length, instances: sims },
    trainingPool: { totalInstances: trainers.length, idleInstances: trainers.length, instances: trainers },
  });
}

function change(changed: InstanceInfo[], removed: string[] = []): WatchResourcePoolResponse {
  return create(WatchResourcePoolResponseSchema, { snapshot: false, changed, removed });
}

describe('PoolModel', () => {
  it('orders trainers first, then ids in natural order', () => {
    const m = new PoolModel();
    m.apply(snapshot([inst('isaac-sim-10'), inst('isaac-sim-2'), inst('training-1'), inst('isaac-sim-1')]));
    assert.deepEqual(
      m.sorted().map((i) => i.instanceId),
      ['training-1', 'isaac-sim-1', 'isaac-sim-2', 'isaac-sim-10'],
    );
    assert.equal(m.simulators.total, 3);
    assert.equal(m.trainers.total, 1);
    assert.equal(m.loaded, true);
  });

  it('applies changes in place, adds newcomers, drops the removed, and says when sessions moved', () => {
    const m = new PoolModel();
    m.apply(snapshot([inst('isaac-sim-1'), inst('isaac-sim-2')]));
    const order = m.sorted();
    let r = m.apply(change([inst('isaac-sim-1', { fps: 30 })]));
    assert.equal(r.sessionsChanged, false, 'a metric changed, not a session');
    assert.equal(m.sorted(), order, 'no re-sort for an update');
    assert.equal(m.sorted()[0]!.fps, 30, 'the sorted list holds the new object');
    r = m.apply(change([inst('isaac-sim-2', { status: 'running', sessionId: 's1' })]));
    assert.equal(r.sessionsChanged, true);
    r = m.apply(change([inst('isaac-sim-0')], ['isaac-sim-1']));
    assert.equal(r.sessionsChanged, true);
    assert.deepEqual(
      m.sorted().map((i) => i.instanceId),
      ['isaac-sim-0', 'isaac-sim-2'],
    );
    // A fresh snapshot (a reconnect) replaces everything.
    m.apply(snapshot([inst('isaac-sim-9')]));
    assert.deepEqual([...m.instances.keys()], ['isaac-sim-9']);
  });

  it('filters by kind, state and text, caching the result until the next message', () => {
    const m = new PoolModel();
    m.apply(snapshot([inst('training-1'), inst('isaac-sim-1', { status: 'running', sessionId: 'alpha' }), inst('isaac-sim-2', { host: 'gpu-box-7' }), inst('isaac-sim-3', { status: 'unhealthy' })]));
    const ids = (f: Parameters<PoolModel['filter']>[0]) => m.filter(f).map((i) => i.instanceId);
    assert.deepEqual(ids({ kind: 'trainer', states: new Set(), text: '' }), ['training-1']);
    assert.deepEqual(ids({ kind: '', states: new Set(['running', 'unhealthy']), text: '' }), ['isaac-sim-1', 'isaac-sim-3']);
    assert.deepEqual(ids({ kind: '', states: new Set(), text: 'ALPHA' }), ['isaac-sim-1']);
    assert.deepEqual(ids({ kind: '', states: new Set(), text: 'box-7' }), ['isaac-sim-2']);
    const f = { kind: 'simulator' as const, states: new Set<string>(), text: '' };
    assert.equal(m.filter(f), m.filter(f));
    const before = m.filter(f);
    m.apply(change([inst('isaac-sim-2', { status: 'draining', draining: true })]));
    assert.notEqual(m.filter(f), before);
    assert.deepEqual(m.stateCounts('simulator'), { running: 1, draining: 1, unhealthy: 1 });
  });

  it('lays out a virtualised grid: a header per kind, rows of tiles, found by binary search', () => {
    const m = new PoolModel();
    m.apply(snapshot([inst('training-1'), inst('training-2'), ...Array.from({ length: 10 }, (_, k) => inst(`isaac-sim-${k + 1}`))]));
    const { rows, height } = layoutRows(m.sorted(), 4, 100, 30);
    assert.deepEqual(
      rows.map((r) => (r.type === 'head' ? `${r.kind}:${r.count}` : `${r.start}-${r.end}`)),
      ['trainer:2', '0-2', 'simulator:10', '2-6', '6-10', '10-12'],
    );
    assert.equal(height, 30 + 100 + 30 + 300);
    assert.equal(firstVisibleRow(rows, 0), 0);
    assert.equal(firstVisibleRow(rows, 131), 2);
    assert.equal(firstVisibleRow(rows, 165), 3);
    assert.equal(firstVisibleRow(rows, 10_000), rows.length);
  });

  it('sizes the pool map to fit', () => {
    assert.deepEqual(mapLayout(8, 600, 84), { cell: 14, gap: 1, cols: 42, rows: 1, height: 14 });
    const big = mapLayout(10_000, 640, 84);
    assert.ok(big.height <= 84 || big.cell === 2, JSON.stringify(big));
    assert.ok(big.cols * big.rows >= 10_000);
  });

  it('keeps up with 10,000 instances: a snapshot, then 100 messages of 2,000 changes, each filtered and laid out', () => {
    const m = new PoolModel();
    const all = Array.from({ length: 10_000 }, (_, k) => inst(`isaac-sim-${k + 1}`));
    const t0 = performance.now();
    m.apply(snapshot(all));
    m.sorted();
    const f = { kind: '' as const, states: new Set(['running']), text: '' };
    for (let round = 0; round < 100; round++) {
      const changed = Array.from({ length: 2000 }, (_, k) => inst(`isaac-sim-${((round * 2000 + k) % 10_000) + 1}`, { status: round % 2 ? 'idle' : 'running', sessionId: round % 2 ? '' : `s${k}` }));
      m.apply(change(changed));
      m.filter(f);
      layoutRows(m.filter({ kind: '', states: new Set(), text: '' }), 6, 102, 34);
    }
    const ms = performance.now() - t0;
    assert.equal(m.instances.size, 10_000);
    assert.ok(ms < 3000, `took ${ms.toFixed(0)} ms`);
  });
});

describe('keyboard driving', () => {
  it('maps held keys to an action per joint, opposite keys cancelling, Shift for half speed', () => {
    assert.deepEqual(actionFor(new Set(['KeyQ']), 7), [1, 0, 0, 0, 0, 0, 0]);
    assert.deepEqual(actionFor(new Set(['KeyA', 'KeyW']), 3), [-1, 1, 0]);
    assert.equal(actionFor(new Set(['KeyQ', 'KeyA']), 3), null);
    assert.deepEqual(actionFor(new Set(['ArrowRight', 'KeyQ']), 2), [1, 0], 'clipped to [-1, 1]');
    assert.deepEqual(actionFor(new Set(['ArrowDown']), 2, true), [0, -0.5]);
    assert.equal(actionFor(new Set(['KeyU']), 2), null, 'a key for a joint the robot does not have');
    assert.equal(actionFor(new Set(['KeyZ']), 7), null);
    assert.equal(isDriveKey('KeyJ', 7), true);
    assert.equal(isDriveKey('KeyJ', 6), false);
    assert.equal(isDriveKey('ArrowUp', 1), false);
    assert.equal(keyLabel(0), 'Q/A');
    assert.equal(keyLabel(6), 'U/J');
  });

  it('parses the control socket frames and ignores anything else', () => {
    assert.equal(parseFrame('{"type":"state","demonstrations":3}')?.type, 'state');
    assert.equal(parseFrame('{"type":"control","controller":"ai"}')?.type, 'control');
    assert.equal(parseFrame('{"type":"other"}'), undefined);
    assert.equal(parseFrame('not json'), undefined);
    assert.equal(parseFrame(new ArrayBuffer(2)), undefined);
  });
});

describe('chart and form helpers', () => {
  it('downsamples keeping the ends, and picks round ticks', () => {
    const pts = Array.from({ length: 1000 }, (_, k) => ({ x: k, y: k * 2 }));
    const d = downsample(pts, 100);
    assert.equal(d.length, 100);
    assert.deepEqual(d[0], pts[0]);
    assert.deepEqual(d[99], pts[999]);
    assert.deepEqual(ticks(0, 100, 4), [0, 25, 50, 75, 100]);
    assert.deepEqual(ticks(-47.7, 5.2, 4), [-40, -20, 0]);
    assert.deepEqual(ticks(3, 3, 4), [3]);
    assert.deepEqual([-38.5, -38, 2.5, 0.25, 12500, 3000].map((v, k) => tickLabel(v, [0.5, 0.5, 2.5, 0.25, 2500, 500][k])), ['-38.5', '-38.0', '2.5', '0.25', '12.5k', '3k']);
  });

  it('parses key=value lines', () => {
    assert.deepEqual(parsePairs('learning_rate=0.0003\n gamma = 0.99 \n\nhidden_sizes=64,64'), { learning_rate: '0.0003', gamma: '0.99', hidden_sizes: '64,64' });
    assert.deepEqual(parsePairs(''), {});
    assert.throws(() => parsePairs('oops'), /key=value/);
  });
});
