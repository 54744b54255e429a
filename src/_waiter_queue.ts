// A first-come, first-served queue of promises waiting for a value (a buffer,
// a writer's turn). Waiters live on a doubly linked list so that an aborted
// one unlinks in O(1) and never disturbs the ones queued behind it.

/**
 * @ignore One place in the queue. `wait` makes one per call; a caller that
 * waits again and again (a writer for its next buffer) may keep one and
 * `push` it each time, so that waiting allocates nothing.
 */
export interface Waiter<T, P = undefined> {
  resolve: (value: T) => void;
  reject: (reason: unknown) => void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  /** What the waiter asked for, for the queue's owner to read at the head. */
  payload: P;
  prev: Waiter<T, P> | null;
  next: Waiter<T, P> | null;
}

/** FIFO waiters for values of type `T`, each abortable by its own signal. */
export class WaiterQueue<T, P = undefined> {
  #head: Waiter<T, P> | null = null;
  #tail: Waiter<T, P> | null = null;
  #size = 0;
  readonly #onAbort: () => void;

  /** @param onAbort Called after an aborted waiter has left the queue. */
  constructor(onAbort: () => void = () => {}) {
    this.#onAbort = onAbort;
  }

  /** How many waiters are queued. */
  get size(): number {
    return this.#size;
  }

  /**
   * Queues a waiter at the back. The promise settles with a value handed to
   * {@link grant}, or rejects with `signal.reason` if the signal aborts first.
   */
  wait(signal: AbortSignal | undefined, payload: P): Promise<T> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<T>((resolve, reject) => {
      const waiter: Waiter<T, P> = {
        resolve,
        reject,
        signal,
        onAbort: undefined,
        payload,
        prev: null,
        next: null,
      };
      if (signal !== undefined) {
        waiter.onAbort = () => {
          this.#unlink(waiter);
          reject(signal.reason);
          this.#onAbort();
        };
        signal.addEventListener("abort", waiter.onAbort, { once: true });
      }
      this.push(waiter);
    });
  }

  /**
   * Queues a caller's own waiter at the back; `grant` calls its `resolve`,
   * `rejectAll` its `reject`, synchronously. It must not be queued already
   * and has no signal: the caller takes it back with {@link cancel}.
   */
  push(waiter: Waiter<T, P>): void {
    waiter.prev = this.#tail;
    waiter.next = null;
    if (this.#tail === null) this.#head = waiter;
    else this.#tail.next = waiter;
    this.#tail = waiter;
    this.#size++;
  }

  /**
   * Takes a pushed waiter out of the queue, as an abort would.
   *
   * @returns Whether it was still queued (false once granted or rejected).
   */
  cancel(waiter: Waiter<T, P>): boolean {
    if (waiter.prev === null && this.#head !== waiter) return false;
    this.#unlink(waiter);
    this.#onAbort();
    return true;
  }

  /** Hands `value` to the oldest waiter. Returns false if nobody waits. */
  grant(value: T): boolean {
    const waiter = this.take();
    if (waiter === null) return false;
    waiter.resolve(value);
    return true;
  }

  /** The payload of the waiter at the head, or undefined when none waits. */
  get first(): P | undefined {
    return this.#head?.payload;
  }

  /**
   * Takes the waiter at the head out of the queue (its signal no longer
   * aborts it) for the caller to resolve: unlike {@link grant}, the caller
   * may compute the value knowing the waiter is no longer queued.
   */
  take(): Waiter<T, P> | null {
    const waiter = this.#head;
    if (waiter === null) return null;
    this.#unlink(waiter);
    if (waiter.onAbort !== undefined) {
      waiter.signal!.removeEventListener("abort", waiter.onAbort);
    }
    return waiter;
  }

  /** Rejects every waiter with `reason`, oldest first, and empties the queue. */
  rejectAll(reason: unknown): void {
    while (this.#head !== null) {
      const waiter = this.#head;
      this.#unlink(waiter);
      if (waiter.onAbort !== undefined) {
        waiter.signal!.removeEventListener("abort", waiter.onAbort);
      }
      waiter.reject(reason);
    }
  }

  #unlink(waiter: Waiter<T, P>): void {
    if (waiter.prev === null) this.#head = waiter.next;
    else waiter.prev.next = waiter.next;
    if (waiter.next === null) this.#tail = waiter.prev;
    else waiter.next.prev = waiter.prev;
    waiter.prev = waiter.next = null;
    this.#size--;
  }
}
