/**
 * `neuro control drive`: a terminal driver for a simulator's control WebSocket, so a person can try
 * MANUAL and HYBRID control without a browser. Keys: 1-9 pick a joint, w/s (or ↑/↓) move it, space
 * steps with no motion, q quits. Works from a pipe too (one key per character), which is how it is
 * tested.
 */
import WebSocket from 'ws';

export interface DriveOptions {
  url: string;
  user: string;
  input: NodeJS.ReadStream;
  output: NodeJS.WriteStream;
  /** Called once the socket is open and the hello arrived. */
  onReady?: () => void;
}

interface Hello {
  robot: { name: string; joints: { name: string; lower: number; upper: number }[] };
  controller: string;
  goal: { x: number; y: number; z: number };
}

interface State {
  t: number;
  joints: number[];
  ee: { x: number; y: number; z: number };
  goal: { x: number; y: number; z: number };
  reward: number;
  controller: string;
  demonstrations: number;
}

const f = (n: number) => n.toFixed(3).padStart(7);

export async function drive(o: DriveOptions): Promise<{ actionsSent: number; lastState?: State }> {
  const ws = new WebSocket(o.url);
  let hello: Hello | undefined;
  let state: State | undefined;
  let joint = 0;
  let sent = 0;
  let acked = 0;
  let allAcked: (() => void) | undefined;
  let note = '';
  const tty = !!o.output.isTTY;
  const render = () => {
    if (!hello || !state) return;
    const lines = [
      `${hello.robot.name}  controller: ${state.controller}  demonstrations: ${state.demonstrations}  t=${state.t.toFixed(1)} s`,
      `end effector (${f(state.ee.x)} ${f(state.ee.y)} ${f(state.ee.z)})  goal (${f(state.goal.x)} ${f(state.goal.y)} ${f(state.goal.z)})  reward ${state.reward.toFixed(3)}`,
      ...hello.robot.joints.map((j, k) => `${k === joint ? '>' : ' '} ${k + 1} ${j.name.padEnd(20)} ${f(state!.joints[k] ?? 0)}  [${f(j.lower)}, ${f(j.upper)}]`),
      `keys: 1-${Math.min(9, hello.robot.joints.length)} joint, w/s move, space step, q quit   ${note}`,
    ];
    if (tty) o.output.write(`\x1b[H\x1b[2J${lines.join('\n')}\n`);
  };
  const act = (delta: number) => {
    if (!hello || ws.readyState !== WebSocket.OPEN) return;
    const action = hello.robot.joints.map((_, k) => (k === joint ? delta : 0));
    sent++;
    ws.send(JSON.stringify({ type: 'action', action, seq: sent }));
  };
  const opened = new Promise<void>((resolve, reject) => {
    ws.once('error', reject);
    ws.on('message', (data) => {
      const m = JSON.parse(String(data)) as { type: string } & Record<string, unknown>;
      if (m.type === 'hello') {
        hello = m as unknown as Hello;
        resolve();
        o.onReady?.();
      } else if (m.type === 'state') state = m as unknown as State;
      else if (m.type === 'ack') {
        acked = Math.max(acked, Number(m.seq));
        if (acked >= sent) allAcked?.();
      } else if (m.type === 'error') note = `refused: ${String(m.message)}`;
      else if (m.type === 'control') note = `control: ${String(m.controller)}${m.reason ? ` (${String(m.reason)})` : ''}`;
      render();
    });
    ws.once('close', (code, reason) => {
      if (!hello) reject(new Error(`control WebSocket closed: ${code} ${reason.toString()}`));
    });
  });
  ws.once('open', () => ws.send(JSON.stringify({ type: 'hello', user: o.user })));
  await opened;
  const done = new Promise<void>((resolve) => {
    const onKey = (buf: Buffer) => {
      for (const ch of buf.toString('utf8').split(/(\x1b\[[AB])/).flatMap((s) => (s.startsWith('\x1b[') ? [s] : [...s]))) {
        if (ch === 'q' || ch === '\x03') {
          o.input.off('data', onKey);
          resolve();
          return;
        }
        if (/^[1-9]$/.test(ch) && hello && Number(ch) <= hello.robot.joints.length) joint = Number(ch) - 1;
        else if (ch === 'w' || ch === '\x1b[A' || ch === '+') act(1);
        else if (ch === 's' || ch === '\x1b[B' || ch === '-') act(-1);
        else if (ch === ' ') act(0);
        render();
      }
    };
    if (o.input.isTTY) o.input.setRawMode(true);
    o.input.on('data', onKey);
    o.input.once('end', resolve);
    o.input.resume();
  });
  await done;
  if (o.input.isTTY) o.input.setRawMode(false);
  o.input.pause();
  // Everything sent is applied (or refused) before the socket closes.
  if (acked < sent) {
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, 5000);
      allAcked = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }
  ws.close();
  if (!tty && state) o.output.write(`sent ${sent} actions; controller ${state.controller}; demonstrations ${state.demonstrations}\n`);
  return { actionsSent: sent, lastState: state };
}
