/**
 * The floor: a gRPC server doing nothing but answering grpc.health.v1 Health/Check, served through
 * Neuro's own stack (protobuf-es messages on grpc-js via src/rpc/grpc-adapter.ts, the server options
 * Neuro uses). Run in its own process by bench/run.ts; prints its port.
 */
import * as grpc from '@grpc/grpc-js';
import { Health, HealthCheckResponse_ServingStatus } from '../src/gen/grpc/health/v1/health_pb.js';
import { addService } from '../src/rpc/grpc-adapter.js';

const server = new grpc.Server({
  'grpc.max_receive_message_length': 4 * 1024 * 1024,
  'grpc.max_send_message_length': 4 * 1024 * 1024,
  'grpc.max_concurrent_streams': 1000,
  'grpc.keepalive_time_ms': 30_000,
  'grpc.keepalive_timeout_ms': 10_000,
  'grpc.keepalive_permit_without_calls': 1,
  'grpc.http2.min_ping_interval_without_data_ms': 5000,
});

addService(server, Health, {
  check: () => ({ status: HealthCheckResponse_ServingStatus.SERVING }),
  watch: async () => {},
});

server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) throw err;
  process.stdout.write(`floor server on port ${port}\n`);
});
process.on('SIGTERM', () => server.forceShutdown());
