// The calls that wait for room in a writer (claim, reserve and write), in
// call order, and the writer's one place in its pool's queue of waiters,
// reused for every buffer they wait for. The pool grants a buffer from
// within a release or a detach, so a grant only defers: the calls are
// served in a microtask, each placed by the writer as its turn comes.

import type { BufferPool } from "./buffer_pool.ts";
import type { BufferRecord } from "./_buffer_record.ts";
import { type Waiter, WaiterQueue } from "./_waiter_queue.ts";

/** A waiting call places a reservation. */
export const RESERVE = 0;
/** A waiting call opens the writer's claim. */
export const CLAIM = 1;
/** A waiting call copies bytes in and commits them. */
export const WRITE = 2;
/** What a waiting call places. */
export type Kind = typeof RESERVE | typeof CLAIM | typeof WRITE;

/** What a call waiting for room asked for. */
export interface PlaceRequest {
  readonly kind: Kind;
  /** The message's payload length. */
  readonly length: number;
  /** Its frame's length, codec header and trailer included. */
  readonly frame: number;
  /** For WRITE: the bytes to copy in and commit. */
  readonly data: Uint8Array | null;
  /** Messages a claim asks room for, at most. */
  readonly count: number;
}

/** What the waiting calls need of their writer, which places what they asked for. */
export interface WaitingWriter<T> {
  /**
   * The frame length of a message of `length` bytes.
   *
   * @throws If it cannot be placed: too long, or the writer is closed or busy.
   */
  check(length: number): number;
  /** Whether the current buffer has `frame` bytes free, after taking a free buffer if need be. */
  room(frame: number): boolean;
  /** Places a call's message in the current buffer, which has room. */
  place(
    kind: Kind,
    length: number,
    frame: number,
    data: Uint8Array | null,
    count: number,
  ): T;
  /**
   * Finishes the current buffer and flushes, so that the writer never waits
   * on its own unflushed bytes. False if the flusher ended: the writer has
   * then closed and rejected the calls.
   */
  beforeWait(): boolean;
  /** Takes a granted buffer as the current one; false if it released it instead. */
  take(buffer: BufferRecord): boolean;
}

/** A writer's waiting calls, each settled with what was placed for it (of type `T`). */
export class WaitingCalls<T> {
  /** The calls, oldest first. */
  readonly queue: WaiterQueue<T, PlaceRequest> = new WaiterQueue<T, PlaceRequest>();
  readonly #pool: BufferPool;
  readonly #writer: WaitingWriter<T>;
  /** The writer's claim: calls queued behind it wait until it is settled. */
  readonly #claim: { readonly open: boolean };
  /** A buffer is on its way: the pool holds #waiter, or #onGranted is due. */
  #waiting = false;
  #granted: BufferRecord | null = null;
  readonly #waiter: Waiter<BufferRecord> = {
    resolve: (buffer) => {
      this.#granted = buffer;
      queueMicrotask(this.#onGranted);
    },
    reject: (error) => {
      queueMicrotask(() => {
        this.#waiting = false;
        // Empty if the writer closed meanwhile: its close rejected the calls.
        this.rejectAll(error);
      });
    },
    signal: undefined,
    onAbort: undefined,
    payload: undefined,
    prev: null,
    next: null,
  };

  constructor(pool: BufferPool, writer: WaitingWriter<T>, claim: { readonly open: boolean }) {
    this.#pool = pool;
    this.#writer = writer;
    this.#claim = claim;
  }

  /**
   * A call for `kind` of `length` bytes: placed at once when nothing waits
   * before it and there is room, else queued, waiting for a buffer unless
   * one is on its way.
   */
  call(
    kind: Kind,
    length: number,
    data: Uint8Array | null,
    signal: AbortSignal | undefined,
    count = 1,
  ): Promise<T> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    let frame: number;
    try {
      frame = this.#writer.check(length);
      if (this.queue.size === 0 && this.#writer.room(frame)) {
        return Promise.resolve(this.#writer.place(kind, length, frame, data, count));
      }
    } catch (error) {
      return Promise.reject(error);
    }
    const waiting = this.queue.wait(signal, { kind, length, frame, data, count });
    if (!this.#waiting) this.#waitForBuffer();
    return waiting;
  }

  /** Serves the calls that waited behind the claim, unless they wait for a buffer. */
  resume(): void {
    if (!this.#waiting) this.#serve();
  }

  /** Rejects every call, and gives up the wait for a buffer if the pool still holds it. */
  rejectAll(reason: unknown): void {
    // Still queued: taken back. Already granted: #onGranted releases it.
    if (this.#waiting && this.#pool._cancelWait(this.#waiter)) this.#waiting = false;
    this.queue.rejectAll(reason);
  }

  /** Waits for the next buffer; finishes even if every caller gives up. */
  #waitForBuffer(): void {
    if (!this.#writer.beforeWait()) return;
    let buffer: BufferRecord | null;
    try {
      buffer = this.#pool._waitRecord(this.#waiter);
    } catch (error) {
      this.rejectAll(error);
      return;
    }
    this.#waiting = true;
    if (buffer !== null) this.#waiter.resolve(buffer);
  }

  /** A buffer came: the wait is over (the writer may have closed meanwhile). */
  readonly #onGranted = () => {
    const buffer = this.#granted!;
    this.#granted = null;
    this.#waiting = false;
    if (this.#writer.take(buffer)) this.#serve();
  };

  #serve(): void {
    const queue = this.queue;
    while (queue.size !== 0) {
      // Calls behind a claim wait until it is settled; settling it serves them.
      if (this.#claim.open) return;
      if (!this.#writer.room(queue.first!.frame)) {
        this.#waitForBuffer();
        return;
      }
      const waiter = queue.take()!;
      const { kind, length, frame, data, count } = waiter.payload;
      waiter.resolve(this.#writer.place(kind, length, frame, data, count));
    }
  }
}
