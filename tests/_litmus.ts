// The words two litmus workers (tests/workers/litmus_worker.ts) share besides
// the pool, and the barrier they meet at. The main thread only starts the
// workers and reads their replies; the iterations run between the workers.
import type { BufferPoolHandle, WriteFlusherHandle } from "../mod.ts";

/** Barrier: parties arrived in this generation. */
export const COUNT = 0;
/** Barrier: generation, bumped when the last party arrives. */
export const GEN = 1;
/** Set by a worker that failed, so that the other leaves its barrier. */
export const ABORT = 2;
/** A ticket counter that orders events within one iteration. */
export const ORDER = 3;
/** How many workers meet at the barrier. */
export const PARTIES = 4;
/** Tickets of an iteration's events (3 words). */
export const EVENTS = 5;
/** Each worker's set of held buffers, as a bit mask (2 words). */
export const SETS = 8;
/** A SendPacket's six integers, passed through shared memory (6 words). */
export const MAILBOX = 10;
/** Waiting litmus: the iteration whose buffer the holder holds. */
export const PHASE_HELD = 16;
/** Waiting litmus: the iteration whose acquire() the waiter called. */
export const PHASE_CALLED = 17;
/** Waiting litmus: the iteration the waiter finished. */
export const PHASE_DONE = 18;
/** Owner table: the id (1 or 2) of the worker holding each buffer, 0 for none. */
export const OWNERS = 32;
/** Largest pool the owner table and the set masks cover. */
export const MAX_BUFFERS = 30;
export const SYNC_WORDS = OWNERS + MAX_BUFFERS;

/** How long a barrier waits for the other worker before the test fails. */
const BARRIER_TIMEOUT_MS = 10_000;
/** Spins before sleeping in a barrier: two workers on two cores mostly meet while spinning. */
const SPINS = 20_000;

export type LitmusKind = "acquireRelease" | "sendReceive" | "reserveCommit" | "waitNotify";

export interface LitmusRequest {
  kind: LitmusKind;
  /** 0 or 1: which side of the litmus this worker plays. */
  role: number;
  iterations: number;
  seed: number;
  handle: BufferPoolHandle;
  flusher?: WriteFlusherHandle;
  /** SYNC_WORDS Int32 words, zeroed but for PARTIES. */
  sync: SharedArrayBuffer;
}

export type LitmusReply =
  | { ok: true; histogram: Record<string, number> }
  | { ok: false; error: string };

/** Makes the shared words for `parties` workers. */
export function makeSync(parties: number): SharedArrayBuffer {
  const block = new SharedArrayBuffer(SYNC_WORDS * 4);
  new Int32Array(block)[PARTIES] = parties;
  return block;
}

/** Waits, blocking, until every party arrived (workers only: it uses Atomics.wait). */
export function barrier(sync: Int32Array): void {
  const gen = Atomics.load(sync, GEN);
  if (Atomics.add(sync, COUNT, 1) === sync[PARTIES]! - 1) {
    Atomics.store(sync, COUNT, 0);
    Atomics.add(sync, GEN, 1);
    Atomics.notify(sync, GEN);
    return;
  }
  for (let spin = 0; Atomics.load(sync, GEN) === gen; spin++) {
    if (spin < SPINS) continue;
    const result = Atomics.wait(sync, GEN, gen, BARRIER_TIMEOUT_MS);
    if (result === "timed-out") throw new Error("barrier: the other worker never arrived");
  }
  if (Atomics.load(sync, ABORT) !== 0) throw new Error("barrier: the other worker failed");
}

/** Waits without blocking the event loop until `sync[at] >= value`. */
export async function waitAtLeast(
  sync: Int32Array,
  at: number,
  value: number,
  signal: AbortSignal,
): Promise<void> {
  for (let spin = 0;; spin++) {
    const seen = Atomics.load(sync, at);
    if (seen >= value) return;
    if (Atomics.load(sync, ABORT) !== 0) throw new Error("the other worker failed");
    signal.throwIfAborted();
    if (spin < 200) continue;
    const result = Atomics.waitAsync(sync, at, seen, 200);
    if (result.async) await result.value;
  }
}
