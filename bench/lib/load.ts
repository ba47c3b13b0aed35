/**
 * The load client's loops and the statistics of what they measure. Closed loops: a worker sends its next
 * call when the previous one has answered, so concurrency is exactly the number of workers.
 */
import { nowMs } from './procs.js';

/** Nearest-rank percentile of unsorted samples (p in 0..100). */
export function percentile(xs: number[], p: number): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * s.length);
  return s[Math.min(s.length, Math.max(1, rank)) - 1]!;
}

export function median(xs: number[]): number {
  const v = xs.filter((x) => Number.isFinite(x));
  if (!v.length) return NaN;
  const s = [...v].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export interface LatencyResult {
  n: number;
  p50: number;
  p99: number;
  max: number;
  errors: number;
  firstError?: string;
}

export function summarize(samples: number[], errors = 0, firstError?: string): LatencyResult {
  return { n: samples.length, p50: percentile(samples, 50), p99: percentile(samples, 99), max: Math.max(...samples), errors, firstError };
}

/**
 * `n` calls one after another; `fn` returns the milliseconds to record (so a cycle can time only
 * its create), or undefined to record its whole duration.
 */
export async function sequential(n: number, fn: (i: number) => Promise<number | void>): Promise<LatencyResult> {
  const samples: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  for (let i = 0; i < n; i++) {
    const t = nowMs();
    try {
      const r = await fn(i);
      samples.push(typeof r === 'number' ? r : nowMs() - t);
    } catch (e) {
      errors++;
      firstError ??= String((e as Error).message ?? e);
    }
  }
  return summarize(samples, errors, firstError);
}

export interface ThroughputResult {
  concurrency: number;
  ops: number;
  seconds: number;
  perSecond: number;
  errors: number;
  firstError?: string;
  /** Ops completed from the first call to the last answer, warm-up included (for CPU per op). */
  allOps: number;
  /** Latency of each op while under this load. */
  p50: number;
  p99: number;
}

/**
 * `concurrency` closed-loop workers for `warmupMs` (not counted) then `durationMs` (counted: ops that
 * complete inside the window, whenever they started). `fn(worker, seq)` does one op.
 */
export async function closedLoop(
  concurrency: number,
  durationMs: number,
  warmupMs: number,
  fn: (worker: number, seq: number) => Promise<unknown>,
): Promise<ThroughputResult> {
  const t0 = nowMs();
  const from = t0 + warmupMs;
  const until = from + durationMs;
  let ops = 0;
  let allOps = 0;
  let errors = 0;
  let firstError: string | undefined;
  const lat: number[] = [];
  const worker = async (w: number) => {
    for (let seq = 0; nowMs() < until; seq++) {
      const t = nowMs();
      try {
        await fn(w, seq);
        const done = nowMs();
        allOps++;
        if (done >= from && done <= until) {
          ops++;
          lat.push(done - t);
        }
      } catch (e) {
        errors++;
        firstError ??= String((e as Error).message ?? e);
        if (errors > 1000) throw new Error(`too many errors; first: ${firstError}`);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w)));
  const seconds = durationMs / 1000;
  return { concurrency, ops, allOps, seconds, perSecond: ops / seconds, errors, firstError, p50: percentile(lat, 50), p99: percentile(lat, 99) };
}

/** Runs `fn` on `items` with at most `concurrency` at a time. */
export async function pool<T>(items: T[], concurrency: number, fn: (item: T, i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
}
