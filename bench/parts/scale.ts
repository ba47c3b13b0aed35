/**
 * 4. Scale. For each pool size N, a fresh Neuro and simulator agents hosting N instances between them,
 * all heartbeating at the default 1 s interval:
 *  - heartbeat CPU (at the sizes of `heartbeatSizes`): Neuro's utime+stime from /proc/<pid>/stat over a
 *    window with no other traffic, minus its idle rate measured on the same process before any agent
 *    started; as % of one core per 1,000 instances;
 *  - allocation latency: CreateSession (MANUAL) latency at concurrency 1, each followed by its
 *    TerminateSession (not timed), so the pool stays at N idle instances;
 *  - GetResourcePoolStatus latency (at `poolStatusAt`): the seed's request (both pools, every instance
 *    listed), and the summary_only variant.
 */
import { sequential, summarize } from '../lib/load.js';
import { cpuMs, nowMs, poolIdle, sleep, startNeuro, startSims, stopAll, stopNeuro, type Agent, type Neuro } from '../lib/procs.js';
import { manualRequest, sessionId, type Figures, type Part, type Sizes } from './common.js';

/** Neuro's CPU over a window, as % of one core. */
async function cpuPercent(pid: number, windowMs: number): Promise<number> {
  const c0 = cpuMs(pid);
  const t0 = nowMs();
  await sleep(windowMs);
  return ((cpuMs(pid) - c0) / (nowMs() - t0)) * 100;
}

async function atSize(n: number, sizes: Sizes, figures: Figures, notes: string[]): Promise<void> {
  let neuro: Neuro | undefined;
  let agents: Agent[] = [];
  try {
    neuro = await startNeuro();
    const api = neuro.api;
    const hb = sizes.heartbeatSizes.includes(n);
    let idle = 0;
    if (hb) {
      await sleep(500);
      idle = await cpuPercent(neuro.pid, sizes.idleWindowMs);
    }
    const t0 = nowMs();
    agents = await startSims(neuro.address, n);
    await poolIdle(api, n);
    figures[`scale.${n}.register_s`] = (nowMs() - t0) / 1000;
    if (hb) {
      // Let the joining → healthy writes and the first GCs pass: the window holds steady-state beats only.
      await sleep(2000);
      const agents0 = agents.reduce((t, a) => t + cpuMs(a.pid), 0);
      const t1 = nowMs();
      const busy = await cpuPercent(neuro.pid, sizes.heartbeatWindowMs);
      const agentsPct = ((agents.reduce((t, a) => t + cpuMs(a.pid), 0) - agents0) / (nowMs() - t1)) * 100;
      figures[`heartbeat.${n}.idle_pct`] = idle;
      figures[`heartbeat.${n}.busy_pct`] = busy;
      figures[`heartbeat.${n}.pct_core_per_1k`] = (busy - idle) / (n / 1000);
      figures[`heartbeat.${n}.agents_pct`] = agentsPct;
    }

    const cycle = async () => {
      const id = sessionId('alloc');
      const t = nowMs();
      const res = await api.createSession(manualRequest(id));
      const ms = nowMs() - t;
      if (!res.success) throw new Error(`create ${id}: ${res.message}`);
      await api.terminateSession({ sessionId: id });
      return ms;
    };
    await sequential(50, cycle); // warm-up
    const created: number[] = [];
    const r = await sequential(sizes.allocCalls, async () => {
      created.push(await cycle());
    });
    const a = summarize(created);
    figures[`scale.${n}.alloc_p50_ms`] = a.p50;
    figures[`scale.${n}.alloc_p99_ms`] = a.p99;
    if (r.errors) notes.push(`alloc at ${n}: ${r.errors} errors; first: ${r.firstError}`);

    if (n === sizes.poolStatusAt) {
      const full = await sequential(sizes.poolStatusCalls, async () => {
        const res = await api.getResourcePoolStatus({ includeIsaacPool: true, includeTrainingPool: true }, { timeoutMs: 30_000 });
        if (res.isaacPool?.instances.length !== n) throw new Error(`pool status listed ${res.isaacPool?.instances.length} simulators, expected ${n}`);
      });
      const summary = await sequential(sizes.poolStatusCalls, () => api.getResourcePoolStatus({ includeIsaacPool: true, includeTrainingPool: true, summaryOnly: true }).then(() => undefined));
      figures[`scale.${n}.pool_status_p50_ms`] = full.p50;
      figures[`scale.${n}.pool_status_p99_ms`] = full.p99;
      figures[`scale.${n}.pool_status_summary_p50_ms`] = summary.p50;
      if (full.errors) notes.push(`pool status at ${n}: ${full.errors} errors; first: ${full.firstError}`);
    }
  } finally {
    await stopAll(agents);
    await stopNeuro(neuro);
  }
}

export const scale: Part = async (sizes) => {
  const figures: Figures = {};
  const notes: string[] = [];
  for (const n of sizes.scaleSizes) await atSize(n, sizes, figures, notes);
  return { figures, notes };
};
