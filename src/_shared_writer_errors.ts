// What a SharedWriter's handle says when it cannot go on: why it closed
// (the flusher ended, this handle closed, or the last handle did), and why
// a wait is refused while the handle holds a reservation.

import { ClosedError } from "./errors.ts";
import { endReason, F_CLOSED } from "./_flush_list.ts";

/** Why a handle is closing or closed, given its flusher's control words. */
export function whyClosed(control: Int32Array): string {
  return Atomics.load(control, F_CLOSED) !== 0 ? endReason(control) : "the writer was closed";
}

/** The error for a write to a closed handle; `own`: this handle was closed. */
export function closedError(control: Int32Array, own: boolean): ClosedError {
  const why = Atomics.load(control, F_CLOSED) === 0 && own
    ? "this handle was closed"
    : whyClosed(control);
  return new ClosedError(`Cannot write to the shared writer: ${why}`);
}

/** The error for a flush whose bytes the ended flusher dropped. */
export function droppedError(control: Int32Array): ClosedError {
  return new ClosedError(
    `Cannot flush the shared writer: ${endReason(control)}; the bytes were dropped`,
  );
}

/**
 * The error for a wait while the handle holds an open reservation: the
 * buffer it is in cannot go to the flusher, nor can any after it, so with
 * the pool's other buffers filled behind it the next buffer would never come.
 */
export function waitWhileOpenError(): TypeError {
  return new TypeError(
    "Cannot wait for the shared writer's next buffer while this handle holds an open reservation: the buffers from its on cannot go to the flusher until it is committed, so the wait could last forever; commit or cancel it first, or use the try forms",
  );
}

/** Throws unless `workerId` is another worker's slot of the writer's `workers`. */
export function checkReclaimable(workerId: number, workers: number, self: number): void {
  if (!Number.isInteger(workerId) || workerId < 0 || workerId >= workers) {
    throw new RangeError(
      `Cannot reclaim worker ${workerId}: not a worker id from 0 to ${workers - 1}`,
    );
  }
  if (workerId === self) {
    throw new RangeError(`Cannot reclaim worker ${workerId}: it is this worker`);
  }
}
