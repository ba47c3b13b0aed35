/**
 * Summarizes a V8 .cpuprofile (from `npm run bench -- --profile DIR`, or any `node --cpu-prof`):
 * where the time went by function (self and inclusive) and by file or package.
 *
 *   node --import tsx bench/profile.ts FILE.cpuprofile [--top 30] [--focus substring] [--after seconds]
 *
 * --focus keeps only the samples whose stack contains a function or file matching the substring, to
 * see what one path (e.g. "heartbeat") costs and what it calls. --after skips the first seconds of the
 * profile (the process starting), so the steady state is what is summarized.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  children?: number[];
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '30' }, focus: { type: 'string' }, after: { type: 'string', default: '0' } } });
if (!positionals.length) {
  process.stderr.write('usage: node --import tsx bench/profile.ts FILE.cpuprofile [--top N] [--focus substring] [--after seconds]\n');
  process.exit(2);
}
const top = Number(values.top);

function short(url: string): string {
  const u = url.replace(/^file:\/\//, '');
  const nm = u.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = u.slice(nm + 'node_modules/'.length).split('/');
    return rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!;
  }
  const src = u.indexOf('/src/');
  if (src >= 0) return u.slice(src + 1);
  return u || '(native)';
}

for (const file of positionals) {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const key = (n: Node) => {
    const f = n.callFrame;
    return `${f.functionName || '(anonymous)'} ${short(f.url)}${f.url ? `:${f.lineNumber + 1}` : ''}`;
  };
  const self = new Map<string, number>();
  const incl = new Map<string, number>();
  const perFile = new Map<string, number>();
  let total = 0;
  let kept = 0;
  let elapsed = 0;
  const after = Number(values.after) * 1000;
  for (let i = 0; i < p.samples.length; i++) {
    const dt = (p.timeDeltas[i] ?? 0) / 1000;
    elapsed += dt;
    if (elapsed < after) continue;
    total += dt;
    const leaf = byId.get(p.samples[i]!)!;
    const stack: Node[] = [];
    for (let id: number | undefined = leaf.id; id !== undefined; id = parent.get(id)) stack.push(byId.get(id)!);
    if (values.focus && !stack.some((n) => key(n).includes(values.focus!))) continue;
    kept += dt;
    self.set(key(leaf), (self.get(key(leaf)) ?? 0) + dt);
    const lf = leaf.callFrame.url ? short(leaf.callFrame.url) : `(${leaf.callFrame.functionName || 'native'})`;
    perFile.set(lf, (perFile.get(lf) ?? 0) + dt);
    for (const k of new Set(stack.map(key))) incl.set(k, (incl.get(k) ?? 0) + dt);
  }
  const pct = (ms: number) => `${((ms / total) * 100).toFixed(1).padStart(5)}%`;
  const list = (m: Map<string, number>) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([k, ms]) => `  ${ms.toFixed(0).padStart(7)} ms ${pct(ms)}  ${k}`)
      .join('\n');
  process.stdout.write(
    [
      `${file}: ${(total / 1000).toFixed(2)} s sampled${values.focus ? `, ${(kept / 1000).toFixed(2)} s (${pct(kept).trim()}) with "${values.focus}" on the stack` : ''}`,
      'self time by file or package:',
      list(perFile),
      'self time by function:',
      list(self),
      'inclusive time by function:',
      list(incl),
      '',
    ].join('\n'),
  );
}
