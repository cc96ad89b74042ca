/**
 * The gRPC metadata a client keys a write with: one random key per write,
 * the same on every retry of it, so that the masters apply it once even when
 * its first answer was lost (see master/idempotency.ts).
 */
export const IDEMPOTENCY_KEY = 'idempotency-key';
