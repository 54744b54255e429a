// Waiting for a buffer across the workers of a shared pool, both sides of it.
//
// The waiting worker. However many of its acquires wait (they queue locally,
// first come, first served), it holds one registration: it marks its slot's
// S_WAITING, counts itself in C_WAITING, holds a keepalive timer (a pending
// Atomics.waitAsync alone does not keep the event loop alive), asks every
// other attached worker to trim, and pumps: it reads C_WAIT_SEQ, serves its
// waiters from its cache and the free stack, and sleeps until C_WAIT_SEQ
// moves if some still wait. Reading the sequence before that re-check is
// what makes a wake-up impossible to lose. Served or aborted to the last, it
// leaves C_WAITING and drops the timer.
//
// The others. Every push of free buffers bumps C_WAIT_SEQ and notifies while
// C_WAITING is not 0 (wakeWaiters); nobody pays for it while nobody waits.
// Each attached worker listens on its slot's S_TRIM: asked to trim while
// someone waits, it spills its cache and hands freed buffers straight to the
// free stack until nobody waits (the cache's hand-off), so that buffers idle
// in one worker's cache cannot starve a waiter in another. A reclaim undoes
// a dead worker's registration from its S_WAITING (dropRegistration).
//
// The exported steps each touch one word another worker touches at the same
// time (enterWaiting and leaveWaiting also write their own slot's S_WAITING,
// which only a reclaim of the dead slot reads), so that
// tests/explorer/free_stack_model.ts can run them one step at a time.

import { KEEPALIVE_MS } from "./_keepalive.ts";
import {
  C_WAIT_SEQ,
  C_WAITING,
  type Layout,
  S_STATE,
  S_TRIM,
  S_WAITING,
  slotWord,
} from "./_layout.ts";

// -- Steps --

/** Whether any worker waits for buffers. */
export function anyoneWaiting(words: Int32Array): boolean {
  return Atomics.load(words, C_WAITING) !== 0;
}

/** The wait sequence, read before re-checking for buffers. */
export function waitSeq(words: Int32Array): number {
  return Atomics.load(words, C_WAIT_SEQ);
}

/** Bumps the wait sequence and wakes whoever sleeps on it. */
export function ringWaiters(words: Int32Array): void {
  Atomics.add(words, C_WAIT_SEQ, 1);
  Atomics.notify(words, C_WAIT_SEQ);
}

/** After free buffers were pushed: wakes the waiting workers, if any. */
export function wakeWaiters(words: Int32Array): void {
  if (anyoneWaiting(words)) ringWaiters(words);
}

/** Counts the worker whose slot starts at `slot` among the waiting. */
export function enterWaiting(words: Int32Array, slot: number): void {
  Atomics.store(words, slot + S_WAITING, 1);
  Atomics.add(words, C_WAITING, 1);
}

/** Takes the worker whose slot starts at `slot` out of the waiting. */
export function leaveWaiting(words: Int32Array, slot: number): void {
  Atomics.sub(words, C_WAITING, 1);
  Atomics.store(words, slot + S_WAITING, 0);
}

/** A reclaim: takes dead worker `worker` out of the waiting, if it was counted. */
export function dropRegistration(words: Int32Array, layout: Layout, worker: number): void {
  if (Atomics.exchange(words, slotWord(layout, worker) + S_WAITING, 0) !== 0) {
    Atomics.sub(words, C_WAITING, 1);
  }
}

/** How many workers wait for buffers now. */
export function waitingWorkers(words: Int32Array): number {
  return Atomics.load(words, C_WAITING);
}

// -- One worker's side --

/** What the registration asks of the worker's cache. */
export interface WaitingHost {
  /** Serves the waiting acquires from the cache and the free stack; true if some still wait. */
  serveWaiters(): boolean;
  /** The last waiter was served: surplus buffers may be what another worker waits for. */
  shareSurplus(): void;
  /** Another worker asked for cached buffers while it waits. */
  trim(): void;
}

/** One pool object's registration and trim listener. */
export class CrossWorkerWait {
  readonly #words: Int32Array;
  readonly #layout: Layout;
  /** Int32 index of this worker's slot. */
  readonly #slot: number;
  readonly #host: WaitingHost;
  #registered = false;
  /** Bumped to invalidate a pending waitAsync of the registration. */
  #token = 0;
  #keepalive: ReturnType<typeof setTimeout> | undefined = undefined;
  #listening = false;
  #ended = false;

  constructor(words: Int32Array, layout: Layout, worker: number, host: WaitingHost) {
    this.#words = words;
    this.#layout = layout;
    this.#slot = slotWord(layout, worker);
    this.#host = host;
  }

  /** Registers this worker as waiting, unless it already is. */
  register(): void {
    if (this.#registered) return;
    this.#registered = true;
    enterWaiting(this.#words, this.#slot);
    this.#keepalive = setTimeout(() => {}, KEEPALIVE_MS);
    this.#requestTrim();
    this.#pump(++this.#token);
  }

  /** Ends the registration, if any: no waiter is left here (aborted, or served by a release). */
  cancel(): void {
    if (!this.#registered) return;
    this.#unregister();
    // Resolve our now useless waitAsync rather than leave it pending.
    ringWaiters(this.#words);
  }

  /**
   * Listens for a trim request, unless already listening. No keepalive: an
   * idle worker that would exit anyway need not stay for this.
   */
  listen(): void {
    if (this.#listening) return;
    this.#listening = true;
    const words = this.#words;
    const at = this.#slot + S_TRIM;
    const result = Atomics.waitAsync(words, at, Atomics.load(words, at));
    const onTrim = () => {
      this.#listening = false;
      if (this.#ended) return;
      if (anyoneWaiting(words)) this.#host.trim();
      // Stay armed: a cache refilled later may be what the next waiter needs.
      this.listen();
    };
    if (result.async) result.value.then(onTrim);
    else onTrim();
  }

  /** The pool object ended: wakes the trim listener so that it does not outlive the slot. */
  end(): void {
    this.#ended = true;
    Atomics.add(this.#words, this.#slot + S_TRIM, 1);
    Atomics.notify(this.#words, this.#slot + S_TRIM);
  }

  #unregister(): void {
    this.#registered = false;
    this.#token++;
    leaveWaiting(this.#words, this.#slot);
    clearTimeout(this.#keepalive);
    this.#keepalive = undefined;
  }

  /** Serves local waiters from the free stack, then sleeps until more is pushed. */
  #pump(token: number): void {
    if (token !== this.#token) return;
    const words = this.#words;
    for (;;) {
      const seq = waitSeq(words);
      if (!this.#host.serveWaiters()) {
        this.#unregister();
        this.#host.shareSurplus();
        return;
      }
      const result = Atomics.waitAsync(words, C_WAIT_SEQ, seq);
      if (result.async) {
        result.value.then(() => this.#pump(token));
        return;
      }
    }
  }

  /** Asks every other attached worker to give back its cached buffers. */
  #requestTrim(): void {
    const words = this.#words;
    for (let i = 0; i < this.#layout.maxWorkers; i++) {
      const slot = slotWord(this.#layout, i);
      if (slot === this.#slot || Atomics.load(words, slot + S_STATE) !== 1) continue;
      Atomics.add(words, slot + S_TRIM, 1);
      Atomics.notify(words, slot + S_TRIM);
    }
  }
}
