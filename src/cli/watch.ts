/**
 * `neuro session watch`: events as lines, and for training a live progress bar with the reward.
 */
import type { TrainingProgress, WatchSessionResponse } from '../gen/neuro/v1/neuro_orchestrator_pb.js';
import type { ClientOf } from '../rpc/grpc-adapter.js';
import type { NeuroOrchestratorService } from '../gen/neuro/v1/neuro_orchestrator_pb.js';
import { stateName } from './main.js';

export function progressBar(done: number, total: number, width = 30): string {
  const f = total > 0 ? Math.min(1, done / total) : 0;
  const n = Math.round(f * width);
  return `[${'#'.repeat(n)}${'.'.repeat(width - n)}] ${(f * 100).toFixed(0).padStart(3)}%`;
}

function progressLine(p: TrainingProgress): string {
  return `${progressBar(Number(p.episodesDone), Number(p.totalEpisodes))} ${p.episodesDone}/${p.totalEpisodes} episodes  reward ${p.meanReward.toFixed(3)} (start ${p.firstMeanReward.toFixed(3)})  ${p.envStepsPerSecond.toFixed(0)} steps/s`;
}

export async function watch(c: ClientOf<typeof NeuroOrchestratorService>, id: string, asJson: boolean, toJson: (m: WatchSessionResponse) => string): Promise<void> {
  const tty = process.stdout.isTTY;
  let barShown = false;
  for await (const m of c.watchSession({ sessionId: id })) {
    if (asJson) {
      process.stdout.write(`${toJson(m).replace(/\n\s*/g, ' ')}\n`);
      continue;
    }
    const e = m.event;
    if (!e) {
      // The session as it is now: its progress so far, then its state (all there is if it has ended).
      const s = m.session!;
      if (s.progress) process.stdout.write(`${progressLine(s.progress)}\n`);
      process.stdout.write(`${id}: ${stateName(s.state)}${s.failureReason ? ` (${s.failureReason})` : ''}\n`);
      continue;
    }
    if (e.type === 'progress' && e.progress) {
      const line = progressLine(e.progress);
      if (tty) {
        process.stdout.write(`\r${line}`);
        barShown = true;
      } else process.stdout.write(`${line}\n`);
      continue;
    }
    if (barShown) {
      process.stdout.write('\n');
      barShown = false;
    }
    process.stdout.write(`#${e.sequence} ${e.type} ${stateName(e.state)}: ${e.message}\n`);
  }
  if (barShown) process.stdout.write('\n');
}
