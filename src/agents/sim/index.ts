/**
 * The simulator reference agent (stands in for NVIDIA Isaac Sim): IsaacSimService, control
 * WebSockets and ZeroMQ env servers for many virtual instances in one process.
 */
export { startSimAgent, type SimAgent, type SimAgentOptions, type SimInstanceStats } from './sim-agent.js';
export { CLOSE_NOT_FOUND } from './control-socket.js';
