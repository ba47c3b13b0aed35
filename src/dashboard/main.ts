/**
 * The dashboard's entry: asks for the caller token when Neuro wants one (and shows nothing else
 * until it has a valid one), keeps one WatchResourcePool stream for the whole app, and routes
 * `#/pools`, `#/sessions` and `#/sessions/{id}`.
 */
import './style.css';
import { Code } from '@connectrpc/connect';
import { api, getToken, getUser, isCode, setToken, setUser, UNAUTHENTICATED_EVENT, watch, type LinkState } from './api.js';
import type { App, Page } from './app.js';
import { createDialog } from './create.js';
import { fmtNum, h, mount, toast } from './dom.js';
import { PoolModel, type ApplyResult } from './pool-model.js';
import { poolsPage } from './pools.js';
import { sessionPage } from './session-page.js';
import { sessionsPage } from './sessions.js';

const root = document.getElementById('app')!;

const LOGO = `<svg viewBox="0 0 32 32" aria-hidden="true"><rect width="32" height="32" rx="7" fill="#18202b"/><circle cx="9" cy="10" r="3.2" fill="#388bfd"/><circle cx="23" cy="10" r="3.2" fill="#2ea043"/><circle cx="16" cy="23" r="3.2" fill="#d29922"/><path d="M9 10 16 23 23 10M9 10h14" stroke="#8b98a9" stroke-width="1.6" fill="none"/></svg>`;

function logo(): HTMLElement {
  const span = h('span');
  span.innerHTML = LOGO;
  return span.firstElementChild as HTMLElement;
}

// ---- sign-in --------------------------------------------------------------------------------

function showLogin(message = ''): void {
  stopApp();
  const input = h('input', { type: 'password', name: 'token', placeholder: 'caller token', autocomplete: 'current-password', 'aria-label': 'caller token' });
  const err = h('div', { class: 'err', 'data-testid': 'login-error' }, message);
  const form = h(
    'form',
    { class: 'card', 'data-testid': 'login' },
    h('h1', null, logo(), 'Neuro'),
    h('p', null, 'This Neuro requires a caller token. It is sent as ', h('span', { class: 'mono' }, 'authorization: Bearer'), ' with every call and kept only for this browser tab.'),
    input,
    err,
    h('button', { class: 'primary', type: 'submit' }, 'Sign in'),
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    setToken(input.value.trim());
    err.textContent = '';
    await boot();
  });
  mount(root, h('div', { class: 'login' }, form));
  input.focus();
}

window.addEventListener(UNAUTHENTICATED_EVENT, () => {
  if (running) showLogin(getToken() ? 'The token is no longer accepted.' : 'Sign in to continue.');
});

// ---- the app --------------------------------------------------------------------------------

let running = false;
let stopPool: (() => void) | undefined;
let page: Page | undefined;
let onHash: (() => void) | undefined;

function stopApp(): void {
  running = false;
  stopPool?.();
  stopPool = undefined;
  page?.dispose();
  page = undefined;
  if (onHash) window.removeEventListener('hashchange', onHash);
  onHash = undefined;
}

async function boot(): Promise<void> {
  try {
    await api.getResourcePoolStatus({ summaryOnly: true });
  } catch (e) {
    if (isCode(e, Code.Unauthenticated)) {
      showLogin(getToken() ? 'That token is not valid.' : '');
      return;
    }
    // Anything else (Neuro restarting, ...) is shown by the live indicator; the app still starts.
  }
  startApp();
}

function startApp(): void {
  stopApp();
  running = true;
  const pool = new PoolModel();
  const listeners = new Set<(r: ApplyResult) => void>();
  let link: LinkState = 'connecting';

  const connEl = h('span', { class: 'conn', 'data-testid': 'link' }, 'connecting');
  const simsEl = h('span', null);
  const trainersEl = h('span', null);
  const userInput = h('input', {
    type: 'text',
    value: getUser(),
    'aria-label': 'your name',
    title: 'Your name: used when you take control of a simulator',
    spellcheck: 'false',
    onChange: () => {
      if (!setUser(userInput.value)) {
        toast('A name is 1-64 letters, digits and . _ @ - (and not "ai").', true);
        userInput.value = getUser();
      }
    },
  });
  const navPools = h('a', { href: '#/pools' }, 'Pools');
  const navSessions = h('a', { href: '#/sessions' }, 'Sessions');
  const main = h('main');
  const dialog = createDialog((id) => app.navigate(`#/sessions/${encodeURIComponent(id)}`));

  const renderLive = () => {
    connEl.className = `conn ${link === 'up' ? 'up' : link === 'down' ? 'down' : ''}`;
    connEl.textContent = link === 'up' ? 'live' : link === 'down' ? 'reconnecting' : 'connecting';
    mount(simsEl, 'Simulators ', h('b', { class: 'num' }, fmtNum(pool.simulators.idle)), h('span', { class: 'faint' }, ` idle / ${fmtNum(pool.simulators.total)}`));
    mount(trainersEl, 'Trainers ', h('b', { class: 'num' }, fmtNum(pool.trainers.idle)), h('span', { class: 'faint' }, ` idle / ${fmtNum(pool.trainers.total)}`));
  };

  const app: App = {
    pool,
    get link() {
      return link;
    },
    onPool(cb) {
      listeners.add(cb);
      return () => listeners.delete(cb);
    },
    navigate(hash) {
      if (location.hash === hash) route();
      else location.hash = hash;
    },
    openCreate: () => dialog.open(),
  };

  mount(
    root,
    h(
      'header',
      { class: 'topbar' },
      h('a', { class: 'brand', href: '#/pools', style: 'color:inherit;text-decoration:none' }, logo(), 'Neuro', h('small', null, 'orchestrator console')),
      h('nav', { class: 'nav' }, navPools, navSessions),
      h('span', { class: 'spacer' }),
      h('div', { class: 'live' }, simsEl, trainersEl, connEl),
      h('button', { class: 'primary small', 'data-action': 'new-session-top', onClick: () => dialog.open() }, '+ New session'),
      h('label', { class: 'user' }, 'You', userInput),
      getToken() ? h('button', { class: 'ghost small', onClick: () => (setToken(''), location.reload()) }, 'Sign out') : null,
    ),
    main,
    dialog.el,
  );

  const route = () => {
    const hash = location.hash || '#/pools';
    const path = hash.slice(1).split('?')[0] ?? '/pools';
    page?.dispose();
    const m = /^\/sessions\/(.+)$/.exec(path);
    if (m) page = sessionPage(app, decodeURIComponent(m[1]!));
    else if (path.startsWith('/sessions')) page = sessionsPage(app);
    else page = poolsPage(app);
    navPools.classList.toggle('active', !path.startsWith('/sessions'));
    navSessions.classList.toggle('active', path.startsWith('/sessions'));
    mount(main, page.el);
    document.title = m ? `${decodeURIComponent(m[1]!)} · Neuro` : path.startsWith('/sessions') ? 'Sessions · Neuro' : 'Pools · Neuro';
  };
  onHash = route;
  window.addEventListener('hashchange', route);

  stopPool = watch({
    open: (signal) => api.watchResourcePool({ includeIsaacPool: true, includeTrainingPool: true }, { signal }),
    onMessage: (msg) => {
      const r = pool.apply(msg);
      renderLive();
      for (const cb of listeners) cb(r);
    },
    onState: (st) => {
      link = st;
      renderLive();
    },
  });
  renderLive();
  route();
}

void boot();
