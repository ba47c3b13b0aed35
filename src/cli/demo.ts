/**
 * `neuro demo` (what `npm start` runs): Neuro with its embedded store, plus reference agents as child
 * processes on loopback — simulators and trainers that register and heartbeat like real instances — so
 * every example of the seed works against it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { NeuroConfig } from '../server/config.js';
import { onSignals } from './signals.js';

const BIN = fileURLToPath(new URL('../../bin/neuro.js', import.meta.url));

export interface DemoOptions {
  simulators: number;
  trainers: number;
}

function agent(args: string[], tag: string, token: string): ChildProcess {
  const child = spawn(process.execPath, [BIN, 'agent', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...(token ? { NEURO_INSTANCE_TOKEN: token } : {}) },
  });
  const prefix = (chunk: Buffer) =>
    chunk
      .toString()
      .split('\n')
      .filter(Boolean)
      .map((l) => `[${tag}] ${l}\n`)
      .join('');
  child.stdout!.on('data', (c: Buffer) => process.stderr.write(prefix(c)));
  child.stderr!.on('data', (c: Buffer) => process.stderr.write(prefix(c)));
  return child;
}

export async function runDemo(config: NeuroConfig, opts: DemoOptions): Promise<void> {
  const { startNeuro } = await import('../server/neuro.js');
  const server = await startNeuro(config);
  const neuro = `127.0.0.1:${server.grpcPort}`;
  const children: ChildProcess[] = [];
  if (opts.simulators > 0) children.push(agent(['sim', '--neuro', neuro, '--count', String(opts.simulators), '--zmq-port-base', '30000'], 'sim', config.instanceToken));
  if (opts.trainers > 0) children.push(agent(['trainer', '--neuro', neuro, '--count', String(opts.trainers), '--gpus', '4', '--memory-gb', '32'], 'trainer', config.instanceToken));

  // Wait until the pool is there, so "try it" works the moment it is printed.
  const want = { simulator: opts.simulators, trainer: opts.trainers };
  await new Promise<void>((resolve) => {
    const check = () => {
      const c = server.orchestrator.engine.pool.counts;
      if (c.simulator.idle >= want.simulator && c.trainer.idle >= want.trainer) {
        clearInterval(t);
        resolve();
      }
    };
    const t = setInterval(check, 100);
    check();
  });
  const http = `http://127.0.0.1:${server.httpPort}`;
  process.stdout.write(
    [
      '',
      `Neuro is serving gRPC on ${neuro} and HTTP on ${http}`,
      `  pool: ${opts.simulators} simulators, ${opts.trainers} trainers (4 GPUs, 32 GB each) on loopback`,
      `  dashboard ${http}/`,
      `  metrics ${http}/metrics   health ${http}/healthz   ready ${http}/readyz`,
      '',
      'Try it (in another terminal):',
      '  npx neuro pool status',
      '  npx neuro session create --id session-123',
      '  npx neuro session get session-123',
      '  npx neuro session terminate session-123',
      '',
    ].join('\n'),
  );
  onSignals(async () => {
    for (const c of children) c.kill('SIGTERM');
    await server.stop();
  });
  for (const c of children) {
    c.on('exit', (code, sig) => {
      if (code !== 0 && sig !== 'SIGTERM') server.logger.warn({ code, sig }, 'an agent process exited');
    });
  }
}
