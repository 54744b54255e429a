// How a flusher waits for its writers: it sleeps until a writer pushes onto
// an empty list, or until the flusher is closed. In one worker the sleep is
// a promise whose resolve a writer calls; with a shared pool it waits on the
// bell word of the flusher's block, which writers in any worker ring (the
// protocol's steps are in _flush_list.ts).

import { endSleep, prepareSleep, ringBell, waitOnBell } from "./_flush_list.ts";
import { KEEPALIVE_MS } from "./_keepalive.ts";

/** A flusher's sleep and wake-up. */
export class FlusherBell {
  readonly #control: Int32Array;
  readonly #shared: boolean;
  /** Resolves the sleep of a flusher whose writers share its worker. */
  #wake: (() => void) | null = null;

  /**
   * @param control The flusher's words.
   * @param shared Whether writers in other workers may ring: the pool is shared.
   */
  constructor(control: Int32Array, shared: boolean) {
    this.#control = control;
    this.#shared = shared;
  }

  /**
   * Sleeps until a writer pushes onto an empty list, or close. In one
   * worker the promise is the writer's wake itself: no async function
   * around it, so a wake costs one hop, not three.
   */
  sleep(): Promise<void> {
    if (!this.#shared) return new Promise<void>((resolve) => this.#wake = resolve);
    return this.#sleepShared();
  }

  /** Wakes the flusher if it sleeps: something was pushed, or close was called. */
  ring(): void {
    const wake = this.#wake;
    if (wake !== null) {
      this.#wake = null;
      wake();
      return;
    }
    if (this.#shared) ringBell(this.#control);
  }

  /** The sleep for a shared pool: on the bell word, which writers in any worker ring. */
  async #sleepShared(): Promise<void> {
    const control = this.#control;
    const bell = prepareSleep(control);
    if (bell !== null) {
      const result = waitOnBell(control, bell);
      if (result.async) {
        // A pending waitAsync alone does not keep the event loop alive.
        const keepalive = setTimeout(() => {}, KEEPALIVE_MS);
        await result.value;
        clearTimeout(keepalive);
      }
    }
    endSleep(control);
  }
}
