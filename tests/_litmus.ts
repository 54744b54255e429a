// The words two litmus workers (tests/workers/litmus_worker.ts) share besides
// the pool, and the barrier they meet at. The main thread only starts the
// workers and reads their replies; the iterations run between the workers.
// The shared-writer litmus (tests/workers/shared_litmus_worker.ts) runs in
// rounds that the main thread starts and checks; its messages' format is
// here, for both sides.
import {
  type BufferPoolHandle,
  type FrameCodec,
  lengthPrefix,
  type SharedWriterHandle,
  type WriteFlusherHandle,
} from "../mod.ts";

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
/** Shared-writer litmus: the last round the main thread let the workers start. */
export const ROUND = 19;
/** Shared-writer litmus: rounds finished, summed over both workers. */
export const FINISHED = 20;
/** Shared-writer litmus: messages each worker placed so far, stored at the end of a round (2 words). */
export const PLACED = 21;
/** Shared-writer litmus: batches the main thread consumed. */
export const CONSUMED = 23;
/** Owner table: the id (1 or 2) of the worker holding each buffer, 0 for none. */
export const OWNERS = 32;
/** Largest pool the owner table and the set masks cover. */
export const MAX_BUFFERS = 30;
export const SYNC_WORDS = OWNERS + MAX_BUFFERS;

/** How long a barrier waits for the other worker before the test fails. */
const BARRIER_TIMEOUT_MS = 10_000;
/** Spins before sleeping in a barrier: two workers on two cores mostly meet while spinning. */
const SPINS = 20_000;

export type LitmusKind =
  | "acquireRelease"
  | "sendReceive"
  | "reserveCommit"
  | "waitNotify"
  | "sharedWriter"
  | "sharedWriterPairs";

export interface LitmusRequest {
  kind: LitmusKind;
  /** 0 or 1: which side of the litmus this worker plays. */
  role: number;
  iterations: number;
  seed: number;
  handle: BufferPoolHandle;
  flusher?: WriteFlusherHandle;
  /** The shared-writer litmus: the writer both workers attach to. */
  writer?: SharedWriterHandle;
  /** The shared-writer litmus: the largest payload a message has. */
  maxPayload?: number;
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

// -- The shared-writer litmus's messages --
//
// Payload: [worker 1 or 2][seq u32 LE][pattern byte, never 0, ...], 6 to
// maxPayload bytes, framed with a 1-byte length prefix. The consumer zeroes
// every region it checked before it releases it, so space a writer claims
// is all zeros until the writer fills it: a region handed to the flusher
// before its messages were written (a hole) shows zeros where a worker
// number must be, or, if the writer filled it meanwhile, the writer finds
// its message zeroed by the consumer when it checks it just before commit.

/** The codec of the shared-writer litmus. */
export const SHARED_CODEC: FrameCodec = lengthPrefix(1);

/** Who flushes in a round of the shared-writer litmus: nobody, the workers, the main thread, or all. */
export function roundFlushes(round: number): { workers: boolean; main: boolean } {
  return { workers: (round & 1) !== 0, main: (round & 2) !== 0 };
}

/** The payload length of message `seq` of worker `w`. */
export function messageLength(w: number, seq: number, maxPayload: number): number {
  return 6 + (seq * 13 + w * 5) % (maxPayload - 5);
}

function patternByte(w: number, seq: number, i: number): number {
  return 1 + (seq + i * 7 + w * 31) % 255;
}

/** Writes message `seq` of worker `w` into `bytes`, front to back. */
export function fillMessage(bytes: Uint8Array, w: number, seq: number): void {
  bytes[0] = w;
  bytes[1] = seq;
  bytes[2] = seq >>> 8;
  bytes[3] = seq >>> 16;
  bytes[4] = seq >>> 24;
  for (let i = 5; i < bytes.length; i++) bytes[i] = patternByte(w, seq, i);
}

/** The worker number of a payload, its seq, and whether its pattern bytes are exact. */
export function readMessage(bytes: Uint8Array): { w: number; seq: number; exact: boolean } {
  const w = bytes[0]!;
  const seq = (bytes[1]! | bytes[2]! << 8 | bytes[3]! << 16 | bytes[4]! << 24) >>> 0;
  let exact = bytes.length >= 5;
  for (let i = 5; exact && i < bytes.length; i++) exact = bytes[i] === patternByte(w, seq, i);
  return { w, seq, exact };
}

/** Whether every byte is 0. */
export function isZero(bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.length; i++) if (bytes[i] !== 0) return false;
  return true;
}

/** Bytes as hex, the first 24, for error messages. */
export function hex(bytes: Uint8Array): string {
  const shown = [...bytes.subarray(0, 24)].map((b) => b.toString(16).padStart(2, "0")).join(" ");
  return bytes.length > 24 ? `${shown} ...` : shown;
}
