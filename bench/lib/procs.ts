/**
 * The processes a benchmark measures: Neuro, reference agents and the floor server, each a real
 * process on loopback started the way an operator starts it (bin/neuro.js), plus what /proc says
 * about them. Every process started here is killed when the benchmark ends, however it ends.
 */
import { spawn } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { Health, HealthCheckResponse_ServingStatus } from '../../src/gen/grpc/health/v1/health_pb.js';
import { NeuroOrchestratorService } from '../../src/gen/neuro/v1/neuro_orchestrator_pb.js';
import { createClient, type ClientOf } from '../../src/rpc/grpc-adapter.js';
import { BIN, freePort, procOf, tempDir, type Proc } from '../../src/testing/processes.js';

export type Api = ClientOf<typeof NeuroOrchestratorService>;

const live = new Set<Proc>();
const dirs = new Set<string>();
/** Processes that exited without being asked to: what they printed last, for the error report. */
const died: string[] = [];

function track<P extends Proc>(p: P): P {
  live.add(p);
  let asked = false;
  const kill = p.kill.bind(p);
  p.kill = (signal) => {
    asked = true;
    return kill(signal);
  };
  void p.exited.then((code) => {
    live.delete(p);
    if (!asked) died.push(`${p.child.spawnargs.slice(1).join(' ')} exited (${code}):\n${p.output().slice(-4000)}`);
  });
  return p;
}

/** What processes that died on their own printed last (and forgets them). */
export function takeDeaths(): string[] {
  return died.splice(0);
}

/** Kills (SIGKILL) everything still running and removes the temp dirs; safe to call twice. */
export function killAll(): void {
  for (const p of live) {
    void p.kill('SIGKILL');
  }
  live.clear();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  dirs.clear();
}

process.once('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    killAll();
    process.exit(130);
  });
}

export function benchDir(prefix: string): string {
  const d = tempDir(`neuro-bench-${prefix}-`);
  dirs.add(d);
  return d;
}

export function removeDir(d: string): void {
  rmSync(d, { recursive: true, force: true });
  dirs.delete(d);
}

/**
 * A node process (`node ...argv`) with its output kept, like src/testing/processes.ts's `run` but with
 * node flags allowed before the script (--cpu-prof cannot go through NODE_OPTIONS).
 */
export function spawnNode(argv: string[], env: Record<string, string> = {}): Proc {
  return track(procOf(spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } })));
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Resolves once something accepts TCP connections on host:port (probing every `everyMs`). */
export async function portOpen(host: string, port: number, timeoutMs = 30_000, everyMs = 2): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host, port });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => {
        s.destroy();
        resolve(false);
      });
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on ${host}:${port} after ${timeoutMs} ms`);
    await sleep(everyMs);
  }
}

// ---------------------------------------------------------------------------------------------
// Neuro

export interface Neuro extends Proc {
  pid: number;
  port: number;
  httpPort: number;
  address: string;
  dataDir: string;
  api: Api;
  /** hrtime (ms) just before the process was spawned. */
  spawnedAt: number;
}

export const nowMs = () => Number(process.hrtime.bigint()) / 1e6;

/** Neuro's environment in every benchmark: default heartbeats, warn-level logs, loopback only. */
export const NEURO_ENV: Record<string, string> = {
  NEURO_LOG_LEVEL: 'warn',
  NEURO_GRPC_HOST: '127.0.0.1',
  NEURO_HTTP_HOST: '127.0.0.1',
  NEURO_HEARTBEAT_INTERVAL_MS: '1000',
  NEURO_HEARTBEAT_GRACE_MS: '3000',
};

/** With a directory, every Neuro runs under --cpu-prof and is stopped with SIGTERM so it writes its profile there. */
export const profiling = { dir: '', agents: false };

function profFlags(agent: boolean): string[] {
  return profiling.dir && (!agent || profiling.agents) ? ['--cpu-prof', `--cpu-prof-dir=${profiling.dir}`] : [];
}

/** Spawns `neuro serve` on `port` and does not wait. */
export function spawnNeuro(o: { dataDir: string; port: number; httpPort?: number; args?: string[]; env?: Record<string, string> }): Neuro {
  const spawnedAt = nowMs();
  const httpPort = o.httpPort ?? 0;
  const p = spawnNode([...profFlags(false), BIN, 'serve', '--grpc-port', String(o.port), '--http-port', String(httpPort), '--data-dir', o.dataDir, ...(o.args ?? [])], {
    ...NEURO_ENV,
    ...o.env,
  });
  const address = `127.0.0.1:${o.port}`;
  return { ...p, pid: p.child.pid!, port: o.port, httpPort, address, dataDir: o.dataDir, api: createClient(NeuroOrchestratorService, address), spawnedAt };
}

/** A fresh Neuro (fresh data dir, free port), serving: its Health/Check answers SERVING. */
export async function startNeuro(o: { dataDir?: string; port?: number; env?: Record<string, string> } = {}): Promise<Neuro> {
  const dataDir = o.dataDir ?? benchDir('neuro');
  const port = o.port ?? (await freePort());
  const n = spawnNeuro({ dataDir, port, httpPort: await freePort(), env: o.env });
  await Promise.race([
    waitHealthy(n.address),
    n.exited.then((c) => {
      throw new Error(`neuro exited (${c}) before serving:\n${n.output().slice(-2000)}`);
    }),
  ]);
  return n;
}

/** Neuro's RPC counters from its /metrics: "Method code" → calls served. */
export async function rpcCounts(n: Neuro): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  if (!n.httpPort) return out;
  const text = await (await fetch(`http://127.0.0.1:${n.httpPort}/metrics`)).text();
  for (const m of text.matchAll(/^neuro_rpc_requests_total\{method="([^"]+)",code="([^"]+)"\} (\d+)/gm)) out.set(`${m[1]} ${m[2]}`, Number(m[3]));
  return out;
}

/** Neuro's own memory gauges from /metrics (prom-client's defaults), in MB: heap used/total, external, ArrayBuffers. */
export async function memoryGauges(n: Neuro): Promise<Record<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${n.httpPort}/metrics`)).text();
  const g = (name: string) => Number(text.match(new RegExp(`^${name} (\\S+)`, 'm'))?.[1] ?? NaN) / 2 ** 20;
  return {
    heap_used_mb: g('neuro_nodejs_heap_size_used_bytes'),
    heap_total_mb: g('neuro_nodejs_heap_size_total_bytes'),
    external_mb: g('neuro_nodejs_external_memory_bytes'),
  };
}

/** Calls served between two rpcCounts, per op, as "Method×n.n" (OK calls) plus any non-OK ones. */
export function rpcsPerOp(before: Map<string, number>, after: Map<string, number>, ops: number): string {
  const parts: string[] = [];
  for (const [k, v] of after) {
    const d = v - (before.get(k) ?? 0);
    if (d <= 0) continue;
    const [method, code] = k.split(' ');
    parts.push(`${method}${code === 'OK' ? '' : `(${code})`}×${(d / ops).toFixed(2)}`);
  }
  return parts.join(', ');
}

export async function waitHealthy(address: string, timeoutMs = 30_000): Promise<void> {
  const [host, port] = [address.slice(0, address.lastIndexOf(':')), Number(address.slice(address.lastIndexOf(':') + 1))];
  await portOpen(host, port, timeoutMs);
  const h = createClient(Health, address);
  try {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        const r = await h.check({ service: '' }, { timeoutMs: 2000 });
        if (r.status === HealthCheckResponse_ServingStatus.SERVING) return;
      } catch {
        // not yet
      }
      if (Date.now() > deadline) throw new Error(`${address} never became healthy`);
      await sleep(10);
    }
  } finally {
    h.close();
  }
}

export async function stopNeuro(n: Neuro | undefined, removeData = true): Promise<void> {
  if (!n) return;
  n.api.close();
  if (profiling.dir) {
    // A graceful stop, so the profile is written; bounded, as a stuck stop must not hang the bench.
    const t = setTimeout(() => n.child.kill('SIGKILL'), 20_000);
    await n.kill('SIGTERM');
    clearTimeout(t);
  }
  await n.kill('SIGKILL');
  if (removeData) removeDir(n.dataDir);
}

// ---------------------------------------------------------------------------------------------
// Agents

export interface Agent extends Proc {
  pid: number;
  address: string;
  count: number;
}

/**
 * Loopback addresses the benchmark's agents use (127.0.77.k): each agent gets its own, so their ZeroMQ
 * port ranges never collide with each other's nor with agents other people's tests start on 127.0.0.1.
 */
export function agentHost(k: number): string {
  return `127.0.77.${k + 1}`;
}

/** First ZeroMQ port of benchmark agents: below Linux's ephemeral range (32768+), away from the defaults. */
export const ZMQ_BASE = 23000;

export async function startSimAgent(neuro: string, o: { count: number; k: number; prefix?: string }): Promise<Agent> {
  const host = agentHost(o.k);
  const p = spawnNode([...profFlags(true), BIN, 'agent', 'sim', '--neuro', neuro, '--count', String(o.count), '--id-prefix', o.prefix ?? `sim${o.k}-`, '--host', host, '--zmq-port-base', String(ZMQ_BASE)]);
  const m = await p.line(/simulator agent: \d+ instances on (\S+),/, 120_000);
  return { ...p, pid: p.child.pid!, address: m[1]!, count: o.count };
}

export async function startTrainerAgent(neuro: string, o: { count: number; k: number; prefix?: string }): Promise<Agent> {
  const host = agentHost(o.k);
  const p = spawnNode([...profFlags(true), BIN, 'agent', 'trainer', '--neuro', neuro, '--count', String(o.count), '--id-prefix', o.prefix ?? `trn${o.k}-`, '--host', host, '--gpus', '4', '--memory-gb', '32']);
  const m = await p.line(/trainer agent: \d+ instances on (\S+)/, 120_000);
  return { ...p, pid: p.child.pid!, address: m[1]!, count: o.count };
}

/**
 * At most this many instances per simulator agent process. An agent registers all its instances in one
 * Register message (~135 bytes each) and Neuro accepts messages up to 4 MiB by default (about 31,000
 * instances); its ZeroMQ plan needs one port per instance above the base (65536 - 23000 = 42,536).
 */
export const MAX_SIMS_PER_AGENT = 20_000;

/** Simulator agents hosting `total` instances between them (k = first loopback address index). */
export async function startSims(neuro: string, total: number, k0 = 0, perAgent = MAX_SIMS_PER_AGENT): Promise<Agent[]> {
  const n = Math.max(1, Math.ceil(total / perAgent));
  const per = Math.ceil(total / n);
  const out: Agent[] = [];
  // Two at a time: starting an agent is mostly CPU (module loading), and the machine has 2 cores.
  for (let i = 0; i < n; i += 2) {
    const batch = [];
    for (let j = i; j < Math.min(n, i + 2); j++) batch.push(startSimAgent(neuro, { count: Math.min(per, total - j * per), k: k0 + j }));
    out.push(...(await Promise.all(batch)));
  }
  return out;
}

export async function stopAll(ps: (Proc | undefined)[]): Promise<void> {
  if (profiling.dir && profiling.agents) {
    await Promise.all(
      ps.map(async (p) => {
        if (!p) return;
        const t = setTimeout(() => p.child.kill('SIGKILL'), 20_000);
        await p.kill('SIGTERM');
        clearTimeout(t);
      }),
    );
  }
  await Promise.all(ps.map((p) => p?.kill('SIGKILL')));
}

/** Resolves once the pools hold at least these many idle (healthy, free) instances. */
export async function poolIdle(api: Api, sims: number, trainers = 0, timeoutMs = 180_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    try {
      const r = await api.getResourcePoolStatus({ includeIsaacPool: true, includeTrainingPool: true, summaryOnly: true }, { timeoutMs: 10_000 });
      const s = r.isaacPool?.idleInstances ?? 0;
      const t = r.trainingPool?.idleInstances ?? 0;
      last = `${s} idle simulators (${r.isaacPool?.totalInstances ?? 0} total), ${t} idle trainers (${r.trainingPool?.totalInstances ?? 0} total)`;
      if (s >= sims && t >= trainers) return;
    } catch (e) {
      last = String(e);
    }
    if (Date.now() > deadline) throw new Error(`pool never reached ${sims} idle simulators and ${trainers} idle trainers; last: ${last}`);
    await sleep(200);
  }
}

/** Sessions that failed, and why (the first few reasons), for an error message. */
export async function failedSessions(api: Api): Promise<string> {
  const { SessionState } = await import('../../src/gen/neuro/v1/neuro_orchestrator_pb.js');
  const r = await api.listSessions({ state: SessionState.FAILED, pageSize: 5 }).catch((e: Error) => e);
  if (r instanceof Error) return `(ListSessions failed: ${r.message})`;
  const reasons = [...new Set(r.sessions.map((s) => s.failureReason))];
  return `${r.totalSize} sessions FAILED${reasons.length ? `, e.g. ${reasons.map((x) => JSON.stringify(x)).join('; ')}` : ''}`;
}

// ---------------------------------------------------------------------------------------------
// /proc

export const CLK_TCK = 100;

/** utime + stime of a process (all its threads), in milliseconds. */
export function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // f[0] is field 3 (state): utime is field 14, stime field 15.
  return ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK;
}

/** The machine's CPU counters (all cores), in ms: busy and total. */
export function machineCpu(): { busy: number; total: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  const idle = f[3]! + f[4]!;
  return { busy: ((total - idle) * 1000) / CLK_TCK, total: (total * 1000) / CLK_TCK };
}

/** A field of /proc/<pid>/status in kB (VmRSS, VmHWM). */
export function statusKb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'));
  if (!m) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(m[1]);
}

// ---------------------------------------------------------------------------------------------
// The floor server

export const FLOOR_SERVER = fileURLToPath(new URL('../floor-server.ts', import.meta.url));

export interface FloorServer extends Proc {
  pid: number;
  address: string;
}

/** The no-op Health server in its own process (node --import tsx bench/floor-server.ts). */
export async function startFloorServer(): Promise<FloorServer> {
  const p = spawnNode(['--import', 'tsx', FLOOR_SERVER]);
  const m = await p.line(/floor server on port (\d+)/);
  return { ...p, pid: p.child.pid!, address: `127.0.0.1:${m[1]}` };
}
