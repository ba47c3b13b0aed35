/**
 * Server reflection from protobuf-es' embedded descriptors, so grpcurl-style tools work without the
 * proto files. @grpc/reflection reads `fileDescriptorProtos` the way proto-loader provides them; we give
 * it the same from the generated files (and everything they import).
 */
import { toBinary } from '@bufbuild/protobuf';
import { FileDescriptorProtoSchema } from '@bufbuild/protobuf/wkt';
import type { DescFile } from '@bufbuild/protobuf';
import { ReflectionService } from '@grpc/reflection';
import type * as grpc from '@grpc/grpc-js';

function closure(files: DescFile[]): DescFile[] {
  const seen = new Map<string, DescFile>();
  const visit = (f: DescFile) => {
    if (seen.has(f.name)) return;
    seen.set(f.name, f);
    for (const d of f.dependencies) visit(d);
  };
  files.forEach(visit);
  return [...seen.values()];
}

/** Adds grpc.reflection.v1 and v1alpha to `server` for the given services' files. */
export function addReflection(server: grpc.Server, files: DescFile[], services: string[]): void {
  const fileDescriptorProtos = closure(files).map((f) => Buffer.from(toBinary(FileDescriptorProtoSchema, f.proto)));
  const root = { neuro: { fileDescriptorProtos } };
  new ReflectionService(root as never, { services }).addToServer(server);
}
