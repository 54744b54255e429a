// A readable of pool memory that follows its own pipes. A pipe's
// destination drops what it queued when it fails, and a write that fails
// may never have used its chunk, without a word: only the pipe knows that a
// chunk went there rather than to a reader. So the readable tells a tracker
// when a pipe starts and ends, and the tracker releases, once the pipe
// fails, what it was handed that nobody used.

/** What a {@linkcode TrackedPipeReadable} tells about its pipes. */
export interface PipeTracker {
  /** A pipe took the readable (before its first read, which may come at once). */
  started(): void;
  /**
   * The pipe ended, with `error` when it failed.
   *
   * @returns What the pipe rejects with: the reason, or a clearer one.
   */
  ended(error: { reason: unknown } | undefined): unknown;
}

/**
 * A readable whose `pipeTo` and `pipeThrough` report to a
 * {@linkcode PipeTracker}. Its source tells the tracker what it hands out.
 */
export class TrackedPipeReadable<T> extends ReadableStream<T> {
  readonly #tracker: PipeTracker;

  constructor(source: UnderlyingDefaultSource<T>, tracker: PipeTracker) {
    // A high-water mark of 0: a chunk is taken only for a read that waits
    // for it, never into the stream's queue, which a cancel would drop
    // without a word, stranding its buffers.
    super(source, { highWaterMark: 0 });
    this.#tracker = tracker;
  }

  override pipeTo(destination: WritableStream<T>, options?: StreamPipeOptions): Promise<void> {
    // Locked: refused, and the pipe that holds it keeps its record.
    if (this.locked) return super.pipeTo(destination, options);
    const tracker = this.#tracker;
    // Before the pipe starts: it may take a chunk that is ready at once.
    tracker.started();
    const piping = super.pipeTo(destination, options);
    if (!this.locked) {
      // Refused (a bad argument): it took nothing.
      tracker.ended(undefined);
      return piping;
    }
    return piping.then(
      () => {
        tracker.ended(undefined);
      },
      (reason: unknown) => {
        throw tracker.ended({ reason });
      },
    );
  }

  override pipeThrough<U>(
    transform: ReadableWritablePair<U, T>,
    options?: StreamPipeOptions,
  ): ReadableStream<U> {
    if (!(transform?.readable instanceof ReadableStream)) {
      throw new TypeError("Cannot pipe through: transform.readable is not a ReadableStream");
    }
    if (!(transform.writable instanceof WritableStream)) {
      throw new TypeError("Cannot pipe through: transform.writable is not a WritableStream");
    }
    if (this.locked) throw new TypeError("Cannot pipe through: the readable is locked");
    if (transform.writable.locked) {
      throw new TypeError("Cannot pipe through: transform.writable is locked");
    }
    // As the standard pipeThrough does: the pipe's failure shows on transform.readable.
    this.pipeTo(transform.writable, options).catch(() => {});
    return transform.readable;
  }
}
