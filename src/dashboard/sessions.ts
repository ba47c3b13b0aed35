/**
 * Sessions: ListSessions as a table, filtered by mode and state, newest first. Refreshed when the
 * pool stream shows an instance's session changing (a session was created or ended anywhere: CLI,
 * Nexus, this page) and every few seconds for progress, so it stays current without a reload.
 */
import { SessionMode } from '../gen/neuro/v1/common_pb.js';
import { SessionState, type Session } from '../gen/neuro/v1/neuro_orchestrator_pb.js';
import { api, errorText } from './api.js';
import { SESSION_STATE_NAMES, TERMINAL, type App, type Page } from './app.js';
import { fmtAge, fmtNum, fmtReward, h, mount, toast, tsMs } from './dom.js';

const PAGE_SIZE = 50;
const POLL_MS = 3000;

export function modeName(m: SessionMode): string {
  return m === SessionMode.SESSION_MODE_UNSPECIFIED ? '—' : (SessionMode[m] ?? String(m));
}

export function stateName(st: SessionState): string {
  return st === SessionState.UNSPECIFIED ? 'UNSPECIFIED' : (SessionState[st] ?? String(st));
}

export function statePill(st: SessionState): HTMLElement {
  const n = stateName(st);
  return h('span', { class: `pill ss-${n.toLowerCase()}`, 'data-state': n }, n.toLowerCase());
}

export function modeTag(m: SessionMode): HTMLElement {
  const n = modeName(m);
  return h('span', { class: `mode m-${n.toLowerCase()}` }, n);
}

function instancesCell(s: Session): HTMLElement {
  if (s.mode === SessionMode.MANUAL) return h('span', { class: 'mono' }, s.instanceId || '—');
  if (!s.trainingInstanceId && !s.isaacInstanceIds.length) return h('span', { class: 'faint' }, '—');
  return h('span', null, h('span', { class: 'mono' }, s.trainingInstanceId || '—'), h('span', { class: 'muted' }, ` + ${s.isaacInstanceIds.length} sim${s.isaacInstanceIds.length === 1 ? '' : 's'}`));
}

function progressCell(s: Session): HTMLElement {
  const p = s.progress;
  if (s.mode === SessionMode.MANUAL || !p) return h('span', { class: 'faint' }, s.mode === SessionMode.MANUAL ? '' : '—');
  const total = Number(p.totalEpisodes) || Number(s.trainingConfig?.totalEpisodes ?? 0);
  const done = Number(p.episodesDone);
  const pct = total ? Math.min(100, (100 * done) / total) : 0;
  return h(
    'div',
    { style: 'display:flex;align-items:center;gap:8px' },
    h('div', { class: 'progress', style: 'width:90px' }, h('i', { style: `width:${pct}%` })),
    h('span', { class: 'num muted' }, `${fmtNum(done)}/${fmtNum(total)}`),
  );
}

export function sessionsPage(app: App): Page {
  const params = new URLSearchParams(location.hash.split('?')[1] ?? '');
  let mode = params.get('mode') ?? '';
  let state = params.get('state') ?? '';
  const tokens: string[] = [''];
  let pageIdx = 0;
  let nextToken = '';
  let total = 0;

  const modeSel = h(
    'select',
    { 'aria-label': 'mode', 'data-filter': 'mode', onChange: () => ((mode = modeSel.value), resetPaging()) },
    h('option', { value: '' }, 'All modes'),
    ['MANUAL', 'TRAINING', 'HYBRID'].map((m) => h('option', { value: m, selected: m === mode }, m)),
  );
  const stateSel = h(
    'select',
    { 'aria-label': 'state', 'data-filter': 'state', onChange: () => ((state = stateSel.value), resetPaging()) },
    h('option', { value: '' }, 'All states'),
    SESSION_STATE_NAMES.map((st) => h('option', { value: st, selected: st === state }, st.toLowerCase())),
  );
  const count = h('span', { class: 'muted num' });
  const tbody = h('tbody');
  const prev = h('button', { class: 'small', onClick: () => (pageIdx--, void load()) }, '← Newer');
  const next = h('button', { class: 'small', onClick: () => (tokens[pageIdx + 1] = nextToken, pageIdx++, void load()) }, 'Older →');
  const errBox = h('div', { class: 'err' });

  const el = h(
    'div',
    { class: 'page', 'data-page': 'sessions' },
    h(
      'div',
      { class: 'page-head' },
      h('h1', null, 'Sessions'),
      count,
      h('span', { class: 'spacer' }),
      modeSel,
      stateSel,
      h('button', { class: 'primary', 'data-action': 'new-session', onClick: () => app.openCreate() }, '+ New session'),
    ),
    errBox,
    h(
      'div',
      { class: 'card' },
      h(
        'table',
        { 'data-testid': 'sessions-table' },
        h(
          'thead',
          null,
          h('tr', null, h('th', null, 'Session'), h('th', null, 'Mode'), h('th', null, 'State'), h('th', null, 'Instances'), h('th', null, 'Progress'), h('th', { class: 'r' }, 'Mean reward'), h('th', { class: 'r' }, 'Age'), h('th', null, '')),
        ),
        tbody,
      ),
      h('div', { class: 'row', style: 'padding:10px 12px;justify-content:flex-end' }, prev, next),
    ),
  );

  const row = (s: Session) => {
    const live = !TERMINAL.has(stateName(s.state));
    const created = tsMs(s.createdAt);
    const ended = tsMs(s.endedAt);
    return h(
      'tr',
      { class: 'link', 'data-session': s.sessionId, onClick: () => app.navigate(`#/sessions/${encodeURIComponent(s.sessionId)}`) },
      h('td', null, h('a', { class: 'mono', href: `#/sessions/${encodeURIComponent(s.sessionId)}` }, s.sessionId)),
      h('td', null, modeTag(s.mode)),
      h('td', null, statePill(s.state), s.failureReason ? h('div', { class: 'faint', style: 'font-size:11px;max-width:260px;overflow:hidden;text-overflow:ellipsis;white-space:nowrap', title: s.failureReason }, s.failureReason) : null),
      h('td', null, instancesCell(s)),
      h('td', null, progressCell(s)),
      h('td', { class: 'r num' }, s.progress ? fmtReward(s.progress.meanReward) : h('span', { class: 'faint' }, '—')),
      h('td', { class: 'r num muted', title: created ? new Date(created).toISOString() : '' }, ended ? `ended ${fmtAge(ended)} ago` : fmtAge(created)),
      h(
        'td',
        { class: 'r' },
        live
          ? h(
              'button',
              {
                class: 'danger small',
                'data-action': 'terminate',
                onClick: (e: Event) => {
                  e.stopPropagation();
                  void terminate(s.sessionId);
                },
              },
              'Terminate',
            )
          : null,
      ),
    );
  };

  const terminate = async (id: string) => {
    if (!confirm(`Terminate session ${id}? Every instance it holds is released.`)) return;
    try {
      const r = await api.terminateSession({ sessionId: id, reason: 'terminated from the dashboard' });
      toast(r.message || `${id} terminated`);
      void load();
    } catch (e) {
      toast(`Terminate failed: ${errorText(e)}`, true);
    }
  };

  let loading = false;
  let again = false;
  const load = async () => {
    if (loading) {
      again = true;
      return;
    }
    loading = true;
    try {
      const r = await api.listSessions({
        mode: mode ? SessionMode[mode as keyof typeof SessionMode] : SessionMode.SESSION_MODE_UNSPECIFIED,
        state: state ? SessionState[state as keyof typeof SessionState] : SessionState.UNSPECIFIED,
        pageSize: PAGE_SIZE,
        pageToken: tokens[pageIdx] ?? '',
      });
      nextToken = r.nextPageToken;
      total = r.totalSize;
      errBox.textContent = '';
      mount(tbody, r.sessions.length ? r.sessions.map(row) : h('tr', null, h('td', { colspan: '8', class: 'empty' }, mode || state ? 'No session matches these filters.' : 'No sessions yet. Create one with “New session” or through the API.')));
      count.textContent = `${fmtNum(total)} session${total === 1 ? '' : 's'}`;
      prev.disabled = pageIdx === 0;
      next.disabled = !nextToken;
    } catch (e) {
      errBox.textContent = `Could not list sessions: ${errorText(e)}`;
    } finally {
      loading = false;
      if (again) {
        again = false;
        void load();
      }
    }
  };

  const resetPaging = () => {
    tokens.length = 1;
    pageIdx = 0;
    const q = new URLSearchParams();
    if (mode) q.set('mode', mode);
    if (state) q.set('state', state);
    history.replaceState(null, '', `#/sessions${q.size ? `?${q}` : ''}`);
    void load();
  };

  let debounce: ReturnType<typeof setTimeout> | undefined;
  const unsub = app.onPool((r) => {
    if (!r.sessionsChanged || debounce) return;
    debounce = setTimeout(() => {
      debounce = undefined;
      void load();
    }, 250);
  });
  const poll = setInterval(() => void load(), POLL_MS);
  void load();

  return {
    el,
    dispose() {
      unsub();
      clearInterval(poll);
      if (debounce) clearTimeout(debounce);
    },
  };
}
