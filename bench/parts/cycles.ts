/**
 * 2. MANUAL cycles: CreateSession + TerminateSession, a real simulator agent answering Neuro's calls.
 * 3. Gang cycles: CreateTrainingSession (1 trainer with 4 GPUs + 4 simulators, ZeroMQ channels bound
 *    and the trainer started) + TerminateSession, real simulator and trainer agents.
 * Latency at concurrency 1 (the create alone, and the whole cycle), cycles/s at each concurrency.
 */
import { closedLoop, sequential, summarize } from '../lib/load.js';
import { cpuMs, nowMs, poolIdle, rpcCounts, rpcsPerOp, startNeuro, startSimAgent, startTrainerAgent, stopAll, stopNeuro, takeDeaths, type Agent, type Api, type Neuro } from '../lib/procs.js';
import { gangRequest, manualRequest, sessionId, type Figures, type Part, type Sizes } from './common.js';

type Mode = 'manual' | 'gang';

/** One cycle; returns the create's milliseconds. */
async function cycle(api: Api, mode: Mode): Promise<number> {
  const id = sessionId(mode);
  const t = nowMs();
  const res = mode === 'manual' ? await api.createSession(manualRequest(id)) : await api.createTrainingSession(gangRequest(id));
  const created = nowMs() - t;
  if (!res.success) throw new Error(`create ${id} answered success=false: ${res.message}`);
  await api.terminateSession({ sessionId: id, reason: 'bench' });
  return created;
}

interface Setup {
  neuro: Neuro;
  agents: Agent[];
}

/**
 * Runs `fn` on fresh processes (a new Neuro and new agents), retrying once on fresh processes if it
 * fails (the simulator agent can die under gang cycles: see RESULTS.md). Returns false if both failed.
 */
async function phase(mode: Mode, name: string, sizes: Sizes, notes: string[], figures: Figures, fn: (x: Setup) => Promise<void>): Promise<boolean> {
  const maxC = Math.max(...sizes.concurrencies);
  // Enough instances that every concurrent create finds what it needs.
  const sims = mode === 'manual' ? maxC + 32 : 4 * (maxC + 8);
  const trainers = mode === 'gang' ? maxC + 8 : 0;
  for (let attempt = 1; attempt <= 2; attempt++) {
    let neuro: Neuro | undefined;
    const agents: Agent[] = [];
    try {
      neuro = await startNeuro();
      const [s, t] = await Promise.all([
        startSimAgent(neuro.address, { count: sims, k: 0 }),
        trainers ? startTrainerAgent(neuro.address, { count: trainers, k: 1 }) : Promise.resolve(undefined),
      ]);
      agents.push(s);
      if (t) agents.push(t);
      await poolIdle(neuro.api, sims, trainers);
      await fn({ neuro, agents });
      const dead = agents.find((a) => a.child.exitCode !== null || a.child.signalCode !== null);
      if (dead) throw new Error(`an agent exited during the phase`);
      return true;
    } catch (e) {
      const deaths = takeDeaths().map((d) => d.split('\n').filter((l) => /exited|Assertion|Error|error/.test(l)).join(' ').slice(0, 600));
      const why = `${(e as Error).message.split('\n')[0]}${deaths.length ? `; ${deaths.join('; ')}` : ''}`;
      notes.push(`${mode} ${name}: attempt ${attempt} failed on fresh processes: ${why}`);
      figures[`${mode}.agent_deaths`] = (figures[`${mode}.agent_deaths`] ?? 0) + deaths.length;
    } finally {
      await stopAll(agents);
      await stopNeuro(neuro);
    }
  }
  return false;
}

function cyclesPart(mode: Mode): Part {
  return async (sizes) => {
    const notes: string[] = [];
    const figures: Figures = mode === 'gang' ? { 'gang.agent_deaths': 0 } : {};
    const calls = mode === 'manual' ? sizes.manualCalls : sizes.gangCalls;
    // MANUAL runs all phases on one set of processes; gang gives each phase fresh ones, so an agent that
    // dies costs one phase, not the part.
    const phases: { name: string; run: (x: Setup) => Promise<void> }[] = [
      {
        name: 'c=1',
        run: async ({ neuro }) => {
          const api = neuro.api;
          const createOnly: number[] = [];
          await sequential(Math.max(20, Math.floor(calls / 5)), () => cycle(api, mode)); // warm-up
          const whole = await sequential(calls, async () => {
            createOnly.push(await cycle(api, mode));
          });
          if (whole.errors) throw new Error(`${whole.errors} errors; first: ${whole.firstError}`);
          const create = summarize(createOnly);
          figures[`${mode}.create_p50_ms`] = create.p50;
          figures[`${mode}.create_p99_ms`] = create.p99;
          figures[`${mode}.cycle_p50_ms`] = whole.p50;
          figures[`${mode}.cycle_p99_ms`] = whole.p99;
        },
      },
      ...sizes.concurrencies.map((c) => ({
        name: `c=${c}`,
        run: async ({ neuro, agents }: Setup) => {
          // A short warm-up on a fresh set of processes (the c=1 phase warmed the first set).
          if (mode === 'gang') await sequential(20, () => cycle(neuro.api, mode));
          const cpu0 = cpuMs(neuro.pid);
          const agents0 = agents.reduce((t, a) => t + cpuMs(a.pid), 0);
          const self0 = process.cpuUsage();
          const rpc0 = await rpcCounts(neuro);
          const r = await closedLoop(c, sizes.throughputMs, sizes.warmupMs, () => cycle(neuro.api, mode));
          const cpu = cpuMs(neuro.pid) - cpu0;
          const agentsCpu = agents.reduce((t, a) => t + cpuMs(a.pid), 0) - agents0;
          const self = process.cpuUsage(self0);
          if (r.errors) throw new Error(`${r.errors} errors; first: ${r.firstError}`);
          const ops = Math.max(1, r.allOps);
          notes.push(`${mode} c=${c}: calls Neuro served per cycle: ${rpcsPerOp(rpc0, await rpcCounts(neuro), ops)}`);
          figures[`${mode}.c${c}_per_s`] = r.perSecond;
          figures[`${mode}.c${c}_cycle_p50_ms`] = r.p50;
          // Where the CPU of a cycle goes: Neuro, the agents, this load client.
          figures[`${mode}.c${c}_neuro_cpu_ms_per_cycle`] = cpu / ops;
          figures[`${mode}.c${c}_agents_cpu_ms_per_cycle`] = agentsCpu / ops;
          figures[`${mode}.c${c}_client_cpu_ms_per_cycle`] = (self.user + self.system) / 1000 / ops;
        },
      })),
    ];
    if (mode === 'manual') {
      const ok = await phase(mode, 'all phases', sizes, notes, figures, async (x) => {
        for (const p of phases) await p.run(x);
      });
      if (!ok) throw new Error(notes.join('\n'));
    } else {
      let any = false;
      for (const p of phases) any = (await phase(mode, p.name, sizes, notes, figures, p.run)) || any;
      if (!any) throw new Error(notes.join('\n'));
    }
    return { figures, notes };
  };
}

export const manual = cyclesPart('manual');
export const gang = cyclesPart('gang');
