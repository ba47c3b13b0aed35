/**
 * The one error type of the domain core. Codes mirror gRPC's (the edge maps them 1:1) but the core
 * never imports gRPC: a code here is a statement about the domain, not about a transport.
 */
export type ErrorCode =
  | 'INVALID_ARGUMENT'
  | 'NOT_FOUND'
  | 'ALREADY_EXISTS'
  | 'RESOURCE_EXHAUSTED'
  | 'FAILED_PRECONDITION'
  | 'UNAVAILABLE'
  | 'UNAUTHENTICATED'
  | 'PERMISSION_DENIED'
  | 'DEADLINE_EXCEEDED'
  | 'ABORTED'
  | 'INTERNAL'
  | 'UNIMPLEMENTED'
  | 'CANCELLED';

/** A request field that failed validation (becomes a google.rpc.BadRequest violation). */
export interface FieldViolation {
  field: string;
  description: string;
}

/** A shortage of one kind of resource (becomes a google.rpc.QuotaFailure violation). */
export interface QuotaViolation {
  subject: string;
  description: string;
}

/** Structured details an error carries besides its message. */
export interface ErrorDetails {
  fieldViolations?: FieldViolation[];
  quotaViolations?: QuotaViolation[];
  /** The resource the error is about (google.rpc.ResourceInfo). */
  resource?: { type: string; name: string; description?: string };
  metadata?: Record<string, string>;
}

/**
 * An error with a closed set of codes, a stable UPPER_SNAKE reason for programs and a message for
 * people. `NeuroError.from()` normalises anything thrown.
 */
export class NeuroError extends Error {
  override readonly name = 'NeuroError';
  constructor(
    readonly code: ErrorCode,
    readonly reason: string,
    message: string,
    readonly details: ErrorDetails = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  /** Any thrown value as a NeuroError; unknown errors become INTERNAL. */
  static from(err: unknown): NeuroError {
    if (err instanceof NeuroError) return err;
    const message = err instanceof Error ? err.message : String(err);
    return new NeuroError('INTERNAL', 'INTERNAL', message, {}, { cause: err });
  }

  static invalid(violations: FieldViolation[]): NeuroError {
    const first = violations[0];
    const summary = violations.map((v) => `${v.field}: ${v.description}`).join('; ');
    return new NeuroError(
      'INVALID_ARGUMENT',
      'INVALID_ARGUMENT',
      violations.length === 1 && first ? `invalid ${first.field}: ${first.description}` : `invalid request: ${summary}`,
      { fieldViolations: violations },
    );
  }

  static notFound(kind: string, name: string): NeuroError {
    return new NeuroError('NOT_FOUND', `${kind.toUpperCase()}_NOT_FOUND`, `${kind} ${JSON.stringify(name)} not found`, {
      resource: { type: kind, name },
    });
  }
}
