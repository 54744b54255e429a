// Calls of one worker waiting for a SharedWriter's next buffer. They wait
// together: on this worker's own switch when it makes one, otherwise on one
// Atomics.waitAsync per worker on the switcher's word, which the worker
// that opens the next buffer (or gives the switch up) clears and notifies. An aborted
// call leaves; the others keep waiting.

import { KEEPALIVE_MS } from "./_keepalive.ts";
import { SW_SWITCHER, switchWaitValue } from "./_shared_writer_block.ts";

/** The waiting calls of one worker's handle. */
export class TurnWaiters {
  readonly #sw: Int32Array;
  readonly #shared: boolean;
  #wakers: (() => void)[] = [];
  #watching = false;

  constructor(sw: Int32Array, shared: boolean) {
    this.#sw = sw;
    this.#shared = shared;
  }

  /**
   * Waits for the next buffer (or the writer closing): until {@link wake},
   * or, unless `local` (this worker is switching and wakes us itself),
   * until the cursor changes in any worker.
   */
  wait(signal: AbortSignal | undefined, local: boolean): Promise<void> {
    signal?.throwIfAborted();
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    const onAbort = () => {
      const at = this.#wakers.indexOf(wake);
      if (at >= 0) this.#wakers.splice(at, 1);
      reject(signal!.reason);
    };
    const wake = () => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    this.#wakers.push(wake);
    if (!local) this.#watch();
    return promise;
  }

  /** Wakes every waiting call, to look again. */
  wake(): void {
    const wakers = this.#wakers;
    if (wakers.length === 0) return;
    this.#wakers = [];
    for (const wake of wakers) wake();
  }

  /** One wait per worker on the switcher's word, for a switch made elsewhere (or given up). */
  #watch(): void {
    if (this.#watching) return;
    const sw = this.#sw;
    const switcher = switchWaitValue(sw);
    // Open again, or nobody switching (or nobody else to notify): look again.
    if (switcher === 0 || !this.#shared) {
      queueMicrotask(() => this.wake());
      return;
    }
    const result = Atomics.waitAsync(sw, SW_SWITCHER, switcher);
    if (!result.async) {
      queueMicrotask(() => this.wake());
      return;
    }
    this.#watching = true;
    // A pending waitAsync alone does not keep the event loop alive.
    const keepalive = setTimeout(() => {}, KEEPALIVE_MS);
    result.value.then(() => {
      clearTimeout(keepalive);
      this.#watching = false;
      this.wake();
    });
  }
}
