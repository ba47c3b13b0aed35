/**
 * 6. Memory: Neuro's resident set (VmRSS in /proc/<pid>/status) holding `memoryInstances` registered,
 * heartbeating simulators and `memorySessions` live MANUAL sessions, read after things settle; VmHWM
 * (the peak) beside it.
 */
import { failedSessions, memoryGauges, poolIdle, sleep, startNeuro, startSims, statusKb, stopAll, stopNeuro, type Agent, type Neuro } from '../lib/procs.js';
import { holdLiveSessions, type Part } from './common.js';

export const memory: Part = async (sizes) => {
  let neuro: Neuro | undefined;
  let agents: Agent[] = [];
  try {
    neuro = await startNeuro();
    const api = neuro.api;
    const rss0 = statusKb(neuro.pid, 'VmRSS');
    agents = await startSims(neuro.address, sizes.memoryInstances);
    await poolIdle(api, sizes.memoryInstances);
    const held = await holdLiveSessions(api, sizes.memorySessions, 64, 'mem');
    const live = await api.getResourcePoolStatus({ includeIsaacPool: true, summaryOnly: true });
    if (live.isaacPool?.runningInstances !== sizes.memorySessions) {
      throw new Error(`${live.isaacPool?.runningInstances} simulators running, expected ${sizes.memorySessions}: ${await failedSessions(api)}`);
    }
    // A few heartbeat rounds with everything in place, so what is measured is the steady state.
    await sleep(2000);
    const rss = statusKb(neuro.pid, 'VmRSS') / 1024;
    const gauges = await memoryGauges(neuro);
    return {
      figures: {
        'memory.rss_mb': rss,
        'memory.heap_used_mb': gauges.heap_used_mb!,
        'memory.heap_total_mb': gauges.heap_total_mb!,
        'memory.external_mb': gauges.external_mb!,
        'memory.hwm_mb': statusKb(neuro.pid, 'VmHWM') / 1024,
        'memory.empty_rss_mb': rss0 / 1024,
        'memory.sessions_failed_by_neuro': held.failed,
      },
      notes: held.failed ? [`Neuro failed ${held.failed} of the ${held.ids.length} sessions created (replaced to hold ${sizes.memorySessions} live)`] : [],
    };
  } finally {
    await stopAll(agents);
    await stopNeuro(neuro);
  }
};
