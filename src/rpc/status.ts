/**
 * NeuroError ⇄ gRPC status. Details travel the standard way, as a google.rpc.Status in the
 * `grpc-status-details-bin` trailer, so grpc-java's StatusProto.fromThrowable reads them in Nexus.
 */
import * as grpc from '@grpc/grpc-js';
import { anyPack, anyUnpack } from '@bufbuild/protobuf/wkt';
import { create, fromBinary, toBinary, createRegistry } from '@bufbuild/protobuf';
import { StatusSchema } from '../gen/google/rpc/status_pb.js';
import {
  BadRequestSchema,
  ErrorInfoSchema,
  QuotaFailureSchema,
  ResourceInfoSchema,
  type BadRequest,
  type ErrorInfo,
  type QuotaFailure,
  type ResourceInfo,
} from '../gen/google/rpc/error_details_pb.js';
import { NeuroError, type ErrorCode, type ErrorDetails } from '../core/errors.js';

/** The ErrorInfo domain of every error Neuro raises. */
export const ERROR_DOMAIN = 'neuro.robotics';

const CODES: Record<ErrorCode, grpc.status> = {
  INVALID_ARGUMENT: grpc.status.INVALID_ARGUMENT,
  NOT_FOUND: grpc.status.NOT_FOUND,
  ALREADY_EXISTS: grpc.status.ALREADY_EXISTS,
  RESOURCE_EXHAUSTED: grpc.status.RESOURCE_EXHAUSTED,
  FAILED_PRECONDITION: grpc.status.FAILED_PRECONDITION,
  UNAVAILABLE: grpc.status.UNAVAILABLE,
  UNAUTHENTICATED: grpc.status.UNAUTHENTICATED,
  PERMISSION_DENIED: grpc.status.PERMISSION_DENIED,
  DEADLINE_EXCEEDED: grpc.status.DEADLINE_EXCEEDED,
  ABORTED: grpc.status.ABORTED,
  INTERNAL: grpc.status.INTERNAL,
  UNIMPLEMENTED: grpc.status.UNIMPLEMENTED,
  CANCELLED: grpc.status.CANCELLED,
};
const NAMES = new Map<grpc.status, ErrorCode>(Object.entries(CODES).map(([k, v]) => [v, k as ErrorCode]));

const registry = createRegistry(ErrorInfoSchema, BadRequestSchema, QuotaFailureSchema, ResourceInfoSchema);

/** The gRPC status code of a domain error code. */
export function grpcCode(code: ErrorCode): grpc.status {
  return CODES[code];
}

/** A NeuroError as a grpc-js status object, details in the standard trailer. */
export function toGrpcStatus(err: NeuroError): grpc.StatusObject {
  const code = CODES[err.code];
  const details = [
    anyPack(ErrorInfoSchema, create(ErrorInfoSchema, { reason: err.reason, domain: ERROR_DOMAIN, metadata: err.details.metadata ?? {} })),
  ];
  if (err.details.fieldViolations?.length) {
    details.push(anyPack(BadRequestSchema, create(BadRequestSchema, { fieldViolations: err.details.fieldViolations })));
  }
  if (err.details.quotaViolations?.length) {
    details.push(anyPack(QuotaFailureSchema, create(QuotaFailureSchema, { violations: err.details.quotaViolations })));
  }
  if (err.details.resource) {
    const r = err.details.resource;
    details.push(
      anyPack(ResourceInfoSchema, create(ResourceInfoSchema, { resourceType: r.type, resourceName: r.name, description: r.description ?? '' })),
    );
  }
  const status = create(StatusSchema, { code, message: err.message, details });
  const metadata = new grpc.Metadata();
  metadata.set('grpc-status-details-bin', Buffer.from(toBinary(StatusSchema, status)));
  return { code, details: err.message, metadata };
}

/** A grpc-js client error as a NeuroError, with the details decoded where present. */
export function fromGrpcError(err: grpc.ServiceError | (Error & { code?: number; details?: string; metadata?: grpc.Metadata })): NeuroError {
  const code = NAMES.get(err.code as grpc.status) ?? 'UNAVAILABLE';
  const message = err.details || err.message;
  const details: ErrorDetails = {};
  let reason: string = code;
  const bin = err.metadata?.get('grpc-status-details-bin')[0];
  if (bin instanceof Buffer) {
    try {
      const st = fromBinary(StatusSchema, bin);
      for (const a of st.details) {
        const m = anyUnpack(a, registry);
        if (!m) continue;
        switch (m.$typeName) {
          case 'google.rpc.ErrorInfo':
            reason = (m as ErrorInfo).reason || reason;
            if (Object.keys((m as ErrorInfo).metadata).length) details.metadata = { ...(m as ErrorInfo).metadata };
            break;
          case 'google.rpc.BadRequest':
            details.fieldViolations = (m as BadRequest).fieldViolations.map((v) => ({ field: v.field, description: v.description }));
            break;
          case 'google.rpc.QuotaFailure':
            details.quotaViolations = (m as QuotaFailure).violations.map((v) => ({ subject: v.subject, description: v.description }));
            break;
          case 'google.rpc.ResourceInfo': {
            const r = m as ResourceInfo;
            details.resource = { type: r.resourceType, name: r.resourceName, description: r.description };
            break;
          }
        }
      }
    } catch {
      // A peer that sends malformed details still gets its code and message through.
    }
  }
  return new NeuroError(code, reason, message, details, { cause: err });
}
