/**
 * Pools: the summary counts of both pools, and every instance as a tile in a virtualised grid (only
 * the tiles in view exist in the DOM, so 10,000 instances scroll as smoothly as 10). Updates arrive
 * from the app's WatchResourcePool stream; drain and undrain from the instance's panel.
 */
import type { InstanceInfo } from '../gen/neuro/v1/resource_pb.js';
import { api, errorText } from './api.js';
import type { App, Page } from './app.js';
import { fmtAge, fmtNum, h, mount, toast, tsMs } from './dom.js';
import { firstVisibleRow, INSTANCE_STATES, layoutRows, mapLayout, type Counts, type GridRow, type PoolFilter } from './pool-model.js';

const TILE_W = 212;
const TILE_H = 92;
const GAP = 10;
const PAD = 14;
const HEAD_H = 34;
const ROW_H = TILE_H + GAP;

const PARTS: [keyof Counts, string][] = [
  ['idle', 'var(--st-idle)'],
  ['running', 'var(--st-running)'],
  ['joining', 'var(--st-joining)'],
  ['draining', 'var(--st-draining)'],
  ['unhealthy', 'var(--st-unhealthy)'],
];

const MAP_COLORS: Record<string, string> = {
  idle: '#2ea043',
  running: '#388bfd',
  joining: '#a371f7',
  draining: '#d29922',
  unhealthy: '#f85149',
  gone: '#3a424d',
};
const MAP_MAX_H = 84;

/** A pool's summary card, updated in place: counts, a proportion bar, and the pool map (a square per instance). */
function countsCard(title: string, unit: string, onPick: (id: string) => void): { el: HTMLElement; update(c: Counts, instances: readonly InstanceInfo[]): void } {
  const total = h('b', { class: 'num', 'data-count': 'total' });
  const gpus = h('span', { class: 'faint' });
  const nums = PARTS.map(([name]) => h('b', { 'data-count': name }));
  const segs = PARTS.map(([, color]) => h('i', { style: `width:0%;--c:${color}` }));
  const bar = h('div', { class: 'bar' }, segs);
  const map = h('canvas', { class: 'pool-map', 'aria-label': `${unit} map: one square per instance, coloured by state` });
  let shown: readonly InstanceInfo[] = [];
  let geo = mapLayout(0, 1, MAP_MAX_H);
  const at = (ev: MouseEvent): InstanceInfo | undefined => {
    const r = map.getBoundingClientRect();
    const col = Math.floor((ev.clientX - r.left) / geo.cell);
    const row = Math.floor((ev.clientY - r.top) / geo.cell);
    return col < geo.cols ? shown[row * geo.cols + col] : undefined;
  };
  map.addEventListener('click', (ev) => {
    const i = at(ev);
    if (i) onPick(i.instanceId);
  });
  map.addEventListener('mousemove', (ev) => {
    const i = at(ev);
    map.title = i ? `${i.instanceId} — ${i.status}${i.sessionId ? ` · ${i.sessionId}` : ''}` : '';
    map.style.cursor = i ? 'pointer' : 'default';
  });
  const draw = () => {
    const width = map.clientWidth;
    if (!width) return;
    geo = mapLayout(shown.length, width, MAP_MAX_H);
    const dpr = window.devicePixelRatio || 1;
    map.style.height = `${geo.height}px`;
    const w = Math.round(width * dpr);
    const hh = Math.round(geo.height * dpr);
    if (map.width !== w || map.height !== hh) {
      map.width = w;
      map.height = hh;
    }
    const g = map.getContext('2d');
    if (!g) return;
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, width, geo.height);
    const sz = geo.cell - geo.gap;
    // One colour at a time: fewer state changes for the canvas.
    for (const [status, color] of Object.entries(MAP_COLORS)) {
      g.fillStyle = color;
      for (let k = 0; k < shown.length; k++) {
        const i = shown[k]!;
        if ((MAP_COLORS[i.status] ? i.status : 'gone') !== status) continue;
        g.fillRect((k % geo.cols) * geo.cell, Math.floor(k / geo.cols) * geo.cell, sz, sz);
      }
    }
  };
  new ResizeObserver(draw).observe(map);
  const el = h(
    'section',
    { class: 'card pool-card', 'data-pool': unit },
    h('h2', null, total, title, gpus),
    h(
      'div',
      { class: 'counts' },
      PARTS.map(([name, color], k) => h('div', { class: 'count', style: `--c:${color}` }, h('span', null, name), nums[k])),
    ),
    bar,
    map,
  );
  return {
    el,
    update(c, instances) {
      shown = instances;
      map.hidden = !instances.length;
      draw();
      total.textContent = fmtNum(c.total);
      gpus.textContent = `· GPUs ${fmtNum(c.idleGpus)} idle of ${fmtNum(c.totalGpus)}`;
      const t = Math.max(1, c.total);
      PARTS.forEach(([name], k) => {
        nums[k]!.textContent = fmtNum(c[name]);
        segs[k]!.style.width = `${(100 * c[name]) / t}%`;
      });
      bar.title = PARTS.map(([n]) => `${n} ${c[n]}`).join(' · ');
    },
  };
}

function stateClass(status: string): string {
  return `s-${(INSTANCE_STATES as readonly string[]).includes(status) ? status : 'gone'}`;
}

function tileLines(i: InstanceInfo): [string, string, string] {
  const where = `${i.host || '—'} · ${i.zone || '—'}`;
  const gpus = i.kind === 'trainer' ? `${i.gpuIds.length} GPU${i.gpuIds.length === 1 ? '' : 's'} · ${i.memoryGb} GB` : `${i.gpuIds.join(', ') || 'no GPU'}${i.gpuUtilization ? ` · ${Math.round(i.gpuUtilization * 100)}%` : ''}`;
  const pair = i.kind === 'trainer' ? (i.pairedInstances.length ? `⇄ ${i.pairedInstances.length} sims` : '') : i.pairedWith ? `⇄ ${i.pairedWith}` : '';
  const sess = i.sessionId ? `▸ ${i.sessionId}` : '';
  const last = [sess, pair].filter(Boolean).join('  ') || (i.draining ? 'draining' : 'free');
  return [where, gpus, last];
}

function tileSig(i: InstanceInfo, selected: boolean): string {
  return `${i.status}|${i.sessionId}|${i.pairedWith}|${i.pairedInstances.length}|${i.host}|${i.zone}|${i.gpuIds.length}|${Math.round(i.gpuUtilization * 100)}|${i.draining}|${selected}`;
}

export function poolsPage(app: App): Page {
  const filter: { kind: PoolFilter['kind']; states: Set<string>; text: string } = { kind: '', states: new Set(), text: '' };
  let selected: string | null = null;

  const simCard = countsCard('Simulators', 'simulators', (id) => reveal(id));
  const trainerCard = countsCard('Trainers', 'trainers', (id) => reveal(id));
  const summary = h('div', { class: 'summary' }, simCard.el, trainerCard.el);
  const chipEls = new Map<string, { el: HTMLButtonElement; n: HTMLElement }>();
  const chips = h(
    'div',
    { class: 'row', role: 'group', 'aria-label': 'states' },
    INSTANCE_STATES.map((st) => {
      const n = h('span', { class: 'n' });
      const b = h(
        'button',
        {
          class: `chip ${stateClass(st)}`,
          'data-state': st,
          onClick: () => {
            if (filter.states.has(st)) filter.states.delete(st);
            else filter.states.add(st);
            schedule(true);
          },
        },
        st,
        n,
      );
      chipEls.set(st, { el: b, n });
      return b;
    }),
  );
  const kindButtons = (
    [
      ['', 'All'],
      ['simulator', 'Simulators'],
      ['trainer', 'Trainers'],
    ] as const
  ).map(([k, label]) => {
    const b = h(
      'button',
      {
        onClick: () => {
          filter.kind = k;
          schedule(true);
        },
      },
      label,
    );
    return { k, b };
  });
  const shown = h('span', { class: 'muted num' });
  const kindSeg = h('div', { class: 'seg', role: 'group', 'aria-label': 'kind' }, kindButtons.map((x) => x.b));
  const search = h('input', {
    type: 'search',
    placeholder: 'Filter by id, host, zone, session…',
    'aria-label': 'filter',
    onInput: () => {
      filter.text = search.value;
      schedule(true);
    },
  });
  const spacer = h('div', { class: 'spacer-el' });
  const viewport = h('div', { class: 'viewport', tabindex: '0', 'data-testid': 'pool-grid' }, spacer);
  const drawer = h('aside', { class: 'card drawer', hidden: true });
  const el = h(
    'div',
    { class: 'page fixed', 'data-page': 'pools' },
    h('div', { class: 'page-head' }, h('h1', null, 'Pools'), h('span', { class: 'muted' }, 'Live from WatchResourcePool'), h('span', { class: 'spacer' })),
    summary,
    h('div', { class: 'toolbar' }, kindSeg, chips, h('span', { class: 'spacer', style: 'flex:1' }), shown, search),
    h('div', { class: 'pool-body' }, viewport, drawer),
  );

  // ---- virtualised grid ------------------------------------------------------------------
  const tiles = new Map<string, { el: HTMLElement; sig: string }>();
  const heads = new Map<string, HTMLElement>();
  let layout: { rows: GridRow[]; height: number; perRow: number; src: readonly InstanceInfo[] } | undefined;

  const makeTile = (i: InstanceInfo): HTMLElement => {
    const t = h('div', { class: 'tile', role: 'button', 'data-id': i.instanceId });
    t.addEventListener('click', () => select(i.instanceId));
    return t;
  };

  const fillTile = (t: HTMLElement, i: InstanceInfo, sel: boolean) => {
    const [l1, l2, l3] = tileLines(i);
    t.className = `tile ${stateClass(i.status)}${sel ? ' sel' : ''}${i.status === 'gone' ? ' dim' : ''}`;
    t.dataset.status = i.status;
    t.title = `${i.instanceId} (${i.kind}) — ${i.status}`;
    mount(
      t,
      h('div', { class: 't1' }, h('span', { class: 'id' }, i.instanceId), h('span', { class: 'st' }, i.draining && i.status !== 'draining' ? `${i.status} · drain` : i.status)),
      h('div', { class: 'ln' }, l1),
      h('div', { class: 'ln' }, l2),
      h('div', { class: 'ln' }, i.sessionId || i.pairedWith || i.pairedInstances.length ? h('b', null, l3) : h('span', { class: 'faint' }, l3)),
    );
  };

  const render = () => {
    const items = app.pool.filter(filter);
    const width = viewport.clientWidth - 2 * PAD;
    const perRow = Math.max(1, Math.floor((width + GAP) / (TILE_W + GAP)));
    if (!layout || layout.src !== items || layout.perRow !== perRow) {
      const l = layoutRows(items, perRow, ROW_H, HEAD_H);
      layout = { ...l, perRow, src: items };
      spacer.style.height = `${l.height + PAD}px`;
    }
    const top = viewport.scrollTop - 200;
    const bottom = viewport.scrollTop + viewport.clientHeight + 200;
    const seenTiles = new Set<string>();
    const seenHeads = new Set<string>();
    for (let r = firstVisibleRow(layout.rows, Math.max(0, top)); r < layout.rows.length; r++) {
      const row = layout.rows[r]!;
      if (row.top > bottom) break;
      if (row.type === 'head') {
        let hd = heads.get(row.kind);
        if (!hd) {
          hd = h('div', { class: 'group-head' });
          heads.set(row.kind, hd);
          spacer.appendChild(hd);
        }
        hd.textContent = `${row.kind === 'trainer' ? 'Training pool' : 'Simulator pool (Isaac Sim)'} · ${fmtNum(row.count)}`;
        hd.style.transform = `translateY(${row.top}px)`;
        seenHeads.add(row.kind);
        continue;
      }
      for (let idx = row.start; idx < row.end; idx++) {
        const i = items[idx]!;
        const k = idx - row.start;
        let t = tiles.get(i.instanceId);
        if (!t) {
          t = { el: makeTile(i), sig: '' };
          tiles.set(i.instanceId, t);
          spacer.appendChild(t.el);
        }
        const sig = tileSig(i, i.instanceId === selected);
        if (t.sig !== sig) {
          fillTile(t.el, i, i.instanceId === selected);
          t.sig = sig;
        }
        const x = PAD + k * (TILE_W + GAP);
        const y = row.top + 4;
        const tr = `translate(${x}px,${y}px)`;
        if (t.el.style.transform !== tr) t.el.style.transform = tr;
        seenTiles.add(i.instanceId);
      }
    }
    for (const [id, t] of tiles) {
      if (!seenTiles.has(id)) {
        t.el.remove();
        tiles.delete(id);
      }
    }
    for (const [k, hd] of heads) {
      if (!seenHeads.has(k)) {
        hd.remove();
        heads.delete(k);
      }
    }
    if (!items.length) {
      if (!spacer.querySelector('.empty')) spacer.appendChild(h('div', { class: 'empty' }, app.pool.loaded ? 'No instance matches.' : 'Loading the pools…'));
    } else spacer.querySelector('.empty')?.remove();
    shown.textContent = `${fmtNum(items.length)} of ${fmtNum(app.pool.instances.size)} instances`;
  };

  const renderChrome = () => {
    const all = app.pool.sorted();
    const firstSim = all.findIndex((i) => i.kind !== 'trainer');
    const cut = firstSim < 0 ? all.length : firstSim;
    simCard.update(app.pool.simulators, all.slice(cut));
    trainerCard.update(app.pool.trainers, all.slice(0, cut));
    const sc = app.pool.stateCounts(filter.kind);
    for (const [st, c] of chipEls) {
      const on = filter.states.has(st);
      c.el.classList.toggle('on', on);
      c.el.setAttribute('aria-pressed', String(on));
      c.el.hidden = st === 'gone' && !sc.gone && !on;
      c.n.textContent = fmtNum(sc[st] ?? 0);
    }
    for (const { k, b } of kindButtons) b.classList.toggle('on', filter.kind === k);
    renderDrawer();
  };

  // ---- instance panel ---------------------------------------------------------------------
  let drawerSig = '';
  const ageEl = h('span');
  const renderDrawer = () => {
    const i = selected ? app.pool.instances.get(selected) : undefined;
    drawer.hidden = !i;
    if (!i) return;
    ageEl.textContent = `${fmtAge(tsMs(i.lastHeartbeat))} ago`;
    const sig = JSON.stringify([i.instanceId, i.status, i.sessionId, i.pairedWith, i.pairedInstances, i.draining, Math.round(i.fps), Math.round(i.gpuUtilization * 100)]);
    if (sig === drawerSig) return;
    drawerSig = sig;
    const link = (id: string) => h('a', { href: '#/pools', onClick: (e: Event) => (e.preventDefault(), select(id)) }, id);
    mount(
      drawer,
      h('header', null, h('span', { class: 'mono' }, i.instanceId), h('span', { class: `pill ${stateClass(i.status)}` }, i.status), h('span', { class: 'spacer' }), h('button', { class: 'ghost small', 'aria-label': 'close', onClick: () => select(null) }, '✕')),
      h(
        'div',
        { class: 'body stack' },
        h(
          'dl',
          { class: 'kv' },
          h('dt', null, 'Kind'),
          h('dd', null, i.kind),
          h('dt', null, 'Address'),
          h('dd', { class: 'mono' }, i.address || '—'),
          h('dt', null, 'Host · zone'),
          h('dd', null, `${i.host || '—'} · ${i.zone || '—'}`),
          h('dt', null, 'GPUs'),
          h('dd', { class: 'mono' }, i.gpuIds.join(', ') || '—'),
          h('dt', null, 'Memory'),
          h('dd', null, i.memoryGb ? `${i.memoryGb} GB` : '—'),
          h('dt', null, 'Session'),
          h('dd', null, i.sessionId ? h('a', { href: `#/sessions/${encodeURIComponent(i.sessionId)}` }, i.sessionId) : h('span', { class: 'faint' }, 'none')),
          h('dt', null, i.kind === 'trainer' ? 'Paired sims' : 'Paired trainer'),
          h('dd', null, i.kind === 'trainer' ? (i.pairedInstances.length ? i.pairedInstances.flatMap((p, k) => (k ? [', ', link(p)] : [link(p)])) : '—') : i.pairedWith ? link(i.pairedWith) : '—'),
          h('dt', null, 'FPS · GPU load'),
          h('dd', { class: 'num' }, `${fmtNum(i.fps, 1)} · ${Math.round(i.gpuUtilization * 100)}%`),
          h('dt', null, 'Last heartbeat'),
          h('dd', null, ageEl),
          h('dt', null, 'Draining'),
          h('dd', null, i.draining ? 'yes — finishes its session, takes no new one' : 'no'),
          h('dt', null, 'Labels'),
          h('dd', null, Object.keys(i.labels).length ? h('div', { class: 'filtered' }, Object.entries(i.labels).map(([k, v]) => h('span', { class: 'tag' }, `${k}=${v}`))) : '—'),
        ),
        h(
          'div',
          { class: 'row' },
          i.draining
            ? h('button', { class: 'primary', 'data-action': 'undrain', onClick: () => drain(i.instanceId, false) }, 'Undrain')
            : h('button', { class: 'warn', 'data-action': 'drain', onClick: () => drain(i.instanceId, true) }, 'Drain'),
          h('span', { class: 'muted' }, i.draining ? 'Takes sessions again when undrained.' : 'Stops new sessions landing here.'),
        ),
      ),
    );
  };

  const drain = async (id: string, on: boolean) => {
    try {
      const r = on ? await api.drainInstance({ instanceId: id }) : await api.undrainInstance({ instanceId: id });
      toast(r.message || (on ? `${id} draining` : `${id} undrained`));
      if (r.instance) app.pool.apply({ snapshot: false, changed: [r.instance], removed: [] } as never);
      schedule(true);
    } catch (e) {
      toast(`${on ? 'Drain' : 'Undrain'} failed: ${errorText(e)}`, true);
    }
  };

  /** Selects an instance and scrolls its tile into view (clearing filters that hide it). */
  const reveal = (id: string) => {
    let items = app.pool.filter(filter);
    if (!items.some((i) => i.instanceId === id)) {
      filter.kind = '';
      filter.states.clear();
      filter.text = '';
      search.value = '';
      items = app.pool.filter(filter);
    }
    select(id);
    render();
    const idx = items.findIndex((i) => i.instanceId === id);
    const row = layout?.rows.find((r) => r.type === 'tiles' && idx >= r.start && idx < r.end);
    if (row) viewport.scrollTop = Math.max(0, row.top - 40);
  };

  const select = (id: string | null) => {
    selected = id;
    drawerSig = '';
    schedule(true);
  };

  // ---- scheduling -------------------------------------------------------------------------
  let frame = 0;
  let chromeDirty = true;
  const schedule = (chrome = false) => {
    chromeDirty ||= chrome;
    if (frame) return;
    frame = requestAnimationFrame(() => {
      frame = 0;
      if (chromeDirty) renderChrome();
      chromeDirty = false;
      render();
    });
  };
  const unsub = app.onPool(() => schedule(true));
  viewport.addEventListener('scroll', () => schedule(false), { passive: true });
  const ro = new ResizeObserver(() => schedule(false));
  ro.observe(viewport);
  const ticker = setInterval(renderDrawer, 1000);
  schedule(true);

  return {
    el,
    dispose() {
      unsub();
      ro.disconnect();
      clearInterval(ticker);
      if (frame) cancelAnimationFrame(frame);
    },
  };
}
