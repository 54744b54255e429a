// How a NATS connection reports what failed under it: the socket's errors
// wrapped in a NatsConnectionError that says which side broke; the server's
// and the protocol's own errors as they are.

import { NatsConnectionError, NatsServerError } from "./nats_errors.ts";

export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Why the socket's write side failed, as the connection's failure. */
export function writeFailure(error: unknown): unknown {
  if (error instanceof NatsConnectionError || error instanceof NatsServerError) return error;
  return new NatsConnectionError(`Cannot write to the NATS server: ${errorText(error)}`, {
    cause: error,
  });
}

/** Why reading failed: the server's own errors as they are, the socket's wrapped. */
export function readFailure(error: unknown): unknown {
  if (error instanceof Deno.errors.BadResource || error instanceof Deno.errors.ConnectionReset) {
    return new NatsConnectionError(`The NATS connection was lost: ${errorText(error)}`, {
      cause: error,
    });
  }
  return error;
}
