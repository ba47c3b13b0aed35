/**
 * The trainer reference agent: serves training.proto for many virtual training instances, trains
 * real policies (src/learn) against simulators over ZeroMQ, reports progress to Neuro.
 */
export { startTrainerAgent, type TrainerAgent, type TrainerAgentOptions, type TrainerInstanceStats } from './trainer-agent.js';
export { STALE_EPOCH } from './trainer-instance.js';
export type { TrainerProgressReport, TrainingProgressReport, ChannelState } from './training-run.js';
