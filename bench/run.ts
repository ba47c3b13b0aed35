/**
 * `npm run bench`: Neuro's benchmark. Starts real processes on loopback (Neuro with its SQLite store,
 * reference agents hosting virtual instances, a no-op gRPC server for the floor), drives them from this
 * process (the load client), prints a table of medians next to their targets, and writes every figure
 * with the machine's facts to bench/out/results-<date>.json. See bench/README.md.
 *
 *   npm run bench                       the whole suite, 3 runs, medians
 *   npm run bench -- --runs 5
 *   npm run bench -- --quick            1 run, small sizes: a smoke test while developing
 *   npm run bench -- --only floor,manual
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { median } from './lib/load.js';
import { killAll, machineCpu, profiling, takeDeaths } from './lib/procs.js';
import { FULL, QUICK, round, type Figures, type Part, type PartResult } from './parts/common.js';
import { gang, manual } from './parts/cycles.js';
import { floor } from './parts/floor.js';
import { memory } from './parts/memory.js';
import { recovery } from './parts/recovery.js';
import { scale } from './parts/scale.js';

const PARTS: Record<string, Part> = { floor, manual, gang, scale, recovery, memory };
const HERE = dirname(fileURLToPath(import.meta.url));

const USAGE = `usage: npm run bench -- [--runs N] [--quick] [--only ${Object.keys(PARTS).join(',')}] [--out FILE]
  --runs N    repeat every part N times, each on fresh processes, and report medians (default 3; 1 with --quick)
  --quick     small sizes and short windows: a smoke test, not figures to keep
  --only P,Q  run only these parts (heartbeat CPU is measured inside "scale")
  --out FILE  where to write the JSON (default bench/out/results-<date>.json)
  --profile D run every Neuro under node --cpu-prof, writing .cpuprofile files to D (summarize them
              with: node --import tsx bench/profile.ts FILE); figures taken this way are not comparable`;

interface Target {
  name: string;
  figure: string;
  /** What the figure is compared with: a number, or a factor of another figure. */
  bound: number | { factor: number; of: string };
  op: '<=' | '>=';
  unit: string;
}

function targets(sizes: typeof FULL): Target[] {
  const big = sizes.scaleSizes[sizes.scaleSizes.length - 1]!;
  const small = sizes.scaleSizes[0]!;
  return [
    { name: 'MANUAL create p50 ≤ 2.5× floor p50', figure: 'manual.create_p50_ms', bound: { factor: 2.5, of: 'floor.p50_ms' }, op: '<=', unit: 'ms' },
    { name: 'MANUAL cycles/s at c=64 ≥ 0.2× floor calls/s', figure: 'manual.c64_per_s', bound: { factor: 0.2, of: 'floor.c64_per_s' }, op: '>=', unit: '/s' },
    { name: 'gang cycles/s at c=64 ≥ 0.06× floor calls/s', figure: 'gang.c64_per_s', bound: { factor: 0.06, of: 'floor.c64_per_s' }, op: '>=', unit: '/s' },
    {
      name: `allocation p99 at ${big.toLocaleString('en-US')} ≤ 1.25× p99 at ${small.toLocaleString('en-US')}`,
      figure: `scale.${big}.alloc_p99_ms`,
      bound: { factor: 1.25, of: `scale.${small}.alloc_p99_ms` },
      op: '<=',
      unit: 'ms',
    },
    ...sizes.heartbeatSizes.map(
      (n): Target => ({
        name: `heartbeats ≤ 5% of a core per 1,000 instances (at ${n.toLocaleString('en-US')})`,
        figure: `heartbeat.${n}.pct_core_per_1k`,
        bound: 5,
        op: '<=',
        unit: '%',
      }),
    ),
    { name: `recovery of ${sizes.recoverySessions.toLocaleString('en-US')} sessions ≤ 1 s`, figure: 'recovery.all_sessions_ms', bound: 1000, op: '<=', unit: 'ms' },
    {
      name: `RSS ≤ 300 MB at ${sizes.memoryInstances.toLocaleString('en-US')} instances + ${sizes.memorySessions.toLocaleString('en-US')} sessions`,
      figure: 'memory.rss_mb',
      bound: 300,
      op: '<=',
      unit: 'MB',
    },
  ];
}

function unitOf(name: string): string {
  if (name.endsWith('_ms') || name.includes('_ms_per_')) return 'ms';
  if (name.endsWith('_per_s')) return '/s';
  if (name.endsWith('_pct') || name.endsWith('_per_1k')) return '%';
  if (name.endsWith('_mb')) return 'MB';
  if (name.endsWith('_s')) return 's';
  return '';
}

function fmt(v: number | undefined): string {
  if (v === undefined || !Number.isFinite(v)) return '-';
  const a = Math.abs(v);
  if (a >= 1000) return Math.round(v).toLocaleString('en-US');
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

function table(head: string[], rows: string[][]): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join('  ').trimEnd();
  return [line(head), line(w.map((n) => '-'.repeat(n))), ...rows.map(line)].join('\n');
}

function machine() {
  const cpus = os.cpus();
  let commit = '';
  let dirty = false;
  try {
    commit = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: HERE, encoding: 'utf8' }).trim();
    dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: HERE, encoding: 'utf8' }).trim() !== '';
  } catch {
    // not a git checkout
  }
  return {
    cores: cpus.length,
    cpuModel: cpus[0]?.model ?? '',
    memoryGb: round(os.totalmem() / 2 ** 30, 1),
    node: process.version,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    loadavgAtStart: os.loadavg().map((x) => round(x, 2)),
    commit,
    dirty,
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string' },
      quick: { type: 'boolean', default: false },
      only: { type: 'string' },
      out: { type: 'string' },
      profile: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const sizes = values.quick ? QUICK : FULL;
  const runs = values.runs !== undefined ? Number(values.runs) : values.quick ? 1 : 3;
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs must be a positive integer, got ${values.runs}`);
  const only = values.only ? values.only.split(',').map((s) => s.trim()).filter(Boolean) : Object.keys(PARTS);
  for (const p of only) if (!PARTS[p]) throw new Error(`unknown part ${JSON.stringify(p)}; parts: ${Object.keys(PARTS).join(', ')}`);

  if (values.profile) {
    profiling.dir = resolve(values.profile);
    mkdirSync(profiling.dir, { recursive: true });
  }
  const started = new Date();
  const facts = machine();
  const log = (s: string) => process.stderr.write(`${s}\n`);
  log(`neuro bench: ${only.join(', ')}; ${runs} run${runs === 1 ? '' : 's'}${values.quick ? ' (quick sizes)' : ''}; ${facts.cores} cores, Node ${facts.node}`);

  // Round-robin (run 1 of every part, then run 2, ...) so a noisy minute spreads over all parts.
  interface RunRecord {
    part: string;
    run: number;
    seconds: number;
    /** How busy the whole machine was during this run (all processes, ours included), and its load. */
    machineBusyPct: number;
    loadavg1: [number, number];
    result?: PartResult;
    error?: string;
  }
  const results: RunRecord[] = [];
  const t0 = Date.now();
  for (let r = 1; r <= runs; r++) {
    for (const name of only) {
      const ts = Date.now();
      const cpu0 = machineCpu();
      const load0 = os.loadavg()[0]!;
      const machineOf = () => {
        const c = machineCpu();
        return { machineBusyPct: round(((c.busy - cpu0.busy) / Math.max(1, c.total - cpu0.total)) * 100, 1), loadavg1: [round(load0, 2), round(os.loadavg()[0]!, 2)] as [number, number] };
      };
      log(`  run ${r}/${runs} ${name} ...`);
      // A run that fails (a process died, a call failed) is retried once on fresh processes; the failure
      // stays in the notes and the JSON.
      let failure = '';
      for (let attempt = 1; attempt <= 2; attempt++) {
        try {
          const result = await PARTS[name]!(sizes, r);
          if (failure) result.notes.unshift(`attempt 1 failed and was retried: ${failure}`);
          const seconds = (Date.now() - ts) / 1000;
          const m = machineOf();
          results.push({ part: name, run: r, seconds, ...m, result });
          log(`    ${seconds.toFixed(1)} s, machine ${m.machineBusyPct}% busy, load ${m.loadavg1.join('→')}: ${Object.entries(result.figures).map(([k, v]) => `${k}=${fmt(v)}`).join(' ')}`);
          for (const n of result.notes) log(`    note: ${n}`);
          break;
        } catch (e) {
          const deaths = takeDeaths();
          const error = [(e as Error).stack ?? String(e), ...deaths].join('\n');
          killAll();
          log(`    attempt ${attempt} FAILED: ${error}`);
          if (attempt === 2) {
            results.push({ part: name, run: r, seconds: (Date.now() - ts) / 1000, ...machineOf(), error: `${failure}\n--- retry:\n${error}` });
          } else failure = error.split('\n').filter((l) => !/^\s+at /.test(l)).join(' ').slice(0, 1500);
        }
      }
    }
  }
  const totalSeconds = (Date.now() - t0) / 1000;

  // Medians per figure, over the runs that produced it.
  // Rows in part order, then in the order a part first reported them.
  const perFigure = new Map<string, number[]>();
  for (const part of only) {
    for (const r of results) {
      if (r.part !== part) continue;
      for (const [k, v] of Object.entries(r.result?.figures ?? {})) perFigure.set(k, [...(perFigure.get(k) ?? []), v]);
    }
  }
  const medians: Figures = {};
  for (const [k, vs] of perFigure) medians[k] = median(vs);

  const verdicts = targets(sizes).map((t) => {
    const value = medians[t.figure];
    const bound = typeof t.bound === 'number' ? t.bound : medians[t.bound.of] !== undefined ? t.bound.factor * medians[t.bound.of]! : undefined;
    const known = value !== undefined && Number.isFinite(value) && bound !== undefined && Number.isFinite(bound);
    const pass = known ? (t.op === '<=' ? value <= bound : value >= bound) : undefined;
    return { ...t, value, boundValue: bound, pass };
  });
  const verdictOf = new Map(verdicts.map((v) => [v.figure, v]));

  const rows = [...perFigure.keys()].map((k) => {
    const v = verdictOf.get(k);
    const target = v && v.boundValue !== undefined ? `${v.op} ${fmt(v.boundValue)}` : '';
    return [k, fmt(medians[k]), unitOf(k), (perFigure.get(k) ?? []).map(fmt).join(' / '), target, v ? (v.pass === undefined ? 'n/a' : v.pass ? 'PASS' : 'MISS') : ''];
  });
  const out = [
    `Neuro bench ${started.toISOString()} — ${facts.cores} cores (${facts.cpuModel}), ${facts.memoryGb} GB, Node ${facts.node}, ${facts.platform}` +
      `${facts.commit ? `, commit ${facts.commit.slice(0, 10)}${facts.dirty ? ' (dirty)' : ''}` : ''}`,
    `${runs} run${runs === 1 ? '' : 's'}${values.quick ? ', QUICK sizes (smoke test, not comparable)' : ''}; medians; ${Math.round(totalSeconds)} s; load average at start ${facts.loadavgAtStart.join(' ')}`,
    `machine busy during each run (all processes, ours included), %: ${only
      .map((p) => `${p} ${results.filter((r) => r.part === p).map((r) => r.machineBusyPct).join('/')}`)
      .join('; ')}`,
    '',
    table(['figure', 'median', 'unit', 'runs', 'target', ''], rows),
    '',
    'targets:',
    ...verdicts.map((v) => `  ${v.pass === undefined ? 'n/a ' : v.pass ? 'PASS' : 'MISS'}  ${v.name}: ${fmt(v.value)} ${v.unit} (bound ${fmt(v.boundValue)} ${v.unit})`),
  ];
  const failed = results.filter((r) => r.error);
  if (failed.length) out.push('', `failed runs: ${failed.map((r) => `${r.part}#${r.run}`).join(', ')} (see the JSON for the errors)`);
  // The same note from several runs is printed once, with the runs it came from.
  const notes = new Map<string, number[]>();
  for (const r of results) for (const n of r.result?.notes ?? []) notes.set(n, [...(notes.get(n) ?? []), r.run]);
  if (notes.size) out.push('', 'notes:', ...[...notes].map(([n, rs]) => `  [run ${rs.join(',')}] ${n}`));
  process.stdout.write(`${out.join('\n')}\n`);

  const file = values.out ?? join(HERE, 'out', `results-${started.toISOString().replace(/[:.]/g, '-')}.json`);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(
    file,
    `${JSON.stringify(
      {
        date: started.toISOString(),
        machine: { ...facts, loadavgAtEnd: os.loadavg().map((x) => round(x, 2)) },
        options: { runs, quick: values.quick, only, sizes },
        totalSeconds: round(totalSeconds, 1),
        medians,
        targets: verdicts.map((v) => ({ name: v.name, figure: v.figure, value: v.value, op: v.op, bound: v.boundValue, pass: v.pass ?? null })),
        runs: results.map((r) => ({
          part: r.part,
          run: r.run,
          seconds: round(r.seconds, 1),
          machineBusyPct: r.machineBusyPct,
          loadavg1: r.loadavg1,
          figures: r.result?.figures,
          notes: r.result?.notes,
          error: r.error,
        })),
      },
      null,
      2,
    )}\n`,
  );
  process.stdout.write(`\nwritten: ${file}\n`);
}

main()
  .catch((e: unknown) => {
    process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
    process.exitCode = 1;
  })
  .finally(() => {
    killAll();
    // Clients' channels and timers must not keep the command alive.
    setTimeout(() => process.exit(), 200).unref();
  });
