// How the flusher's readable keeps a failed pipe from stranding buffers:
// the batches handed to the pipe (see _tracked_pipe_readable.ts), of which
// the flusher releases, once the pipe fails, every one nobody touched.

import type { FlushRegion } from "./flush_region.ts";
import type { PipeTracker } from "./_tracked_pipe_readable.ts";

/**
 * The batches handed to the current pipe of the flusher's readable, so that
 * those a failed pipe dropped can be released.
 */
export class PipedBatches implements PipeTracker {
  /**
   * While the readable is piped: copies of the batches handed to the pipe
   * that were untouched when last looked at; null while it is not.
   */
  #piped: FlushRegion[][] | null = null;
  /** Some batch handed to the current pipe was touched: its destination takes regions. */
  #touched = false;
  /** The byte-sink error the pipe's failure was rephrased as, and its cause. */
  #rephrased: { cause: unknown; error: TypeError } | null = null;
  /** Batches a failed pipe dropped, until {@linkcode PipedBatches.releaseDropped}. */
  readonly #dropped: FlushRegion[][] = [];

  /** A pipe took the readable. */
  started(): void {
    this.#piped = [];
    this.#touched = false;
    this.#rephrased = null;
  }

  /**
   * The pipe ended, with `error` when it failed.
   *
   * @returns What the pipe rejects with: the reason, or a clearer one.
   */
  ended(error: { reason: unknown } | undefined): unknown {
    const reason = error === undefined ? undefined : this.failed(error.reason);
    this.#piped = null;
    this.releaseDropped();
    return reason;
  }

  /**
   * Notes a batch the readable handed out, if to a pipe, and forgets those
   * handed before that were touched since: their destination took them.
   */
  handed(batch: FlushRegion[]): void {
    const piped = this.#piped;
    if (piped === null) return;
    let kept = 0;
    for (let i = 0; i < piped.length; i++) {
      const handed = piped[i]!;
      if (anyTouched(handed)) this.#touched = true;
      else piped[kept++] = handed;
    }
    piped.length = kept;
    // A copy: the destination may empty or reuse the array it was given.
    piped.push(batch.slice());
  }

  /**
   * The readable was cancelled with `reason`, or its pipe failed with it:
   * sets aside the batches handed to the pipe that nobody touched, which its
   * destination dropped, for {@linkcode PipedBatches.releaseDropped} (once
   * the flusher has recorded why it ended).
   *
   * @returns The reason, or, when nothing handed to the pipe was ever
   * touched and the destination failed with a TypeError, a TypeError that
   * says it was a byte sink.
   */
  failed(reason: unknown): unknown {
    const piped = this.#piped;
    if (piped === null) return reason;
    // The pipe rejects with what its cancel was rephrased as.
    const rephrased = this.#rephrased;
    if (rephrased !== null && rephrased.cause === reason) return rephrased.error;
    if (piped.length === 0) return reason;
    let touched = this.#touched;
    for (let i = 0; i < piped.length; i++) {
      const handed = piped[i]!;
      if (anyTouched(handed)) {
        touched = true;
        continue;
      }
      this.#dropped.push(handed);
    }
    piped.length = 0;
    this.#touched = touched;
    if (touched || !(reason instanceof TypeError)) return reason;
    const error = new TypeError(
      "Cannot pipe flusher.readable to a byte sink: it yields FlushRegion[] batches, not bytes; use flusher.pipeTo(sink) to write them without a copy, or pipe flusher.bytes()",
      { cause: reason },
    );
    this.#rephrased = { cause: reason, error };
    return error;
  }

  /** Releases the batches {@linkcode PipedBatches.failed} set aside. */
  releaseDropped(): void {
    const dropped = this.#dropped;
    for (let i = 0; i < dropped.length; i++) {
      const batch = dropped[i]!;
      for (let j = 0; j < batch.length; j++) batch[j]!.release();
    }
    dropped.length = 0;
  }
}

/** Whether a region of `batch` was used. */
function anyTouched(batch: readonly FlushRegion[]): boolean {
  for (let i = 0; i < batch.length; i++) if (batch[i]!._touched) return true;
  return false;
}
