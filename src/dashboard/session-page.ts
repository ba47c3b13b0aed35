/**
 * One session, live from WatchSession: state, its allocation as a picture, why each instance was
 * chosen, its events, training progress and reward curve (TRAINING/HYBRID), and its simulators'
 * scenes with take-over and keyboard driving (HYBRID, MANUAL).
 */
import { Code } from '@connectrpc/connect';
import { SessionMode, TrainingStatus } from '../gen/neuro/v1/common_pb.js';
import type { Placement, Session, SessionEvent } from '../gen/neuro/v1/neuro_orchestrator_pb.js';
import { allocationSvg } from './allocation.js';
import { api, errorText, isCode, watch } from './api.js';
import { TERMINAL, type App, type Page } from './app.js';
import { rewardChart, type Point } from './chart.js';
import { fmtAge, fmtDateTime, fmtNum, fmtReward, fmtTime, h, mount, toast, tsMs } from './dom.js';
import { modeName, modeTag, stateName, statePill } from './sessions.js';
import { SimView } from './sim-view.js';

const MAX_EVENTS = 500;

function fact(label: string, value: unknown, attrs: Record<string, string> = {}): HTMLElement {
  return h('div', { class: 'fact', ...attrs }, h('span', null, label), h('b', null, value as string));
}

function placementsTable(ps: readonly Placement[]): HTMLElement {
  if (!ps.length) return h('div', { class: 'empty' }, 'No placement recorded.');
  const max = Math.max(1e-9, ...ps.flatMap((p) => p.scores.map((c) => Math.abs(c.value))));
  return h(
    'table',
    { 'data-testid': 'placements' },
    h('thead', null, h('tr', null, h('th', null, 'Instance'), h('th', null, 'Role'), h('th', { class: 'r' }, 'Score'), h('th', null, 'Score components'), h('th', null, 'Why'), h('th', null, 'Candidates'))),
    h(
      'tbody',
      null,
      ps.map((p) =>
        h(
          'tr',
          null,
          h('td', { class: 'mono nowrap' }, p.instanceId),
          h('td', null, p.role),
          h('td', { class: 'r num' }, p.score.toFixed(2)),
          h(
            'td',
            null,
            h(
              'div',
              { class: 'scores' },
              p.scores.map((c) =>
                h('div', { class: 'score' }, h('span', null, c.name), h('div', { class: 'track' }, h('i', { class: c.value < 0 ? 'neg' : '', style: `width:${(100 * Math.abs(c.value)) / max}%` })), h('span', { class: 'num', style: 'text-align:right' }, c.value.toFixed(2))),
              ),
            ),
          ),
          h('td', null, p.reason || '—'),
          h(
            'td',
            null,
            h('div', null, `${fmtNum(p.candidatesConsidered)} considered`),
            Object.keys(p.filtered).length
              ? h(
                  'div',
                  { class: 'filtered', style: 'margin-top:3px' },
                  Object.entries(p.filtered).map(([k, v]) => h('span', { class: 'tag', title: `dropped by the ${k} filter` }, `${k} −${v}`)),
                )
              : null,
          ),
        ),
      ),
    ),
  );
}

function eventsTable(all: readonly SessionEvent[], withProgress: boolean): HTMLElement {
  const events = withProgress ? all : all.filter((e) => e.type !== 'progress');
  if (!events.length) return h('div', { class: 'empty' }, all.length ? 'Only progress reports so far.' : 'No events yet.');
  const rows = [...events].reverse().slice(0, 200);
  return h(
    'table',
    { 'data-testid': 'events' },
    h('thead', null, h('tr', null, h('th', null, '#'), h('th', null, 'Time'), h('th', null, 'Type'), h('th', null, 'State'), h('th', null, 'Message'))),
    h(
      'tbody',
      null,
      rows.map((e) =>
        h(
          'tr',
          { 'data-type': e.type },
          h('td', { class: 'num muted' }, String(e.sequence)),
          h('td', { class: 'num muted', title: fmtDateTime(tsMs(e.time)) }, fmtTime(tsMs(e.time))),
          h('td', null, h('span', { class: 'tag' }, e.type)),
          h('td', null, statePill(e.state)),
          h('td', null, e.message, e.type === 'control' && e.controller ? h('span', { class: 'muted' }, ` (${e.isaacInstanceId} → ${e.controller})`) : null),
        ),
      ),
    ),
  );
}

function trainingStatusName(t: TrainingStatus): string {
  return t === TrainingStatus.TRAINING_STATUS_UNSPECIFIED ? '—' : (TrainingStatus[t] ?? String(t));
}

export function sessionPage(app: App, sessionId: string): Page {
  let sess: Session | undefined;
  let events: SessionEvent[] = [];
  let points: Point[] = [];
  const sims = new Map<string, SimView>();

  const title = h('h1', { class: 'mono', 'data-testid': 'session-id' }, sessionId);
  const badges = h('span', { class: 'row' });
  const terminateBtn = h('button', { class: 'danger', 'data-action': 'terminate', hidden: true, onClick: () => void terminate() }, 'Terminate');
  const errBox = h('div', { class: 'err' });
  const factsBody = h('div', { class: 'body facts' });
  const trainingCard = h('section', { class: 'card', hidden: true, 'data-testid': 'training' });
  const allocBody = h('div', { class: 'body alloc' });
  const allocHint = h('small', null, 'the trainer, its simulators and their ZeroMQ REQ-REP channels');
  const simsWrap = h('div', { class: 'sims' });
  const simsCard = h('section', { hidden: true, class: 'stack' }, h('div', { class: 'row' }, h('h2', { style: 'margin:0;font-size:14px' }, 'Simulators'), h('span', { class: 'muted', 'data-testid': 'sims-hint' })), simsWrap);
  const placementsBody = h('div', { style: 'overflow:auto' });
  const eventsBody = h('div', { class: 'events' });
  const progressToggle = h('input', { type: 'checkbox', onChange: () => mount(eventsBody, eventsTable(events, progressToggle.checked)) });

  const el = h(
    'div',
    { class: 'page', 'data-page': 'session' },
    h('div', { class: 'page-head' }, h('a', { class: 'crumbs', href: '#/sessions' }, 'Sessions /'), title, badges, h('span', { class: 'spacer' }), terminateBtn),
    errBox,
    h(
      'div',
      { class: 'stack' },
      h('section', { class: 'card' }, factsBody),
      trainingCard,
      h('section', { class: 'card' }, h('header', null, 'Allocation', allocHint), allocBody),
      simsCard,
      h('section', { class: 'card' }, h('header', null, 'Placements', h('small', null, 'why each instance was chosen: every score of every stage, and what the filters dropped')), placementsBody),
      h('section', { class: 'card' }, h('header', null, 'Events', h('small', null, 'newest first'), h('span', { class: 'spacer' }), h('label', { class: 'row muted', style: 'font-weight:400;gap:6px' }, progressToggle, 'progress reports')), eventsBody),
    ),
  );

  const addPoint = (ev: SessionEvent | undefined, s: Session | undefined) => {
    const p = ev?.progress ?? s?.progress;
    if (!p) return;
    const x = Number(p.episodesDone);
    if (!x && !p.meanReward) return;
    const last = points[points.length - 1];
    if (last && last.x === x) last.y = p.meanReward;
    else if (!last || x > last.x) points.push({ x, y: p.meanReward });
  };

  const render = () => {
    const s = sess;
    if (!s) return;
    const state = stateName(s.state);
    const live = !TERMINAL.has(state);
    mount(badges, modeTag(s.mode), statePill(s.state));
    terminateBtn.hidden = !live;
    const created = tsMs(s.createdAt);
    const ended = tsMs(s.endedAt);
    const scene = s.sceneConfig;
    mount(
      factsBody,
      fact('Epoch', String(s.epoch)),
      fact('Created', fmtDateTime(created)),
      ended ? fact('Ended', `${fmtAge(ended)} ago`) : fact('Age', fmtAge(created)),
      s.mode !== SessionMode.MANUAL ? fact('Training status', trainingStatusName(s.trainingStatus), { 'data-testid': 'training-status' }) : fact('Simulation', s.status?.status || '—'),
      fact('Robot', scene?.robotUrdf || '—'),
      fact('Obstacles', String(scene?.obstacles.length ?? 0)),
      s.streamConfig ? fact('Stream', `${s.streamConfig.width}×${s.streamConfig.height} @ ${s.streamConfig.fps} · ${s.streamConfig.transport || 'webrtc'}`) : null,
      s.trainingConfig ? fact('Algorithm', `${s.trainingConfig.algorithm} · ${fmtNum(s.trainingConfig.totalEpisodes)} episodes`) : null,
      s.failureReason ? h('div', { class: 'fact', style: 'flex-basis:100%' }, h('span', null, 'Failure'), h('b', { class: 'err', style: 'font-size:13px' }, s.failureReason)) : null,
    );

    // Training progress and the reward curve.
    if (s.mode === SessionMode.TRAINING || s.mode === SessionMode.HYBRID) {
      trainingCard.hidden = false;
      const p = s.progress;
      const total = Number(p?.totalEpisodes ?? 0) || (s.trainingConfig?.totalEpisodes ?? 0);
      const done = Number(p?.episodesDone ?? 0);
      const pct = total ? Math.min(100, (100 * done) / total) : 0;
      const demos = p ? Object.values(p.demonstrations).reduce((a, b) => a + Number(b), 0) : 0;
      mount(
        trainingCard,
        h('header', null, 'Training', h('small', null, 'live from the trainer’s progress reports'), h('span', { class: 'spacer' }), h('span', { class: 'muted num' }, `${pct.toFixed(1)}%`)),
        h(
          'div',
          { class: 'body stack' },
          h('div', { class: 'progress', style: 'height:8px' }, h('i', { style: `width:${pct}%` })),
          h(
            'div',
            { class: 'facts' },
            fact('Episodes', `${fmtNum(done)} / ${fmtNum(total)}`, { 'data-testid': 'episodes' }),
            fact('Mean reward', p ? fmtReward(p.meanReward) : '—', { 'data-testid': 'mean-reward' }),
            fact('First mean reward', p ? fmtReward(p.firstMeanReward) : '—'),
            fact('Last episode', p ? fmtReward(p.lastReward) : '—'),
            fact('Env steps/s', p ? fmtNum(p.envStepsPerSecond) : '—'),
            fact('Env steps', p ? fmtNum(p.envSteps) : '—'),
            fact('Policy loss', p ? p.policyLoss.toFixed(4) : '—'),
            s.mode === SessionMode.HYBRID ? fact('Demonstrations (learner)', fmtNum(demos), { 'data-testid': 'learner-demos' }) : null,
          ),
          h('div', { class: 'chart' }, rewardChart(points, p && points.length ? p.firstMeanReward : undefined, Math.max(320, (trainingCard.clientWidth || el.clientWidth) - 30))),
        ),
      );
    }

    allocHint.textContent = s.mode === SessionMode.MANUAL ? 'one simulator, driven by its human over the control WebSocket' : 'the trainer, its simulators and their ZeroMQ REQ-REP channels';
    mount(allocBody, allocationSvg(s, (id) => app.pool.instances.get(id), Math.max(640, (allocBody.clientWidth || el.clientWidth) - 30)));
    mount(placementsBody, placementsTable(s.placements));
    mount(eventsBody, eventsTable(events, progressToggle.checked));

    // Simulators people can watch (and drive).
    const endpoints =
      s.mode === SessionMode.HYBRID
        ? s.simulatorEndpoints.map((e) => ({ id: e.isaacInstanceId, url: e.controlWsUrl }))
        : s.mode === SessionMode.MANUAL && s.instanceId
          ? [{ id: s.instanceId, url: s.controlWsUrl }]
          : [];
    simsCard.hidden = !endpoints.length;
    const hint = simsCard.querySelector('[data-testid="sims-hint"]')!;
    hint.textContent =
      s.mode === SessionMode.HYBRID
        ? `Scenes live from each simulator’s control WebSocket. Take control to drive one with the keyboard; what you do is recorded as demonstrations${s.hybridConfig && !s.hybridConfig.recordDemonstrations ? ' (recording is off for this session)' : ''}.`
        : 'The scene live from the simulator’s control WebSocket.';
    if (live) {
      for (const e of endpoints) {
        if (sims.has(e.id) || !e.url) continue;
        const v = new SimView({ sessionId: s.sessionId, instanceId: e.id, wsUrl: e.url, mode: modeName(s.mode) as 'HYBRID' | 'MANUAL', allowForce: s.hybridConfig?.allowForceTakeover });
        sims.set(e.id, v);
        simsWrap.appendChild(v.el);
      }
    }
    const ctl = new Map(s.controllers.map((c) => [c.isaacInstanceId, c.controller]));
    for (const [id, v] of sims) {
      const learner = s.progress?.demonstrations[id];
      v.update(s.mode === SessionMode.HYBRID ? (ctl.get(id) ?? 'ai') : undefined, learner !== undefined ? Number(learner) : undefined);
      if (!live) v.end();
    }
  };

  let frame = 0;
  const schedule = () => {
    if (frame) return;
    frame = requestAnimationFrame(() => {
      frame = 0;
      render();
    });
  };

  const terminate = async () => {
    if (!confirm(`Terminate session ${sessionId}? Every instance it holds is released.`)) return;
    try {
      const r = await api.terminateSession({ sessionId, reason: 'terminated from the dashboard' });
      toast(r.message || 'Session terminated');
    } catch (e) {
      toast(`Terminate failed: ${errorText(e)}`, true);
    }
  };

  const stop = watch({
    open: (signal) => api.watchSession({ sessionId }, { signal }),
    reopenOnEnd: false,
    onMessage: (m) => {
      if (!m.session) return;
      if (!m.event) {
        // The first message: the session as it is, with its recent events.
        events = [...m.session.events];
        points = [];
        for (const e of events) if (e.type === 'progress') addPoint(e, undefined);
        addPoint(undefined, m.session);
      } else {
        if (!events.length || m.event.sequence > events[events.length - 1]!.sequence) events.push(m.event);
        if (events.length > MAX_EVENTS) events.splice(0, events.length - MAX_EVENTS);
        if (m.event.type === 'progress') addPoint(m.event, m.session);
      }
      sess = m.session;
      errBox.textContent = '';
      schedule();
    },
    onState: (st, err) => {
      if (st !== 'down' || !err) return;
      if (isCode(err, Code.NotFound)) {
        errBox.textContent = `Session ${sessionId} not found.`;
        mount(factsBody, h('div', { class: 'empty' }, 'No such session (it may have been cleaned up after its retention period).'));
      } else errBox.textContent = `Lost the live view: ${errorText(err)} — reconnecting…`;
    },
  });

  // Ages and the pool's view of the instances change without session events; the pictures follow the width.
  const ticker = setInterval(schedule, 5000);
  let lastWidth = 0;
  const ro = new ResizeObserver(() => {
    if (Math.abs(el.clientWidth - lastWidth) < 8) return;
    lastWidth = el.clientWidth;
    schedule();
  });
  ro.observe(el);

  return {
    el,
    dispose() {
      stop();
      clearInterval(ticker);
      ro.disconnect();
      if (frame) cancelAnimationFrame(frame);
      for (const v of sims.values()) v.dispose();
    },
  };
}
