/**
 * Prometheus metrics: RPCs by method and code with latency histograms, sessions by mode and state,
 * instances by kind and state, heartbeats, and the process defaults (CPU, memory, event loop lag).
 * Gauges are computed at scrape time from the engine, so the hot path pays nothing for them.
 */
import client from 'prom-client';
import type { Engine } from '../core/engine.js';
import type { InstanceStatus } from '../core/model.js';

export class Metrics {
  readonly registry = new client.Registry();
  readonly rpcTotal: client.Counter<'method' | 'code'>;
  readonly rpcSeconds: client.Histogram<'method'>;
  readonly beats: client.Counter;

  constructor(engine: () => Engine | undefined) {
    client.collectDefaultMetrics({ register: this.registry, prefix: 'neuro_' });
    this.rpcTotal = new client.Counter({ name: 'neuro_rpc_requests_total', help: 'RPCs handled, by method and status code', labelNames: ['method', 'code'], registers: [this.registry] });
    this.rpcSeconds = new client.Histogram({
      name: 'neuro_rpc_duration_seconds',
      help: 'RPC latency by method',
      labelNames: ['method'],
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [this.registry],
    });
    this.beats = new client.Counter({ name: 'neuro_heartbeats_total', help: 'Instance heartbeats received', registers: [this.registry] });
    new client.Gauge({
      name: 'neuro_sessions',
      help: 'Sessions known, by mode and state',
      labelNames: ['mode', 'state'],
      registers: [this.registry],
      collect() {
        const e = engine();
        this.reset();
        if (!e) return;
        const counts = new Map<string, number>();
        for (const s of e.sessions.values()) {
          const k = `${s.mode}|${s.state}`;
          counts.set(k, (counts.get(k) ?? 0) + 1);
        }
        for (const [k, n] of counts) {
          const [mode, state] = k.split('|') as [string, string];
          this.set({ mode, state }, n);
        }
      },
    });
    new client.Gauge({
      name: 'neuro_instances',
      help: 'Instances in the pools, by kind and state',
      labelNames: ['kind', 'state'],
      registers: [this.registry],
      collect() {
        const e = engine();
        this.reset();
        if (!e) return;
        for (const kind of ['simulator', 'trainer'] as const) {
          for (const [state, n] of Object.entries(e.pool.counts[kind]) as [InstanceStatus, number][]) this.set({ kind, state }, n);
        }
      },
    });
  }
}
