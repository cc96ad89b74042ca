import { status } from '@grpc/grpc-js';
import { ErrorCode } from './store/commands';

/** An error for the client: a gRPC status code and a message a person can act on. */
export class ApiError extends Error {
  constructor(
    readonly code: status,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

const STORE_CODES: Record<ErrorCode, status> = {
  NOT_FOUND: status.NOT_FOUND,
  ALREADY_EXISTS: status.ALREADY_EXISTS,
  CONFLICT: status.ABORTED,
  FORBIDDEN: status.FAILED_PRECONDITION,
  QUOTA: status.FAILED_PRECONDITION,
  INVALID: status.INVALID_ARGUMENT,
  FENCED: status.UNAVAILABLE,
};

export function storeError(code: ErrorCode, message: string): ApiError {
  return new ApiError(STORE_CODES[code], message);
}
