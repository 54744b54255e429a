// Why a writer closed, as every later use of it and of what it left behind
// (its reservations, its claim) reports it: the writer's own close, or its
// flusher's end, with the consumer's error as the cause when the consumer
// failed in this worker.

import { ClosedError } from "./errors.ts";
import type { WriteFlusher } from "./write_flusher.ts";
import type { ClosedWriter } from "./_chunk.ts";
import { endReason, F_CLOSED, FAILED } from "./_flush_list.ts";

/** Why one writer closed, once it did. */
export class CloseReason implements ClosedWriter {
  readonly #control: Int32Array;
  readonly #flusher: WriteFlusher | null;
  /** Why, as the end of an error message. */
  #why = "";
  /** The flusher's consumer's error, when it failed in this worker. */
  #cause: unknown = undefined;

  /** For a writer of the flusher with words `control` (and object `flusher` in this worker). */
  constructor(control: Int32Array, flusher: WriteFlusher | null) {
    this.#control = control;
    this.#flusher = flusher;
  }

  /**
   * Notes why the writer closes now: the flusher's reason once it was
   * closed or its consumer failed, else `own`.
   */
  learn(own: string): void {
    const state = this.#control[F_CLOSED]!;
    this.#why = state === 0 ? own : endReason(this.#control);
    if (state === FAILED) this.#cause = this.#flusher?._failure;
  }

  /** @ignore The error for `action` on the closed writer: `Cannot <action>: <why><more>`. */
  _closedError(action: string, more = ""): ClosedError {
    const message = `Cannot ${action}: ${this.#why}${more}`;
    return this.#cause === undefined
      ? new ClosedError(message)
      : new ClosedError(message, { cause: this.#cause });
  }
}
