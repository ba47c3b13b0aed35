/**
 * One simulator, live: its scene drawn from the control WebSocket's hello and state frames (robot
 * base and end effector, obstacles, goal; a top and a side view), who controls it, and — for a
 * human — keyboard driving with action frames. HYBRID takes control with TakeControl and hands it
 * back with ReleaseControl; MANUAL drives directly (the simulator is the human's).
 */
import { api, errorText, getUser } from './api.js';
import { fmtNum, fmtReward, h, mount, toast } from './dom.js';
import { actionFor, isDriveKey, JOINT_KEYS, keyLabel, parseFrame, type HelloFrame, type StateFrame, type Vec3 } from './drive.js';

const SEND_MS = 100;
const TRAIL = 80;

/** The one view the keyboard drives, if any. */
let activeDriver: SimView | null = null;

export interface SimViewOptions {
  sessionId: string;
  instanceId: string;
  wsUrl: string;
  mode: 'MANUAL' | 'HYBRID' | 'TRAINING';
  /** HYBRID: whether TakeControl may take the simulator from another human. */
  allowForce?: boolean;
}

export class SimView {
  readonly el: HTMLElement;
  private ws?: WebSocket;
  private hello?: HelloFrame;
  private state?: StateFrame;
  private trail: Vec3[] = [];
  private controller = 'ai';
  private closed = false;
  private ended = false;
  private retry = 500;
  private retryTimer?: ReturnType<typeof setTimeout>;
  private held = new Set<string>();
  private slow = false;
  private sendTimer?: ReturnType<typeof setInterval>;
  private frame = 0;
  private manualDriving = false;
  private sent = 0;
  private learnerDemos: number | undefined;
  private extent = 0;
  private busy = false;

  private readonly canvas = h('canvas', { 'aria-label': 'scene' });
  private readonly overlay = h('div', { class: 'overlay mono' });
  private readonly ctlEl = h('span', { class: 'ctl ai', 'data-testid': 'controller' });
  private readonly demoEl = h('span', { class: 'demo-count', 'data-testid': 'demonstrations' }, '0');
  private readonly learnerEl = h('span', { class: 'muted' });
  private readonly statusEl = h('span', { class: 'muted' });
  private readonly actions = h('div', { class: 'row' });
  private readonly keysEl = h('div', { class: 'keys' });
  private readonly jointsEl = h('div', { class: 'joints' });

  constructor(private readonly o: SimViewOptions) {
    this.el = h(
      'section',
      { class: 'card sim-card', 'data-sim': o.instanceId },
      h('header', null, h('span', { class: 'mono' }, o.instanceId), this.ctlEl, h('span', { class: 'spacer' }), this.statusEl),
      h('div', { class: 'scene' }, this.canvas, this.overlay),
      h(
        'div',
        { class: 'body stack' },
        h(
          'div',
          { class: 'row', style: 'justify-content:space-between;align-items:flex-end' },
          o.mode === 'MANUAL'
            ? h('div', { class: 'muted' }, 'A MANUAL session is its human’s: drive it directly.')
            : h('div', null, h('div', { class: 'muted', style: 'font-size:11px;text-transform:uppercase;letter-spacing:.05em' }, 'Demonstrations recorded'), this.demoEl, ' ', this.learnerEl),
          this.actions,
        ),
        this.jointsEl,
        this.keysEl,
      ),
    );
    window.addEventListener('keydown', this.onKeyDown);
    window.addEventListener('keyup', this.onKeyUp);
    window.addEventListener('blur', this.onBlur);
    this.connect();
    this.renderControls();
  }

  /** The controller Neuro reports (WatchSession), and the learner's count of demonstrations received. */
  update(controller: string | undefined, learnerDemos: number | undefined): void {
    if (controller !== undefined && controller !== this.controller) {
      this.controller = controller;
      this.renderControls();
    }
    if (learnerDemos !== undefined) {
      this.learnerDemos = learnerDemos;
      this.learnerEl.textContent = `· ${fmtNum(learnerDemos)} received by the learner`;
    }
  }

  /** The session ended: no more driving, no reconnecting. */
  end(): void {
    this.ended = true;
    this.stopDriving();
    this.renderControls();
  }

  dispose(): void {
    this.closed = true;
    this.stopDriving();
    window.removeEventListener('keydown', this.onKeyDown);
    window.removeEventListener('keyup', this.onKeyUp);
    window.removeEventListener('blur', this.onBlur);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.ws?.close(1000, 'dashboard closed');
    if (this.frame) cancelAnimationFrame(this.frame);
  }

  // ---- WebSocket -----------------------------------------------------------------------------

  private connect(): void {
    if (this.closed || this.ended || !this.o.wsUrl) {
      if (!this.o.wsUrl) this.statusEl.textContent = 'no control URL';
      return;
    }
    this.statusEl.textContent = 'connecting…';
    this.el.dataset.link = 'connecting';
    let ws: WebSocket;
    try {
      ws = new WebSocket(this.o.wsUrl);
    } catch (e) {
      this.statusEl.textContent = `cannot connect: ${(e as Error).message}`;
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      this.retry = 500;
      this.statusEl.textContent = 'live';
      this.el.dataset.link = 'live';
      ws.send(JSON.stringify({ type: 'hello', user: getUser() }));
    };
    ws.onmessage = (ev) => this.onFrame(ev.data);
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = undefined;
      this.el.dataset.link = 'closed';
      if (this.closed) return;
      if (ev.code === 4410) {
        this.statusEl.textContent = 'session ended';
        this.end();
        return;
      }
      this.statusEl.textContent = ev.code === 4404 ? 'not on the simulator (yet)' : 'reconnecting…';
      this.retryTimer = setTimeout(() => this.connect(), this.retry);
      this.retry = Math.min(this.retry * 2, 8000);
    };
  }

  private onFrame(data: unknown): void {
    const f = parseFrame(data);
    if (!f) return;
    switch (f.type) {
      case 'hello':
        this.hello = f;
        this.controller = f.controller;
        this.trail = [];
        this.renderControls();
        this.renderJoints();
        break;
      case 'state':
        if (this.state && f.episode !== this.state.episode) this.trail = [];
        this.state = f;
        this.trail.push(f.ee);
        if (this.trail.length > TRAIL) this.trail.shift();
        this.demoEl.textContent = fmtNum(f.demonstrations);
        this.demoEl.dataset.value = String(f.demonstrations);
        if (f.controller !== this.controller) {
          this.controller = f.controller;
          this.renderControls();
        }
        this.renderJoints();
        break;
      case 'control':
        this.controller = f.controller;
        if (f.reason && this.activeHere()) toast(`Control of ${this.o.instanceId} went back to the AI (${f.reason === 'idle' ? 'no action for a while' : f.reason}).`);
        this.renderControls();
        break;
      case 'error':
        if (f.error === 'NOT_CONTROLLER') {
          this.controller = f.controller ?? this.controller;
          this.renderControls();
        } else if (f.error !== 'STOPPED') toast(`${this.o.instanceId}: ${f.message}`, true);
        break;
    }
    this.schedule();
  }

  // ---- control -------------------------------------------------------------------------------

  private isMine(): boolean {
    return this.controller === getUser();
  }

  /** Whether the keyboard drives this simulator now. */
  private activeHere(): boolean {
    if (this.ended) return false;
    return this.o.mode === 'MANUAL' ? this.manualDriving : this.o.mode === 'HYBRID' && this.isMine();
  }

  private async take(force: boolean): Promise<void> {
    this.busy = true;
    this.renderControls();
    try {
      const user = getUser();
      // Identify on the socket first, so the first key press after the take is ours (a socket still
      // connecting says hello when it opens).
      if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify({ type: 'hello', user }));
      const r = await api.takeControl({ sessionId: this.o.sessionId, isaacInstanceId: this.o.instanceId, user, force });
      this.controller = r.controller || user;
      activeDriver?.stopDriving();
      activeDriver = this;
      toast(`You control ${this.o.instanceId}. Drive with the keys shown; Release hands it back to the AI.`);
    } catch (e) {
      toast(`Take control failed: ${errorText(e)}`, true);
    } finally {
      this.busy = false;
      this.renderControls();
    }
  }

  private async release(): Promise<void> {
    this.busy = true;
    this.renderControls();
    this.stopDriving();
    try {
      const r = await api.releaseControl({ sessionId: this.o.sessionId, isaacInstanceId: this.o.instanceId, user: getUser() });
      this.controller = r.controller || 'ai';
      toast(`${this.o.instanceId} is back with the ${this.controller === 'ai' ? 'AI' : this.controller}.`);
    } catch (e) {
      toast(`Release failed: ${errorText(e)}`, true);
    } finally {
      this.busy = false;
      this.renderControls();
    }
  }

  private stopDriving(): void {
    this.held.clear();
    if (this.sendTimer) clearInterval(this.sendTimer);
    this.sendTimer = undefined;
    this.manualDriving = false;
    if (activeDriver === this) activeDriver = null;
    this.renderKeys();
  }

  private renderControls(): void {
    const human = this.controller && this.controller !== 'ai';
    this.ctlEl.className = `ctl ${human ? 'human' : 'ai'}`;
    this.ctlEl.textContent = this.o.mode === 'MANUAL' ? 'human (manual)' : human ? `${this.controller}${this.isMine() ? ' (you)' : ''}` : 'AI';
    this.ctlEl.dataset.controller = this.controller;
    this.el.classList.toggle('driving', this.activeHere());
    if (this.activeHere() && activeDriver !== this) {
      activeDriver?.stopDriving();
      activeDriver = this;
    }
    if (!this.activeHere() && activeDriver === this && this.o.mode !== 'MANUAL') this.stopDriving();
    const buttons: HTMLElement[] = [];
    if (this.ended) {
      buttons.push(h('span', { class: 'muted' }, 'Session ended'));
    } else if (this.o.mode === 'HYBRID') {
      if (this.isMine()) {
        buttons.push(h('button', { class: 'primary', 'data-action': 'release', disabled: this.busy, onClick: () => void this.release() }, 'Release to AI'));
      } else if (human) {
        buttons.push(h('button', { class: 'warn', 'data-action': 'take', disabled: this.busy || !this.o.allowForce, title: this.o.allowForce ? '' : 'this session does not allow force takeover', onClick: () => void this.take(true) }, 'Take over'));
      } else {
        buttons.push(h('button', { class: 'primary', 'data-action': 'take', disabled: this.busy, onClick: () => void this.take(false) }, 'Take control'));
      }
    } else if (this.o.mode === 'MANUAL') {
      buttons.push(
        this.manualDriving
          ? h('button', { 'data-action': 'stop-driving', onClick: () => (this.stopDriving(), this.renderControls()) }, 'Stop driving')
          : h(
              'button',
              {
                class: 'primary',
                'data-action': 'drive',
                onClick: () => {
                  activeDriver?.stopDriving();
                  this.manualDriving = true;
                  activeDriver = this;
                  this.renderControls();
                },
              },
              'Drive',
            ),
      );
    }
    mount(this.actions, buttons);
    this.renderKeys();
  }

  private renderKeys(): void {
    const n = this.hello?.robot.joints.length ?? 0;
    if (!this.activeHere() || !n) {
      mount(this.keysEl, this.o.mode === 'TRAINING' ? '' : h('span', null, this.o.mode === 'HYBRID' ? 'Take control to drive with the keyboard.' : 'Press Drive to use the keyboard.'));
      return;
    }
    const key = (code: string, text: string) => h('kbd', { class: this.held.has(code) ? 'down' : '' }, text);
    mount(
      this.keysEl,
      h('span', null, h('b', { style: 'color:#d2a8ff' }, 'Driving'), ` · ${fmtNum(this.sent)} actions sent ·`),
      ...JOINT_KEYS.slice(0, n).map(([up, down], j) => h('span', { title: `joint ${j + 1} (${keyLabel(j)})` }, `J${j + 1} `, key(up, up.slice(3)), key(down, down.slice(3)))),
      h('span', null, key('ArrowLeft', '←'), key('ArrowRight', '→'), ' J1 ', key('ArrowUp', '↑'), key('ArrowDown', '↓'), ' J2 · Shift = fine'),
    );
  }

  private renderJoints(): void {
    const hj = this.hello?.robot.joints;
    const q = this.state?.joints;
    if (!hj || !q) return;
    if (this.jointsEl.childElementCount !== hj.length * 3) {
      mount(
        this.jointsEl,
        hj.flatMap((j, k) => [h('span', { class: 'muted', title: j.name }, `J${k + 1}`), h('div', { class: 'jtrack' }, h('i')), h('span', { class: 'num muted', style: 'text-align:right' })]),
      );
    }
    hj.forEach((j, k) => {
      const v = q[k] ?? 0;
      const frac = j.upper > j.lower ? (v - j.lower) / (j.upper - j.lower) : 0.5;
      const track = this.jointsEl.children[k * 3 + 1] as HTMLElement;
      (track.firstElementChild as HTMLElement).style.left = `${Math.max(0, Math.min(1, frac)) * 100}%`;
      (this.jointsEl.children[k * 3 + 2] as HTMLElement).textContent = v.toFixed(2);
    });
  }

  // ---- keyboard ------------------------------------------------------------------------------

  private readonly onKeyDown = (e: KeyboardEvent) => {
    if (!this.activeHere() || activeDriver !== this) return;
    const t = e.target as HTMLElement | null;
    if (t && (t.tagName === 'INPUT' || t.tagName === 'TEXTAREA' || t.tagName === 'SELECT' || t.isContentEditable)) return;
    if (document.querySelector('dialog[open]')) return;
    const n = this.hello?.robot.joints.length ?? 0;
    if (!isDriveKey(e.code, n)) return;
    e.preventDefault();
    this.slow = e.shiftKey;
    if (this.held.has(e.code)) return;
    this.held.add(e.code);
    this.sendAction();
    if (!this.sendTimer) this.sendTimer = setInterval(() => this.sendAction(), SEND_MS);
    this.renderKeys();
  };

  private readonly onKeyUp = (e: KeyboardEvent) => {
    if (!this.held.delete(e.code)) return;
    this.slow = e.shiftKey;
    if (!this.held.size && this.sendTimer) {
      clearInterval(this.sendTimer);
      this.sendTimer = undefined;
    }
    this.renderKeys();
  };

  private readonly onBlur = () => {
    this.held.clear();
    if (this.sendTimer) clearInterval(this.sendTimer);
    this.sendTimer = undefined;
  };

  private sendAction(): void {
    const n = this.hello?.robot.joints.length ?? 0;
    const a = actionFor(this.held, n, this.slow);
    if (!a || this.ws?.readyState !== WebSocket.OPEN) return;
    this.ws.send(JSON.stringify({ type: 'action', action: a }));
    this.sent++;
  }

  // ---- drawing -------------------------------------------------------------------------------

  private schedule(): void {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.draw();
    });
  }

  private draw(): void {
    const hello = this.hello;
    const st = this.state;
    const c = this.canvas;
    const dpr = window.devicePixelRatio || 1;
    const cw = c.clientWidth;
    const ch = c.clientHeight;
    if (!cw || !ch) return;
    if (c.width !== Math.round(cw * dpr) || c.height !== Math.round(ch * dpr)) {
      c.width = Math.round(cw * dpr);
      c.height = Math.round(ch * dpr);
    }
    const g = c.getContext('2d');
    if (!g) return;
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, cw, ch);
    if (!hello || !st) return;
    const base = hello.start;
    const goal = st.goal ?? hello.goal;
    // The view's half-width in metres: everything in the scene fits; it only grows, so the picture holds still.
    const dist = (p: Vec3, r = 0) => Math.max(Math.abs(p.x - base.x), Math.abs(p.y - base.y), Math.abs(p.z - base.z)) + r;
    let ext = Math.max(dist(goal), dist(st.ee), ...hello.obstacles.map((o) => dist(o.position, Math.max(o.size.x, o.size.y, o.size.z)))) * 1.25;
    ext = Math.max(ext, 0.3);
    if (ext > this.extent) this.extent = ext;
    const E = this.extent;
    const human = this.controller !== 'ai' || this.o.mode === 'MANUAL';
    const eeColor = human ? '#d2a8ff' : '#56d4dd';
    const panelW = cw / 2;
    const views: { ox: number; title: string; u: (p: Vec3) => number; v: (p: Vec3) => number; su: (s: Vec3) => number; sv: (s: Vec3) => number; vCenter: number }[] = [
      { ox: 0, title: 'TOP  x → · y ↑', u: (p) => p.x - base.x, v: (p) => p.y - base.y, su: (s) => s.x, sv: (s) => s.y, vCenter: 0 },
      { ox: panelW, title: 'SIDE  x → · z ↑', u: (p) => p.x - base.x, v: (p) => p.z - base.z, su: (s) => s.x, sv: (s) => s.z, vCenter: 0.7 * E },
    ];
    for (const view of views) {
      const pad = 18;
      const w = panelW - 2 * pad;
      const hgt = ch - 2 * pad - 10;
      const scale = Math.min(w, hgt) / (2 * E);
      const cx = view.ox + panelW / 2;
      const cy = pad + hgt / 2 + view.vCenter * scale;
      const X = (u: number) => cx + u * scale;
      const Y = (v: number) => cy - v * scale;
      // grid
      g.save();
      g.beginPath();
      g.rect(view.ox + 4, 4, panelW - 8, ch - 8);
      g.clip();
      const step = E > 1.5 ? 0.5 : E > 0.6 ? 0.2 : 0.1;
      g.lineWidth = 1;
      g.strokeStyle = '#141c26';
      for (let u = -Math.ceil(3 * E / step) * step; u <= 3 * E; u += step) {
        g.beginPath();
        g.moveTo(X(u), 0);
        g.lineTo(X(u), ch);
        g.stroke();
        g.beginPath();
        g.moveTo(view.ox, Y(u));
        g.lineTo(view.ox + panelW, Y(u));
        g.stroke();
      }
      g.strokeStyle = '#263241';
      g.beginPath();
      g.moveTo(X(0), 0);
      g.lineTo(X(0), ch);
      g.moveTo(view.ox, Y(0));
      g.lineTo(view.ox + panelW, Y(0));
      g.stroke();
      // obstacles
      for (const o of hello.obstacles) {
        g.fillStyle = 'rgba(248,81,73,0.16)';
        g.strokeStyle = '#f85149';
        g.lineWidth = 1.5;
        const u = view.u(o.position);
        const v = view.v(o.position);
        g.beginPath();
        if (o.shape === 'sphere' || (o.shape === 'cylinder' && view.ox === 0)) {
          g.arc(X(u), Y(v), Math.max(2, o.size.x * scale), 0, Math.PI * 2);
        } else if (o.shape === 'cylinder') {
          g.rect(X(u - o.size.x), Y(v + o.size.z / 2), 2 * o.size.x * scale, o.size.z * scale);
        } else {
          g.rect(X(u - view.su(o.size) / 2), Y(v + view.sv(o.size) / 2), view.su(o.size) * scale, view.sv(o.size) * scale);
        }
        g.fill();
        g.stroke();
      }
      // goal
      const gu = X(view.u(goal));
      const gv = Y(view.v(goal));
      g.strokeStyle = '#3fb950';
      g.fillStyle = 'rgba(63,185,80,0.18)';
      g.lineWidth = 2;
      g.beginPath();
      g.arc(gu, gv, Math.max(6, 0.05 * scale), 0, Math.PI * 2);
      g.fill();
      g.stroke();
      g.beginPath();
      g.moveTo(gu - 10, gv);
      g.lineTo(gu + 10, gv);
      g.moveTo(gu, gv - 10);
      g.lineTo(gu, gv + 10);
      g.stroke();
      // trail
      for (let k = 1; k < this.trail.length; k++) {
        const a = this.trail[k - 1]!;
        const b = this.trail[k]!;
        g.strokeStyle = eeColor;
        g.globalAlpha = (k / this.trail.length) * 0.6;
        g.lineWidth = 2;
        g.beginPath();
        g.moveTo(X(view.u(a)), Y(view.v(a)));
        g.lineTo(X(view.u(b)), Y(view.v(b)));
        g.stroke();
      }
      g.globalAlpha = 1;
      // arm: base → end effector
      const bu = X(0);
      const bv = Y(0);
      const eu = X(view.u(st.ee));
      const ev = Y(view.v(st.ee));
      g.strokeStyle = '#8b98a9';
      g.lineWidth = 5;
      g.lineCap = 'round';
      g.beginPath();
      g.moveTo(bu, bv);
      g.lineTo(eu, ev);
      g.stroke();
      g.fillStyle = '#c9d1d9';
      g.fillRect(bu - 8, bv - 8, 16, 16);
      g.fillStyle = eeColor;
      g.beginPath();
      g.arc(eu, ev, 7, 0, Math.PI * 2);
      g.fill();
      g.strokeStyle = '#0b0f14';
      g.lineWidth = 2;
      g.stroke();
      g.restore();
      g.fillStyle = '#5d6b7e';
      g.font = '10px ui-monospace, monospace';
      g.fillText(view.title, view.ox + 10, ch - 8);
    }
    g.strokeStyle = '#1f2936';
    g.beginPath();
    g.moveTo(panelW, 0);
    g.lineTo(panelW, ch);
    g.stroke();
    const d = Math.hypot(st.ee.x - goal.x, st.ee.y - goal.y, st.ee.z - goal.z);
    this.overlay.textContent = `${hello.robot.name} · t ${st.t.toFixed(1)} s · episode ${st.episode} · reward ${fmtReward(st.reward)} · ${(d * 100).toFixed(1)} cm to goal${st.done ? ' · reached' : ''}`;
  }
}
