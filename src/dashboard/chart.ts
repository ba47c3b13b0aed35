/**
 * The reward curve: mean episode reward over episodes, from WatchSession's progress events, drawn as
 * an SVG line with the first report's reward as a dashed baseline.
 */
import { s } from './dom.js';

export interface Point {
  x: number;
  y: number;
}

/** At most `max` points, keeping the first and the last (the curve's shape, not every report). */
export function downsample(points: readonly Point[], max: number): Point[] {
  if (points.length <= max) return [...points];
  const out: Point[] = [];
  const step = (points.length - 1) / (max - 1);
  for (let k = 0; k < max; k++) out.push(points[Math.round(k * step)]!);
  return out;
}

/** Round tick values covering [lo, hi]. */
export function ticks(lo: number, hi: number, count: number): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((st) => st >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  return out;
}

const M = { l: 52, r: 16, t: 14, b: 28 };

/** A tick label: thousands as "k"; otherwise as many decimals as the ticks' step needs. */
export function tickLabel(v: number, step = 1): string {
  const a = Math.abs(v);
  if (a >= 1000) return `${(v / 1000).toFixed(v % 1000 === 0 ? 0 : 1)}k`;
  let decimals = 0;
  while (decimals < 3 && Math.abs(step * 10 ** decimals - Math.round(step * 10 ** decimals)) > 1e-6) decimals++;
  return v.toFixed(decimals);
}


export function rewardChart(points: readonly Point[], baseline: number | undefined, width: number, H = 220): SVGSVGElement {
  const W = Math.max(320, Math.round(width));
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: 'img', 'aria-label': 'reward curve', 'data-points': points.length });
  svg.appendChild(
    s('defs', null, s('linearGradient', { id: 'rewardFill', x1: 0, y1: 0, x2: 0, y2: 1 }, s('stop', { offset: '0%', 'stop-color': '#56d4dd', 'stop-opacity': 0.28 }), s('stop', { offset: '100%', 'stop-color': '#56d4dd', 'stop-opacity': 0 }))),
  );
  const pts = downsample(points, 600);
  if (pts.length === 0) {
    svg.appendChild(s('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle' }, 'Waiting for the trainer’s first progress report…'));
    return svg;
  }
  const xs = pts.map((p) => p.x);
  const ys = pts.map((p) => p.y);
  if (baseline !== undefined && Number.isFinite(baseline)) ys.push(baseline);
  let x0 = Math.min(...xs);
  let x1 = Math.max(...xs);
  if (x1 === x0) {
    x0 = Math.max(0, x0 - 1);
    x1 = x1 + 1;
  }
  let y0 = Math.min(...ys);
  let y1 = Math.max(...ys);
  const pad = (y1 - y0) * 0.1 || Math.max(1, Math.abs(y0) * 0.1);
  y0 -= pad;
  y1 += pad;
  const X = (v: number) => M.l + ((v - x0) / (x1 - x0)) * (W - M.l - M.r);
  const Y = (v: number) => M.t + (1 - (v - y0) / (y1 - y0)) * (H - M.t - M.b);

  const yt = ticks(y0, y1, 4);
  for (const v of yt) {
    svg.appendChild(s('line', { class: 'gridline', x1: M.l, x2: W - M.r, y1: Y(v), y2: Y(v) }));
    svg.appendChild(s('text', { x: M.l - 8, y: Y(v) + 3.5, 'text-anchor': 'end' }, tickLabel(v, yt.length > 1 ? yt[1]! - yt[0]! : 1)));
  }
  const xt = ticks(x0, x1, 6);
  for (const v of xt) {
    svg.appendChild(s('text', { x: X(v), y: H - 8, 'text-anchor': 'middle' }, tickLabel(v, xt.length > 1 ? xt[1]! - xt[0]! : 1)));
  }
  svg.appendChild(s('line', { class: 'axis', x1: M.l, x2: W - M.r, y1: H - M.b, y2: H - M.b }));
  svg.appendChild(s('text', { x: W - M.r, y: M.t + 2, 'text-anchor': 'end' }, 'mean episode reward · episodes →'));
  if (baseline !== undefined && Number.isFinite(baseline)) {
    svg.appendChild(s('line', { class: 'base', x1: M.l, x2: W - M.r, y1: Y(baseline), y2: Y(baseline) }));
  }
  const d = pts.map((p, k) => `${k ? 'L' : 'M'}${X(p.x).toFixed(1)},${Y(p.y).toFixed(1)}`).join('');
  const first = pts[0]!;
  const last = pts[pts.length - 1]!;
  svg.appendChild(s('path', { class: 'area', d: `${d}L${X(last.x).toFixed(1)},${H - M.b}L${X(first.x).toFixed(1)},${H - M.b}Z` }));
  svg.appendChild(s('path', { class: 'line', d }));
  svg.appendChild(s('circle', { cx: X(last.x), cy: Y(last.y), r: 4, fill: '#56d4dd', stroke: '#0b0f14', 'stroke-width': 2 }));
  return svg;
}
