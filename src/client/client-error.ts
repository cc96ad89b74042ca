import type { status } from '@grpc/grpc-js';

/** A failed call: the gRPC status and the server's message (or which masters could not be reached). */
export class ClientError extends Error {
  constructor(
    readonly code: status,
    message: string,
  ) {
    super(message);
    this.name = 'ClientError';
  }
}
