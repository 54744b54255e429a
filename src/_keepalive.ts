/**
 * The one keepalive timer slice. A pending `Atomics.waitAsync` does not keep
 * the event loop alive, so whoever sleeps on one (the pool's cross-worker
 * waiters, the flusher's bell) also holds a timer of this length and clears it
 * on waking. It is the longest delay timers accept: a longer one overflows to
 * 1 ms and would fire at once.
 * @module
 */

/** Longest timer delay (2³¹ − 1 ms, about 24.8 days); it never fires in practice. */
export const KEEPALIVE_MS = 2 ** 31 - 1;
