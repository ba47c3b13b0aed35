/**
 * 5. Recovery: Neuro holding N live MANUAL sessions (N simulators, one session each) is killed with -9
 * and started again on the same port and data dir. Timed from the spawn of the new process (just before
 * spawn()) until both hold:
 *  - GetSession of a known session (one created mid-way) answers, READY;
 *  - ListSessions(state = READY) says total_size = N.
 * The port is probed by TCP every 2 ms, then each call is tried on a fresh channel (so grpc-js's
 * reconnect back-off never adds to the figure). The same procedure on the first, empty start gives the
 * floor of any start (Node, tsx, modules, SQLite open).
 */
import { SessionState } from '../../src/gen/neuro/v1/neuro_orchestrator_pb.js';
import { NeuroOrchestratorService } from '../../src/gen/neuro/v1/neuro_orchestrator_pb.js';
import { createClient } from '../../src/rpc/grpc-adapter.js';
import { freePort } from '../../src/testing/processes.js';
import { benchDir, failedSessions, nowMs, poolIdle, portOpen, sleep, spawnNeuro, startSims, stopAll, stopNeuro, type Agent, type Neuro } from '../lib/procs.js';
import { holdLiveSessions, type Figures, type Part } from './common.js';

/** From spawn: port accepting, GetSession(known) answered (NOT_FOUND counts when `known` is empty). */
async function timeToServe(n: Neuro, known: string, expect: number): Promise<{ portMs: number; getMs: number; listMs: number }> {
  await portOpen('127.0.0.1', n.port, 60_000, 2);
  const portMs = nowMs() - n.spawnedAt;
  let getMs = NaN;
  let listMs = NaN;
  for (let attempt = 0; ; attempt++) {
    const c = createClient(NeuroOrchestratorService, n.address);
    try {
      if (known) {
        const r = await c.getSession({ sessionId: known }, { timeoutMs: 10_000 });
        if (r.session?.state !== SessionState.READY) throw new Error(`session ${known} is ${r.session?.state}`);
      } else {
        await c.getSession({ sessionId: 'no-such-session' }, { timeoutMs: 10_000 }).catch((e: { code?: string }) => {
          if (e.code !== 'NOT_FOUND') throw e;
        });
      }
      getMs = nowMs() - n.spawnedAt;
      const l = await c.listSessions({ state: SessionState.READY, pageSize: 1 }, { timeoutMs: 10_000 });
      if (l.totalSize !== expect) throw new Error(`ListSessions(READY) total_size ${l.totalSize}, expected ${expect}`);
      listMs = nowMs() - n.spawnedAt;
      return { portMs, getMs, listMs };
    } catch (e) {
      if (attempt > 2000) throw e;
      await sleep(2);
    } finally {
      c.close();
    }
  }
}

export const recovery: Part = async (sizes) => {
  const n = sizes.recoverySessions;
  let first: Neuro | undefined;
  let second: Neuro | undefined;
  let agents: Agent[] = [];
  const figures: Figures = {};
  const notes: string[] = [];
  try {
    const dataDir = benchDir('recovery');
    first = spawnNeuro({ dataDir, port: await freePort() });
    const empty = await timeToServe(first, '', 0);
    figures['recovery.empty_start_ms'] = empty.listMs;

    agents = await startSims(first.address, n);
    await poolIdle(first.api, n);
    const held = await holdLiveSessions(first.api, n, 64, 'rec');
    figures['recovery.setup_creates_per_s'] = held.createsPerSecond;
    figures['recovery.sessions_failed_by_neuro'] = held.failed;
    if (held.failed) notes.push(`Neuro failed ${held.failed} of the ${held.ids.length} sessions created (replaced to hold ${n} live)`);
    // The known session: a live one from the middle.
    let known = '';
    for (let k = Math.floor(held.ids.length / 2); k < held.ids.length && !known; k++) {
      const s = await first.api.getSession({ sessionId: held.ids[k]! });
      if (s.session?.state === SessionState.READY) known = held.ids[k]!;
    }
    const before = await first.api.listSessions({ state: SessionState.READY, pageSize: 1 });
    if (before.totalSize !== n) throw new Error(`before the kill: ${before.totalSize} READY sessions, expected ${n}: ${await failedSessions(first.api)}`);

    first.api.close();
    await first.kill('SIGKILL');
    second = spawnNeuro({ dataDir, port: first.port });
    const r = await timeToServe(second, known, n);
    figures['recovery.all_sessions_ms'] = r.listMs;
    figures['recovery.port_ms'] = r.portMs;
    figures['recovery.get_ms'] = r.getMs;
    // Informational: until every simulator has re-registered and beats again (agents back off up to 2 s).
    await poolBack(second, n);
    figures['recovery.pool_back_ms'] = nowMs() - second.spawnedAt;
    return { figures, notes };
  } finally {
    await stopAll(agents);
    if (first) {
      first.api.close();
      await first.kill('SIGKILL');
    }
    await stopNeuro(second);
  }
};

async function poolBack(n: Neuro, want: number): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const r = await n.api.getResourcePoolStatus({ includeIsaacPool: true, summaryOnly: true }).catch(() => undefined);
    if ((r?.isaacPool?.runningInstances ?? 0) >= want) return;
    if (Date.now() > deadline) throw new Error(`simulators never all running again after the restart`);
    await sleep(20);
  }
}
