/**
 * Test support: real Neuro and agent processes on loopback, started the way an operator starts them
 * (`bin/neuro.js`), with their ports read from what they print. Not imported by production code.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { NeuroOrchestratorService } from '../gen/neuro/v1/neuro_orchestrator_pb.js';
import type { PoolStatus } from '../gen/neuro/v1/resource_pb.js';
import { createClient, type ClientOf } from '../rpc/grpc-adapter.js';
import type { NeuroError } from '../core/errors.js';

export const BIN = fileURLToPath(new URL('../../bin/neuro.js', import.meta.url));

export type Api = ClientOf<typeof NeuroOrchestratorService>;

/** A port free right now (the OS may hand it out again; tests bind it at once). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

export function tempDir(prefix = 'neuro-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export interface Proc {
  child: ChildProcess;
  /** Everything printed so far (stdout and stderr). */
  output(): string;
  /** Resolves with the exit code (or signal name). */
  exited: Promise<number | string>;
  /** Resolves with the first output line matching `re`. */
  line(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  kill(signal?: NodeJS.Signals): Promise<number | string>;
}

/** Runs `bin/neuro.js` with these arguments. */
export function run(args: string[], env: Record<string, string> = {}): Proc {
  return procOf(spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } }));
}

/** Follows a child process's output and exit. */
export function procOf(child: ChildProcess): Proc {
  let out = '';
  const waiters: { re: RegExp; resolve: (m: RegExpMatchArray) => void }[] = [];
  const onData = (c: Buffer) => {
    out += c.toString();
    for (const w of [...waiters]) {
      const m = out.match(w.re);
      if (m) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(m);
      }
    }
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, sig) => resolve(code ?? sig ?? -1)));
  return {
    child,
    output: () => out,
    exited,
    line(re, timeoutMs = 30_000) {
      const m = out.match(re);
      if (m) return Promise.resolve(m);
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no line matching ${re} within ${timeoutMs} ms; output:\n${out.slice(-3000)}`)), timeoutMs);
        const w = {
          re,
          resolve: (x: RegExpMatchArray) => {
            clearTimeout(t);
            resolve(x);
          },
        };
        waiters.push(w);
        void exited.then(() => {
          if (waiters.includes(w)) {
            clearTimeout(t);
            reject(new Error(`process exited before printing ${re}; output:\n${out.slice(-3000)}`));
          }
        });
      });
    },
    async kill(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

export interface NeuroProc extends Proc {
  grpcPort: number;
  httpPort: number;
  address: string;
}

export interface NeuroProcOptions {
  dataDir?: string;
  grpcPort?: number;
  httpPort?: number;
  env?: Record<string, string>;
  args?: string[];
}

/** Heartbeats fast enough that fault tests take seconds, not minutes. */
export const FAST_HEARTBEATS = { NEURO_HEARTBEAT_INTERVAL_MS: '200', NEURO_HEARTBEAT_GRACE_MS: '1200' };

export async function startNeuro(o: NeuroProcOptions = {}): Promise<NeuroProc> {
  const dataDir = o.dataDir ?? tempDir();
  const p = run(
    ['serve', '--grpc-port', String(o.grpcPort ?? 0), '--http-port', String(o.httpPort ?? 0), '--data-dir', dataDir, ...(o.args ?? [])],
    { NEURO_LOG_LEVEL: 'info', NEURO_GRPC_HOST: '127.0.0.1', NEURO_HTTP_HOST: '127.0.0.1', ...FAST_HEARTBEATS, ...o.env },
  );
  const m = await p.line(/"grpcPort":(\d+),"httpPort":(\d+)/);
  const grpcPort = Number(m[1]);
  return { ...p, grpcPort, httpPort: Number(m[2]), address: `127.0.0.1:${grpcPort}` };
}

export interface AgentProc extends Proc {
  address: string;
}

export async function startSimAgent(neuro: string, count: number, extra: string[] = [], env: Record<string, string> = {}): Promise<AgentProc> {
  const p = run(['agent', 'sim', '--neuro', neuro, '--count', String(count), ...extra], env);
  const m = await p.line(/simulator agent: \d+ instances on (\S+),/);
  return { ...p, address: m[1]! };
}

export async function startTrainerAgent(neuro: string, count: number, extra: string[] = [], env: Record<string, string> = {}): Promise<AgentProc> {
  const p = run(['agent', 'trainer', '--neuro', neuro, '--count', String(count), ...extra], env);
  const m = await p.line(/trainer agent: \d+ instances on (\S+)/);
  return { ...p, address: m[1]! };
}

export function client(address: string, token?: string): Api {
  const metadata = new grpc.Metadata();
  if (token) metadata.set('authorization', `Bearer ${token}`);
  // A channel of its own: a subchannel shared with clients that watched Neuro die would still be in
  // reconnect backoff when the restarted Neuro is already serving.
  return createClient(NeuroOrchestratorService, address, { metadata, channelOptions: { 'grpc.use_local_subchannel_pool': 1 } });
}

/**
 * Resolves once the pools satisfy `pred`, driven by WatchResourcePool's stream (no polling).
 */
export async function poolUntil(api: Api, pred: (sims: PoolStatus, trainers: PoolStatus) => boolean, timeoutMs = 30_000): Promise<{ sims: PoolStatus; trainers: PoolStatus }> {
  const stream = api.watchResourcePool({ includeIsaacPool: true, includeTrainingPool: true });
  const timer = setTimeout(() => stream.cancel(), timeoutMs);
  let last: { sims: PoolStatus; trainers: PoolStatus } | undefined;
  try {
    for await (const m of stream) {
      // Messages that only continue a large snapshot carry no counts.
      if (!m.isaacPool || !m.trainingPool) continue;
      last = { sims: m.isaacPool, trainers: m.trainingPool };
      if (pred(last.sims, last.trainers)) return last;
    }
  } finally {
    clearTimeout(timer);
    stream.cancel();
  }
  throw new Error(`pool never reached the expected state within ${timeoutMs} ms; last: ${JSON.stringify(last, (_k, v) => (typeof v === 'bigint' ? String(v) : v))}`);
}

/** The error a call fails with; fails the test if it succeeds. */
export async function refused(p: Promise<unknown>): Promise<NeuroError> {
  try {
    await p;
  } catch (e) {
    return e as NeuroError;
  }
  throw new Error('the call succeeded');
}
