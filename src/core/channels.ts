/**
 * Channel planning: one `tcp://{simulator host}:{port}` per simulator of a gang, from the simulator's
 * advertised range, never a port a live session holds on that host. The search starts past the port the
 * simulator used last, so a port just freed (perhaps still in TIME_WAIT) is the last to be reused.
 */
import { NeuroError } from './errors.js';
import type { Instance } from './model.js';

/** A port for each simulator, or RESOURCE_EXHAUSTED naming the simulator that has none free. */
export function planPorts(sims: Instance[], used: (host: string) => ReadonlySet<number>): number[] {
  const taken = new Map<string, Set<number>>();
  return sims.map((sim) => {
    const { zmqHost, zmqPortMin: min, zmqPortMax: max } = sim.spec;
    if (!min || !max || max < min) {
      throw new NeuroError('FAILED_PRECONDITION', 'NO_ZMQ_RANGE', `simulator ${sim.spec.id} advertises no ZeroMQ port range`);
    }
    const held = used(zmqHost);
    let mine = taken.get(zmqHost);
    if (!mine) taken.set(zmqHost, (mine = new Set()));
    const size = max - min + 1;
    const start = sim.portCursor >= min && sim.portCursor <= max ? sim.portCursor - min : 0;
    for (let k = 0; k < size; k++) {
      const port = min + ((start + k) % size);
      if (!held.has(port) && !mine.has(port)) {
        mine.add(port);
        return port;
      }
    }
    throw new NeuroError('RESOURCE_EXHAUSTED', 'NO_FREE_PORT', `simulator ${sim.spec.id} has no free ZeroMQ port in ${min}-${max} on ${zmqHost}`, {
      quotaViolations: [{ subject: `ports:${zmqHost}`, description: `every port in ${min}-${max} is held by a live session` }],
    });
  });
}
