/**
 * A session's allocation as a picture: the trainer on the left, its simulators on the right, one
 * ZeroMQ REQ-REP channel per simulator drawn between them with its endpoint and state; for MANUAL,
 * the human's control WebSocket to the one simulator.
 */
import { SessionMode } from '../gen/neuro/v1/common_pb.js';
import type { Session } from '../gen/neuro/v1/neuro_orchestrator_pb.js';
import type { InstanceInfo } from '../gen/neuro/v1/resource_pb.js';
import { s } from './dom.js';

const CHANNEL_COLORS: Record<string, string> = {
  CONNECTED: '#2ea043',
  BOUND: '#388bfd',
  PENDING: '#d29922',
  FAILED: '#f85149',
  CLOSED: '#6e7681',
  // HYBRID: a human drives the simulator; the trainer's env is paused.
  PAUSED: '#a371f7',
};

const STATE_COLORS: Record<string, string> = {
  idle: '#2ea043',
  running: '#388bfd',
  joining: '#a371f7',
  draining: '#d29922',
  unhealthy: '#f85149',
  gone: '#545d68',
};

const NODE_W = 240;
const SIM_H = 50;
const SIM_GAP = 12;
const LEFT_X = 16;

function ellipsize(t: string, max: number): string {
  return t.length > max ? `${t.slice(0, max - 1)}…` : t;
}

function node(x: number, y: number, w: number, hgt: number, title: string, sub: string, color: string, badge?: { text: string; color: string }) {
  return s(
    'g',
    { class: 'node', 'data-node': title },
    s('rect', { x, y, width: w, height: hgt, rx: 7 }),
    s('rect', { x: x + 1, y: y + 6, width: 3, height: hgt - 12, rx: 1.5, fill: color, stroke: 'none' }),
    s('text', { x: x + 14, y: y + 20, class: 'm' }, ellipsize(title, 26)),
    s('text', { x: x + 14, y: y + 37, class: 's' }, ellipsize(sub, 34)),
    badge ? s('text', { x: x + w - 10, y: y + 20, 'text-anchor': 'end', class: 's', fill: badge.color, style: `fill:${badge.color};font-weight:600` }, badge.text) : null,
  );
}

/** The allocation picture of `sess`; `lookup` gives the pool's view of an instance (host, state). */
export function allocationSvg(sess: Session, lookup: (id: string) => InstanceInfo | undefined, width: number): SVGSVGElement {
  const W = Math.max(640, Math.round(width));
  const RIGHT_X = W - NODE_W - 16;
  const manual = sess.mode === SessionMode.MANUAL;
  const sims = manual ? (sess.instanceId ? [sess.instanceId] : []) : sess.isaacInstanceIds;
  const n = Math.max(1, sims.length);
  const height = Math.max(110, n * SIM_H + (n - 1) * SIM_GAP + 32);
  const svg = s('svg', { viewBox: `0 0 ${W} ${height}`, width: W, height, role: 'img', 'aria-label': 'allocation', 'data-testid': 'allocation' });
  const leftH = manual ? 50 : 74;
  const leftY = height / 2 - leftH / 2;
  const controllers = new Map(sess.controllers.map((c) => [c.isaacInstanceId, c.controller]));
  const channels = new Map(sess.zmqChannels.map((c) => [c.isaacInstanceId, c]));

  if (!sims.length) {
    svg.appendChild(s('text', { x: W / 2, y: height / 2, 'text-anchor': 'middle', class: 's' }, 'Nothing allocated'));
    return svg;
  }

  // Edges first, so nodes sit on top.
  sims.forEach((id, k) => {
    const y = 16 + k * (SIM_H + SIM_GAP) + SIM_H / 2;
    const x1 = LEFT_X + NODE_W;
    const y1 = leftY + leftH / 2;
    const x2 = RIGHT_X;
    const mx = (x1 + x2) / 2;
    const ch = channels.get(id);
    const color = manual ? '#a371f7' : CHANNEL_COLORS[ch?.state ?? ''] ?? '#6e7681';
    const dashed = !manual && ch?.state !== 'CONNECTED';
    svg.appendChild(
      s('path', {
        d: `M${x1},${y1} C${mx},${y1} ${mx},${y} ${x2},${y}`,
        fill: 'none',
        stroke: color,
        'stroke-width': 2,
        'stroke-dasharray': dashed ? '5 4' : null,
        opacity: 0.9,
        'data-channel': id,
        'data-channel-state': ch?.state ?? '',
      }),
    );
    const label = manual ? 'control WebSocket' : `${ch?.zmqEndpoint ?? 'no channel'}`;
    const state = manual ? '' : ` · ${(ch?.state ?? 'PENDING').toLowerCase()}`;
    const lx = x2 - 12;
    svg.appendChild(s('text', { x: lx, y: y - 6, 'text-anchor': 'end', class: 's', style: `fill:${color}` }, `${label}${state}`));
  });

  // Left node: the trainer (or the human).
  if (manual) {
    svg.appendChild(node(LEFT_X, leftY, NODE_W, leftH, 'Operator', 'browser · WebSocket + WebRTC', '#a371f7'));
  } else {
    const t = sess.trainingInstanceId ? lookup(sess.trainingInstanceId) : undefined;
    const g = node(
      LEFT_X,
      leftY,
      NODE_W,
      leftH,
      sess.trainingInstanceId || 'no trainer',
      t ? `${t.host} · ${t.gpuIds.length} GPUs · ${t.memoryGb} GB` : 'trainer',
      STATE_COLORS[t?.status ?? 'running'] ?? '#388bfd',
      { text: 'TRAINER', color: '#79c0ff' },
    );
    const algo = sess.trainingConfig ? `${sess.trainingConfig.algorithm} · ${sess.trainingConfig.parallelEnvs || 1} envs/sim` : '';
    g.appendChild(s('text', { x: LEFT_X + 14, y: leftY + 56, class: 's' }, algo));
    svg.appendChild(g);
  }

  // Right nodes: the simulators.
  sims.forEach((id, k) => {
    const y = 16 + k * (SIM_H + SIM_GAP);
    const info = lookup(id);
    const ctl = controllers.get(id);
    const badge = sess.mode === SessionMode.HYBRID ? { text: ctl && ctl !== 'ai' ? `HUMAN · ${ellipsize(ctl, 10)}` : 'AI', color: ctl && ctl !== 'ai' ? '#d2a8ff' : '#79c0ff' } : undefined;
    svg.appendChild(node(RIGHT_X, y, NODE_W, SIM_H, id, info ? `${info.host} · ${info.gpuIds[0] ?? ''}` : 'simulator', STATE_COLORS[info?.status ?? 'running'] ?? '#388bfd', badge));
  });
  return svg;
}
