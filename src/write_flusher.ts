/**
 * The collecting end of the send side: a flusher takes what its writers
 * flushed and delivers it as a stream of batches, e.g. to a socket.
 *
 * @module
 */

import type { BufferPool } from "./buffer_pool.ts";
import { FlushRegion } from "./flush_region.ts";
import type { BufferRecord } from "./_buffer_record.ts";
import type { Writer } from "./writer.ts";
import {
  ENDED,
  F_BELL,
  F_CLOSED,
  F_HEAD,
  F_MAGIC,
  F_MAGIC_VALUE,
  F_NEXT_WRITER,
  F_POOL_ID,
  F_WAITING,
  FLUSH_WORDS,
  ringBell,
} from "./_flush_list.ts";
import {
  H_FLUSHED,
  H_NEXT,
  H_PUBLISH,
  H_WRITER,
  PUBLISH_DONE,
  PUBLISH_END,
  PUBLISH_LISTED,
} from "./_layout.ts";

/** Options for {@linkcode WriteFlusher}. */
export interface WriteFlusherOptions {
  /**
   * Batches the readable takes ahead of its reader: 1 by default. Everything
   * else waits in the writers' buffers, so memory stays within the pool.
   */
  highWaterMark?: number;
}

/**
 * The value to post to another worker so that a {@linkcode Writer} there can
 * flush to this flusher: plain data, structured-cloneable.
 */
export interface WriteFlusherHandle {
  /** The flusher's shared words. */
  readonly control: SharedArrayBuffer;
}

/** Where {@linkcode WriteFlusher.pipeTo} writes: a `Deno.Conn`, for one. */
export interface ByteSink {
  /** Writes some of `bytes`, resolving to how many were written. */
  write(bytes: Uint8Array): Promise<number>;
}

/** Options for {@linkcode WriteFlusher.pipeTo}. */
export interface PipeToOptions {
  /** Aborting stops the pipe: the flusher is cancelled, everything released. */
  signal?: AbortSignal;
  /** Leave the destination open when the flusher ends (a `WritableStream` is closed otherwise). */
  preventClose?: boolean;
}

/** Longest timer slice; it only keeps the event loop alive while the flusher sleeps. */
const KEEPALIVE_MS = 2 ** 31 - 1;

/**
 * Collects what {@linkcode Writer}s flushed and delivers it through
 * {@linkcode WriteFlusher.readable}: each chunk is a batch of
 * {@linkcode FlushRegion}s, one contiguous range of one buffer each, in the
 * order the writers flushed. A region keeps its buffer until released, so a
 * slow reader makes writers wait on the pool instead of growing memory.
 *
 * Taking everything the writers flushed is one atomic exchange, however
 * many buffers that is, and writers in other workers flush to it through
 * its {@linkcode WriteFlusher.handle}.
 *
 * @example Writers to a socket
 * ```ts
 * import { BufferPool, WriteFlusher, Writer } from "@bab/bab";
 * import assert from "node:assert/strict";
 *
 * const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const received = (async () => {
 *   const conn = await listener.accept();
 *   const text = await new Response(conn.readable).text();
 *   listener.close();
 *   return text;
 * })();
 *
 * const pool = new BufferPool({ bufferSize: 1024, bufferCount: 16 });
 * const flusher = new WriteFlusher(pool);
 * const conn = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
 * const piped = flusher.pipeTo(conn);
 *
 * const writer = new Writer(pool, flusher);
 * for (let i = 0; i < 3; i++) writer.tryWriteString(`line ${i}\n`);
 * writer.close();
 * flusher.close();
 * await piped;
 * conn.close();
 *
 * assert.equal(await received, "line 0\nline 1\nline 2\n");
 * assert.equal(pool.stats().inUse, 0);
 * ```
 */
export class WriteFlusher {
  /** The pool whose buffers the writers fill. */
  readonly pool: BufferPool;
  /** Batches of flushed regions, in flush order. Cancelling it ends the flusher. */
  readonly readable: ReadableStream<FlushRegion[]>;
  readonly #control: Int32Array;
  readonly #words: Int32Array;
  /** Buffers whose token this flusher holds, by index: the writer is not done with them. */
  readonly #tokens = new Map<number, BufferRecord>();
  /** Buffer indices of the list taken last, newest first. */
  readonly #taken: number[] = [];
  /** Writers made with this object, closed with it. */
  readonly #writers = new Set<Writer>();
  #wake: (() => void) | null = null;
  #ended = false;

  /**
   * Makes a flusher for writers of `pool`.
   *
   * @param pool The pool (in a worker: this worker's object of it).
   * @param options How far the readable reads ahead.
   */
  constructor(pool: BufferPool, options?: WriteFlusherOptions) {
    this.pool = pool;
    const bytes = FLUSH_WORDS * 4;
    const control = new Int32Array(
      pool.shared ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes),
    );
    control[F_MAGIC] = F_MAGIC_VALUE;
    control[F_POOL_ID] = pool._id;
    control[F_NEXT_WRITER] = 0;
    this.#control = control;
    this.#words = pool._words;
    this.readable = new ReadableStream<FlushRegion[]>({
      pull: (controller) => this.#pull(controller),
      cancel: () => {
        this.#closeWriters();
        this.#end(null);
      },
    }, { highWaterMark: options?.highWaterMark ?? 1 });
  }

  /**
   * The value to post to a worker so that a {@linkcode Writer} there can
   * flush here.
   *
   * @throws {TypeError} If the pool is not shared.
   */
  get handle(): WriteFlusherHandle {
    const block = this.#control.buffer;
    if (!(block instanceof SharedArrayBuffer)) {
      throw new TypeError(
        "Cannot share flusher: its pool was created without shared: true, so no other worker can see it",
      );
    }
    return { control: block };
  }

  /** Whether {@linkcode WriteFlusher.close} was called. */
  get closed(): boolean {
    return Atomics.load(this.#control, F_CLOSED) !== 0;
  }

  /**
   * Stops taking new messages: writers made with this object are closed
   * (flushing what they committed), writers elsewhere fail their next
   * reserve or write with a {@linkcode ClosedError}, and the readable ends
   * once it has delivered everything flushed before. Calling it again does
   * nothing.
   */
  close(): void {
    if (Atomics.exchange(this.#control, F_CLOSED, 1) !== 0) return;
    this.#closeWriters();
    this._ring();
  }

  /**
   * Writes every region to `sink` as it arrives and releases it once
   * written, until the flusher ends. A `Deno.Conn` is written with
   * `conn.write` straight from pool memory; a `WritableStream` gets each
   * region's bytes, released when its write resolves.
   *
   * @param sink Where the bytes go.
   * @param options An optional `signal`, and whether to leave a stream open.
   * @returns A promise that resolves once everything was written.
   * @throws Whatever a write throws; the flusher is cancelled then and every region released.
   */
  async pipeTo(
    sink: ByteSink | WritableStream<Uint8Array>,
    options?: PipeToOptions,
  ): Promise<void> {
    const reader = this.readable.getReader();
    const stream = sink instanceof WritableStream ? sink.getWriter() : null;
    const signal = options?.signal;
    const onAbort = () => reader.cancel(signal!.reason);
    signal?.addEventListener("abort", onAbort, { once: true });
    let batch: FlushRegion[] | undefined;
    let i = 0;
    try {
      signal?.throwIfAborted();
      for (;;) {
        const result = await reader.read();
        if (result.done) break;
        batch = result.value;
        for (i = 0; i < batch.length; i++) {
          const region = batch[i]!;
          if (stream !== null) await stream.write(region.bytes);
          else await writeAll(sink as ByteSink, region.bytes);
          region.release();
        }
        batch = undefined;
      }
      signal?.throwIfAborted();
      if (stream !== null && options?.preventClose !== true) await stream.close();
    } catch (error) {
      if (batch !== undefined) { for (; i < batch.length; i++) batch[i]!.release(); }
      await reader.cancel(error);
      if (stream !== null) await stream.abort(error).catch(() => {});
      throw error;
    } finally {
      signal?.removeEventListener("abort", onAbort);
      reader.releaseLock();
      stream?.releaseLock();
    }
  }

  /** @ignore The shared words, for writers in this worker. */
  get _control(): Int32Array {
    return this.#control;
  }

  /** @ignore A writer made with this object. */
  _register(writer: Writer): void {
    this.#writers.add(writer);
  }

  /** @ignore That writer closed. */
  _unregister(writer: Writer): void {
    this.#writers.delete(writer);
  }

  /** @ignore Wakes the readable if it sleeps: something was pushed, or close was called. */
  _ring(): void {
    const wake = this.#wake;
    if (wake !== null) {
      this.#wake = null;
      wake();
      return;
    }
    if (this.pool.shared) ringBell(this.#control);
  }

  #closeWriters(): void {
    for (const writer of [...this.#writers]) writer.close();
  }

  async #pull(controller: ReadableStreamDefaultController<FlushRegion[]>): Promise<void> {
    for (;;) {
      if (this.#ended) return;
      const batch: FlushRegion[] = [];
      this.#take(batch);
      if (batch.length !== 0) {
        controller.enqueue(batch);
        return;
      }
      if (Atomics.load(this.#control, F_CLOSED) !== 0) {
        const rest: FlushRegion[] = [];
        this.#end(rest);
        if (rest.length !== 0) controller.enqueue(rest);
        controller.close();
        return;
      }
      await this.#sleep();
    }
  }

  /** Sleeps until a writer pushes onto an empty list, or close. */
  async #sleep(): Promise<void> {
    const control = this.#control;
    if (!this.pool.shared) {
      await new Promise<void>((resolve) => this.#wake = resolve);
      return;
    }
    Atomics.store(control, F_WAITING, 1);
    const bell = Atomics.load(control, F_BELL);
    if (Atomics.load(control, F_HEAD) === 0 && Atomics.load(control, F_CLOSED) === 0) {
      const result = Atomics.waitAsync(control, F_BELL, bell);
      if (result.async) {
        // A pending waitAsync alone does not keep the event loop alive.
        const keepalive = setTimeout(() => {}, KEEPALIVE_MS);
        await result.value;
        clearTimeout(keepalive);
      }
    }
    Atomics.store(control, F_WAITING, 0);
  }

  /** Takes the whole list and turns each buffer's news into a region, oldest first. */
  #take(batch: FlushRegion[] | null): void {
    const words = this.#words;
    const taken = this.#taken;
    let head = Atomics.exchange(this.#control, F_HEAD, 0);
    // Read every link before clearing a listed bit: a writer may relink that buffer after.
    while (head > 0) {
      taken.push(head - 1);
      head = words[this.pool._headerOf(head - 1) + H_NEXT]!;
    }
    for (let i = taken.length - 1; i >= 0; i--) this.#deliver(taken[i]!, batch);
    taken.length = 0;
  }

  /** Delivers one buffer's news to `batch`, or releases it when `batch` is null. */
  #deliver(index: number, batch: FlushRegion[] | null): void {
    const words = this.#words;
    const header = this.pool._headerOf(index);
    let buffer = this.#tokens.get(index);
    if (buffer === undefined) {
      buffer = this.pool._claim(index);
      words[header + H_FLUSHED] = 0;
      this.#tokens.set(index, buffer);
    }
    const value = Atomics.and(words, header + H_PUBLISH, ~PUBLISH_LISTED);
    const end = value & PUBLISH_END;
    const done = (value & PUBLISH_DONE) !== 0;
    const from = words[header + H_FLUSHED]!;
    if (end > from && batch !== null) {
      words[header + H_FLUSHED] = end;
      // The last region of a buffer takes over the token's reference.
      if (done) this.#tokens.delete(index);
      else buffer._refs++;
      batch.push(new FlushRegion(buffer, from, end - from, words[header + H_WRITER]!));
    } else if (done) {
      this.#tokens.delete(index);
      if (--buffer._refs === 0) this.pool._recycle(buffer);
    }
  }

  /**
   * Ends the list so writers can push no more, delivering (or, with a null
   * batch, releasing) what is still on it, and drops every token.
   */
  #end(batch: FlushRegion[] | null): void {
    if (this.#ended) return;
    this.#ended = true;
    const control = this.#control;
    Atomics.store(control, F_CLOSED, 1);
    while (Atomics.compareExchange(control, F_HEAD, 0, ENDED) !== 0) this.#take(batch);
    for (const buffer of this.#tokens.values()) {
      if (--buffer._refs === 0) this.pool._recycle(buffer);
    }
    this.#tokens.clear();
    this._ring();
  }
}

async function writeAll(sink: ByteSink, bytes: Uint8Array): Promise<void> {
  let written = await sink.write(bytes);
  while (written < bytes.length) written += await sink.write(bytes.subarray(written));
}
