/**
 * A few DOM helpers: element builders (`h`, `s` for SVG), toasts, formatting.
 */
export type Child = Node | string | number | bigint | null | undefined | false | Child[];
type Attrs = Record<string, unknown> | null | undefined;

function append(el: Element, children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

function setAttrs(el: Element, attrs: Attrs, svg: boolean): void {
  if (!attrs) return;
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2).toLowerCase(), v as EventListener);
    } else if (!svg && (k === 'value' || k === 'checked' || k === 'disabled' || k === 'selected')) {
      (el as unknown as Record<string, unknown>)[k] = v;
    } else if (k === 'class' && Array.isArray(v)) {
      el.setAttribute('class', v.filter(Boolean).join(' '));
    } else {
      el.setAttribute(k, v === true ? '' : String(v));
    }
  }
}

/** An HTML element: `h('button', { class: 'primary', onClick }, 'Save')`. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs?: Attrs, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  setAttrs(el, attrs, false);
  append(el, children);
  return el;
}

const SVG_NS = 'http://www.w3.org/2000/svg';

/** An SVG element. */
export function s<K extends keyof SVGElementTagNameMap>(tag: K, attrs?: Attrs, ...children: Child[]): SVGElementTagNameMap[K] {
  const el = document.createElementNS(SVG_NS, tag);
  setAttrs(el, attrs, true);
  append(el, children);
  return el;
}

/** Replaces an element's children. */
export function mount(el: Element, ...children: Child[]): void {
  el.replaceChildren();
  append(el, children);
}

let toastBox: HTMLElement | undefined;

/** A short message in the corner. */
export function toast(message: string, bad = false): void {
  if (!toastBox) {
    toastBox = h('div', { class: 'toasts', role: 'status', 'aria-live': 'polite' });
    document.body.appendChild(toastBox);
  }
  const t = h('div', { class: bad ? 'toast bad' : 'toast' }, message);
  toastBox.appendChild(t);
  setTimeout(() => t.remove(), bad ? 8000 : 4000);
}

export function fmtNum(n: number | bigint, digits = 0): string {
  const v = typeof n === 'bigint' ? Number(n) : n;
  if (!Number.isFinite(v)) return '—';
  return v.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

export function fmtReward(n: number): string {
  if (!Number.isFinite(n)) return '—';
  return Math.abs(n) >= 100 ? n.toFixed(0) : n.toFixed(2);
}

/** Milliseconds of a protobuf Timestamp (undefined when unset). */
export function tsMs(t: { seconds: bigint; nanos: number } | undefined): number | undefined {
  if (!t) return undefined;
  return Number(t.seconds) * 1000 + Math.floor(t.nanos / 1e6);
}

export function fmtTime(ms: number | undefined): string {
  if (ms === undefined) return '—';
  const d = new Date(ms);
  return d.toLocaleTimeString('en-GB', { hour12: false });
}

export function fmtDateTime(ms: number | undefined): string {
  if (ms === undefined) return '—';
  const d = new Date(ms);
  return `${d.toLocaleDateString('en-CA')} ${d.toLocaleTimeString('en-GB', { hour12: false })}`;
}

export function fmtAge(ms: number | undefined, now = Date.now()): string {
  if (ms === undefined) return '—';
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${s % 60}s`;
  const hr = Math.floor(m / 60);
  if (hr < 48) return `${hr}h ${m % 60}m`;
  return `${Math.floor(hr / 24)}d`;
}
