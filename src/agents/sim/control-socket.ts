/**
 * The control WebSocket of every instance an agent hosts, on the agent's one HTTP port:
 * `/i/{instance_id}/control/{session_id}`. JSON text frames; the server side of the protocol is in
 * `SimSession` (hello, state, control frames), the client may send
 * `{type:'hello', user}` and `{type:'action', action:number[]}` or `{type:'action', joint, delta}`, either
 * with an optional `seq` that the server acknowledges with `{type:'ack', seq, applied}`.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import type { SimInstance } from './instance.js';
import type { ControlPeer, SimSession } from './session.js';

/** Close code for a path that names no live session (an HTTP 404, in WebSocket terms). */
export const CLOSE_NOT_FOUND = 4404;
/** A slow client is skipped rather than buffered without bound: state frames supersede each other. */
const MAX_BUFFERED_BYTES = 1 << 20;
const PATH = /^\/i\/([^/]+)\/control\/([^/]+)\/?$/;

/** The control WebSocket endpoint of an agent. */
export interface ControlSockets {
  /** The HTTP server's `upgrade` listener. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** Disconnects every client. */
  close(): void;
}

/** Serves the control WebSockets of `instances` (attach `handleUpgrade` to the HTTP server's `upgrade` event). */
export function createControlSockets(instances: ReadonlyMap<string, SimInstance>, logger: Logger): ControlSockets {
  const wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024 });
  return {
    handleUpgrade(req, socket, head) {
      const path = new URL(req.url ?? '/', 'http://localhost').pathname;
      const m = PATH.exec(path);
      if (!m) {
        socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
        return;
      }
      let instanceId: string;
      let sessionId: string;
      try {
        instanceId = decodeURIComponent(m[1]!);
        sessionId = decodeURIComponent(m[2]!);
      } catch {
        socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
        return;
      }
      // Accept first, then refuse with a close code: browsers only expose close codes, not HTTP statuses.
      wss.handleUpgrade(req, socket, head, (ws) => {
        const inst = instances.get(instanceId);
        const session = inst?.alive ? inst.session : undefined;
        if (!session || session.id !== sessionId) {
          const why = !inst ? `no instance ${instanceId}` : !inst.alive ? `${instanceId} is down` : `no live session ${sessionId} on ${instanceId}`;
          ws.close(CLOSE_NOT_FOUND, truncate(why));
          return;
        }
        serve(ws, session, logger);
      });
    },
    close() {
      for (const ws of wss.clients) ws.terminate();
      wss.close();
    },
  };
}

function serve(ws: WebSocket, session: SimSession, logger: Logger): void {
  const peer: ControlPeer = {
    send(frame) {
      if (ws.readyState === WebSocket.OPEN && ws.bufferedAmount < MAX_BUFFERED_BYTES) ws.send(frame);
    },
    close(code, reason) {
      ws.close(code, truncate(reason));
    },
  };
  const reply = (frame: object) => peer.send(JSON.stringify(frame));
  ws.on('message', (data: RawData, isBinary: boolean) => {
    if (session.closed) return;
    let msg: { type?: unknown; user?: unknown; action?: unknown; joint?: unknown; delta?: unknown; seq?: unknown };
    try {
      if (isBinary) throw new Error('binary');
      msg = JSON.parse(data.toString()) as typeof msg;
      if (typeof msg !== 'object' || msg === null) throw new Error('not an object');
    } catch {
      reply({ type: 'error', error: 'BAD_REQUEST', message: 'frames are JSON objects' });
      return;
    }
    if (msg.type === 'hello') {
      if (typeof msg.user !== 'string' || !msg.user.trim() || msg.user.length > 256) {
        reply({ type: 'error', error: 'BAD_REQUEST', message: 'hello needs a user name' });
        return;
      }
      peer.user = msg.user.trim();
      peer.send(session.stateFrame());
      return;
    }
    if (msg.type !== 'action') {
      reply({ type: 'error', error: 'BAD_REQUEST', message: `unknown frame type ${JSON.stringify(msg.type)}` });
      return;
    }
    // An action may carry a `seq`: the sender then gets an `ack` after the state frame it caused, so a
    // client can tell when everything it sent has been applied (or refused).
    const seq = typeof msg.seq === 'number' && Number.isSafeInteger(msg.seq) ? msg.seq : undefined;
    const action = toAction(msg, session.robot.joints.length);
    if (typeof action === 'string') {
      reply({ type: 'error', error: 'BAD_REQUEST', message: action });
      if (seq !== undefined) reply({ type: 'ack', seq, applied: false });
      return;
    }
    const refused = session.humanAction(peer, action);
    if (refused) reply({ type: 'error', ...refused });
    if (seq !== undefined) reply({ type: 'ack', seq, applied: !refused });
  });
  ws.on('close', () => session.detach(peer));
  ws.on('error', (err) => logger.debug({ err, session: session.id }, 'control socket error'));
  session.attach(peer);
}

/** The action vector of an action frame, or why there is none. */
function toAction(msg: { action?: unknown; joint?: unknown; delta?: unknown }, n: number): number[] | string {
  if (msg.action !== undefined) {
    const a = msg.action;
    if (!Array.isArray(a) || a.length !== n || !a.every((v) => typeof v === 'number' && Number.isFinite(v))) {
      return `action must be ${n} finite numbers`;
    }
    return a as number[];
  }
  const { joint, delta } = msg;
  if (typeof joint !== 'number' || !Number.isInteger(joint) || joint < 0 || joint >= n || typeof delta !== 'number' || !Number.isFinite(delta)) {
    return `an action frame needs action: number[${n}], or joint (0..${n - 1}) and delta`;
  }
  const action = new Array<number>(n).fill(0);
  action[joint] = delta;
  return action;
}

function truncate(reason: string): string {
  // A close reason is at most 123 bytes of UTF-8.
  let r = reason;
  while (Buffer.byteLength(r) > 123) r = r.slice(0, -1);
  return r;
}
