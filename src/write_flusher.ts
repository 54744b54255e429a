/**
 * The collecting end of the send side: a flusher takes what its writers
 * flushed and delivers it as a stream of batches, e.g. to a socket.
 *
 * @module
 */

import type { BufferPool } from "./buffer_pool.ts";
import { FlushRegion } from "./flush_region.ts";
import type { BufferRecord } from "./_buffer_record.ts";
import { isSharedArrayBuffer } from "./_shared_memory.ts";
import type { FlusherWriter } from "./_writer_link.ts";
import {
  claim,
  closeList,
  endList,
  endSleep,
  flushedTo,
  listClosed,
  newFlushWords,
  prepareSleep,
  ringBell,
  setFlushedTo,
  storeFailure,
  takeList,
  takePublished,
  waitOnBell,
  writerOf,
} from "./_flush_list.ts";
import { PUBLISH_DONE, PUBLISH_END } from "./_layout.ts";
import { KEEPALIVE_MS } from "./_keepalive.ts";

/** Options for {@linkcode WriteFlusher}. */
export interface WriteFlusherOptions {
  /**
   * Must be a number from 0 up, and changes nothing: the readable takes no
   * batch ahead of its reader, so that a cancel strands none. What was not
   * read yet waits on the flusher's list in the writers' buffers, and the
   * next read takes all of it as one batch.
   *
   * @deprecated Has no effect since read-ahead was dropped; it will be removed.
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

/**
 * Collects what {@linkcode Writer}s flushed and delivers it through
 * {@linkcode WriteFlusher.readable}: each chunk is a batch of
 * {@linkcode FlushRegion}s, one contiguous range of one buffer each, in the
 * order the writers flushed. A region keeps its buffer until released, so a
 * slow reader makes writers wait on the pool instead of growing memory.
 *
 * To hand the bytes to any standard byte stream, pipe
 * {@linkcode WriteFlusher.bytes} (a copy per batch, safe anywhere); to
 * write them to a socket or a `WritableStream` from pool memory, use
 * {@linkcode WriteFlusher.pipeTo}.
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
  /**
   * Batches of flushed regions, in flush order. A batch is taken only when
   * a read asks for one. Cancelling it (also by leaving a `for await` loop
   * early) ends the flusher: what was not read is released, and writers'
   * calls reject with a {@linkcode ClosedError} that carries the reason.
   * Batches a reader has read are its own, cancel or not.
   *
   * Its chunks are arrays, not bytes: to pipe it into a byte sink use
   * {@linkcode WriteFlusher.pipeTo} (no copy) or
   * {@linkcode WriteFlusher.bytes}. Piping it (`pipeTo`, `pipeThrough`) to
   * a destination of `FlushRegion[]` works, with one rule: when the pipe
   * fails, the flusher releases every region of each batch it handed to
   * the pipe that nobody has touched (read `bytes` of, made a packet of or
   * released), since a failed destination drops its queue without a word.
   * A destination that keeps batches to use after its pipe failed must
   * touch them first. When a pipe fails with a `TypeError` before any batch
   * it was handed was touched, as a byte sink that refuses arrays does, the
   * error is rephrased as a `TypeError` that says so, with the sink's error
   * as its `cause`, both for the pipe and for the writers'
   * {@linkcode ClosedError}s.
   */
  readonly readable: ReadableStream<FlushRegion[]>;
  readonly #control: Int32Array;
  readonly #words: Int32Array;
  /**
   * Buffers whose token this flusher holds, by index: the writer is not
   * done with them. An array the pool's size, not a Map: three lookups per
   * buffer flushed.
   */
  readonly #tokens: (BufferRecord | null)[];
  /** Buffer indices of the list taken last, newest first. */
  readonly #taken: number[] = [];
  /** A buffer's header word, for the list's walk. */
  readonly #headerOf = (index: number): number => this.pool._headerOf(index);
  /** Writers made with this object, closed with it. */
  readonly #writers = new Set<FlusherWriter>();
  #wake: (() => void) | null = null;
  /** The readable's controller: pipeTo ends the stream when it ends the flusher. */
  #controller!: ReadableStreamDefaultController<FlushRegion[]>;
  #readableClosed = false;
  /** pipeTo's batch, reused: it takes the flush list without the stream. */
  readonly #batch: FlushRegion[] = [];
  #ended = false;
  /** What the readable was cancelled with, for the writers' ClosedErrors. */
  #failure: unknown = undefined;
  /**
   * While `readable` is piped: copies of the batches handed to the pipe
   * that were untouched when last looked at; null while it is not.
   */
  #piped: FlushRegion[][] | null = null;
  /** Some batch handed to the current pipe was touched: its destination takes regions. */
  #pipeTouched = false;
  /** The byte-sink error the pipe's failure was rephrased as, and its cause. */
  #rephrased: { cause: unknown; error: TypeError } | null = null;

  /**
   * Makes a flusher for writers of `pool`.
   *
   * @param pool The pool (in a worker: this worker's object of it).
   * @param options How far the readable reads ahead.
   */
  constructor(pool: BufferPool, options?: WriteFlusherOptions) {
    this.pool = pool;
    this.#control = newFlushWords(pool.shared, pool._id);
    this.#words = pool._words;
    this.#tokens = new Array<BufferRecord | null>(pool.bufferCount).fill(null);
    const highWaterMark = options?.highWaterMark ?? 0;
    if (!(highWaterMark >= 0)) {
      throw new RangeError(
        `Cannot make flusher: highWaterMark ${highWaterMark} must be a number from 0 up`,
      );
    }
    this.readable = new FlushReadable({
      start: (controller) => {
        this.#controller = controller;
      },
      pull: (controller) => this.#pull(controller),
      cancel: (reason) => this.#fail(reason),
    }, {
      started: () => {
        this.#piped = [];
        this.#pipeTouched = false;
        this.#rephrased = null;
      },
      ended: (error) => {
        const reason = error === undefined ? undefined : this.#reclaim(error.reason);
        this.#piped = null;
        return reason;
      },
    });
  }

  /**
   * The value to post to a worker so that a {@linkcode Writer} there can
   * flush here.
   *
   * @throws {TypeError} If the pool is not shared.
   */
  get handle(): WriteFlusherHandle {
    const block = this.#control.buffer;
    if (!isSharedArrayBuffer(block)) {
      throw new TypeError(
        "Cannot share flusher: its pool was created without shared: true, so no other worker can see it",
      );
    }
    return { control: block };
  }

  /** Whether {@linkcode WriteFlusher.close} was called, or the readable was cancelled. */
  get closed(): boolean {
    return listClosed(this.#control);
  }

  /**
   * Stops taking new messages: writers made with this object are closed
   * (flushing what they committed), writers elsewhere fail their next
   * reserve or write with a {@linkcode ClosedError}, and the readable ends
   * once it has delivered everything flushed before. Calling it again does
   * nothing.
   */
  close(): void {
    if (!closeList(this.#control)) return;
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
   * @throws Whatever a write throws; the flusher is cancelled with it then,
   * every region is released (one whose write is still in flight once that
   * write ends), and the writers' calls reject with a
   * {@linkcode ClosedError} whose `cause` it is. Likewise the signal's
   * reason when it aborts, at once, even while a write hangs.
   */
  async pipeTo(
    sink: ByteSink | WritableStream<Uint8Array>,
    options?: PipeToOptions,
  ): Promise<void> {
    // The readable stays locked while the pipe runs, but the pipe takes the
    // flush list itself: no stream read, pull or promise per batch.
    const reader = this.readable.getReader();
    const stream = sink instanceof WritableStream ? sink.getWriter() : null;
    const bytes = stream === null ? sink as ByteSink : null;
    const signal = options?.signal;
    // Rejects when the signal aborts, so that neither a wait nor a write
    // that never finishes holds the abort up.
    let aborted: Promise<never> | null = null;
    let onAbort: (() => void) | undefined;
    if (signal !== undefined) {
      aborted = new Promise<never>((_, reject) => onAbort = () => reject(signal.reason));
      aborted.catch(() => {});
      signal.addEventListener("abort", onAbort!, { once: true });
    }
    const batch = this.#batch;
    let i = 0;
    /** The write of `batch[i]` while it is in flight. */
    let writing: Promise<unknown> | null = null;
    try {
      signal?.throwIfAborted();
      for (let last = false; !last;) {
        this.#take(batch);
        if (batch.length === 0) {
          if (this.#ended || listClosed(this.#control)) {
            this.#end(batch);
            last = true;
          } else {
            const sleep = this.#sleep();
            await (aborted === null ? sleep : Promise.race([sleep, aborted]));
            continue;
          }
        }
        for (i = 0; i < batch.length; i++) {
          const region = batch[i]!;
          const view = region.bytes;
          if (stream !== null) {
            writing = stream.write(view);
            await (aborted === null ? writing : Promise.race([writing, aborted]));
          } else {
            let written = 0;
            while (written < view.length) {
              writing = bytes!.write(written === 0 ? view : view.subarray(written));
              written +=
                await (aborted === null ? writing : Promise.race([writing, aborted])) as number;
            }
          }
          writing = null;
          region.release();
        }
        batch.length = 0;
      }
      this.#closeReadable();
      signal?.throwIfAborted();
      if (stream !== null && options?.preventClose !== true) await stream.close();
    } catch (error) {
      if (writing !== null) {
        // The sink may still be reading these bytes: release them once it is done.
        const region = batch[i++]!;
        writing.then(() => region.release(), () => region.release());
      }
      for (; i < batch.length; i++) batch[i]!.release();
      batch.length = 0;
      await reader.cancel(error);
      // Not awaited: an abort waits for a write in flight, which may never end.
      stream?.abort(error).catch(() => {});
      throw error;
    } finally {
      if (onAbort !== undefined) signal!.removeEventListener("abort", onAbort);
      reader.releaseLock();
      stream?.releaseLock();
    }
  }

  /**
   * The flushed bytes as a plain byte stream, to pipe anywhere a
   * `ReadableStream<Uint8Array>` goes (`pipeTo(file.writable)`,
   * `pipeThrough(new TextDecoderStream())`). Each read takes everything
   * flushed since the last one, copies it into one fresh `Uint8Array` and
   * releases its regions at once: a consumer of a `ReadableStream` reads
   * ahead of what its sink has finished with and cannot say when that is,
   * so only a copy is safe to hand out. Nothing is taken before a read asks
   * for it, so cancelling the stream (or a failed pipe) strands nothing:
   * it ends the flusher as cancelling {@linkcode WriteFlusher.readable}
   * does. {@linkcode WriteFlusher.pipeTo} writes straight from pool memory
   * instead, with no copy.
   *
   * It holds `readable` locked until the flusher ends.
   *
   * @example Writers' text through a `TextDecoderStream`
   * ```ts
   * import { BufferPool, WriteFlusher, Writer } from "@bab/bab";
   * import assert from "node:assert/strict";
   *
   * const pool = new BufferPool({ bufferSize: 64, bufferCount: 2 });
   * const flusher = new WriteFlusher(pool);
   * const text = flusher.bytes().pipeThrough(new TextDecoderStream());
   * const writer = new Writer(pool, flusher);
   * writer.tryWriteString("hello, ");
   * writer.tryWriteString("world");
   * flusher.close(); // closes the writer, which flushes
   * assert.equal((await Array.fromAsync(text)).join(""), "hello, world");
   * assert.equal(pool.stats().inUse, 0);
   * ```
   *
   * @returns A stream of copies of the flushed bytes, in flush order.
   * @throws {TypeError} If `readable` is locked: read, piped, or already
   * turned into bytes.
   */
  bytes(): ReadableStream<Uint8Array<ArrayBuffer>> {
    if (this.readable.locked) {
      throw new TypeError(
        "Cannot read the flusher as bytes: its readable is locked (read, piped, or already turned into bytes)",
      );
    }
    const reader = this.readable.getReader();
    let cancelled = false;
    return new ReadableStream<Uint8Array<ArrayBuffer>>({
      async pull(controller) {
        const { done, value } = await reader.read();
        if (cancelled) return;
        if (done) {
          reader.releaseLock();
          controller.close();
          return;
        }
        controller.enqueue(copyOut(value));
      },
      cancel(reason) {
        cancelled = true;
        return reader.cancel(reason);
      },
    }, { highWaterMark: 0 });
  }

  /**
   * Closes the flusher, as {@linkcode WriteFlusher.close} does, when a
   * `using` scope ends.
   *
   * @example Closing with `using`
   * ```ts
   * import { BufferPool, WriteFlusher } from "@bab/bab";
   * import assert from "node:assert/strict";
   *
   * const pool = new BufferPool({ bufferSize: 64, bufferCount: 2 });
   * let outer: WriteFlusher;
   * {
   *   using flusher = new WriteFlusher(pool);
   *   outer = flusher;
   * }
   * assert.equal(outer.closed, true);
   * ```
   */
  [Symbol.dispose](): void {
    this.close();
  }

  /** @ignore What the readable was cancelled with, for writers in this worker. */
  get _failure(): unknown {
    return this.#failure;
  }

  /** @ignore The shared words, for writers in this worker. */
  get _control(): Int32Array {
    return this.#control;
  }

  /** @ignore A writer made with this object. */
  _register(writer: FlusherWriter): void {
    this.#writers.add(writer);
  }

  /** @ignore That writer closed. */
  _unregister(writer: FlusherWriter): void {
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

  /**
   * The consumer stopped reading: writers learn why (here with the error
   * itself, elsewhere as text) and everything not yet read is released.
   */
  #fail(reason: unknown): void {
    // Called as the readable's cancel: the stream is closed already.
    this.#readableClosed = true;
    if (this.#piped !== null) reason = this.#reclaim(reason);
    if (this.#ended) return;
    this.#failure = reason;
    storeFailure(this.#control, reason);
    this.#closeWriters();
    this.#end(null);
  }

  /** Ends the readable once: the flusher delivered everything it will. */
  #closeReadable(): void {
    if (this.#readableClosed) return;
    this.#readableClosed = true;
    this.#controller.close();
  }

  async #pull(controller: ReadableStreamDefaultController<FlushRegion[]>): Promise<void> {
    for (;;) {
      if (this.#ended) return;
      const batch: FlushRegion[] = [];
      this.#take(batch);
      if (batch.length !== 0) {
        controller.enqueue(batch);
        if (this.#piped !== null) this.#handToPipe(batch);
        return;
      }
      if (listClosed(this.#control)) {
        const rest: FlushRegion[] = [];
        this.#end(rest);
        if (rest.length !== 0) {
          controller.enqueue(rest);
          if (this.#piped !== null) this.#handToPipe(rest);
        }
        this.#closeReadable();
        return;
      }
      await this.#sleep();
      // A reader released while its read waited leaves nobody to take a
      // batch: it stays on the list for the next read, which pulls again.
      if (!this.readable.locked) return;
    }
  }

  /**
   * Notes a batch handed to a pipe of `readable`, and forgets those handed
   * before that were touched since: their destination took them.
   */
  #handToPipe(batch: FlushRegion[]): void {
    const piped = this.#piped!;
    let kept = 0;
    for (let i = 0; i < piped.length; i++) {
      const handed = piped[i]!;
      if (anyTouched(handed)) this.#pipeTouched = true;
      else piped[kept++] = handed;
    }
    piped.length = kept;
    // A copy: the destination may empty or reuse the array it was given.
    piped.push(batch.slice());
  }

  /**
   * A pipe of `readable` failed with `reason`: releases the batches it was
   * handed that nobody touched, which its destination dropped.
   *
   * @returns The reason, or, when nothing handed to the pipe was ever
   * touched and the destination failed with a TypeError, a TypeError that
   * says it was a byte sink.
   */
  #reclaim(reason: unknown): unknown {
    // The pipe rejects with what its cancel was rephrased as.
    const rephrased = this.#rephrased;
    if (rephrased !== null && rephrased.cause === reason) return rephrased.error;
    const piped = this.#piped!;
    if (piped.length === 0) return reason;
    let touched = this.#pipeTouched;
    for (let i = 0; i < piped.length; i++) {
      const handed = piped[i]!;
      if (anyTouched(handed)) {
        touched = true;
        continue;
      }
      for (let j = 0; j < handed.length; j++) handed[j]!.release();
    }
    piped.length = 0;
    this.#pipeTouched = touched;
    if (touched || !(reason instanceof TypeError)) return reason;
    const error = new TypeError(
      "Cannot pipe flusher.readable to a byte sink: it yields FlushRegion[] batches, not bytes; use flusher.pipeTo(sink) to write them without a copy, or pipe flusher.bytes()",
      { cause: reason },
    );
    this.#rephrased = { cause: reason, error };
    return error;
  }

  /**
   * Sleeps until a writer pushes onto an empty list, or close. In one
   * worker the promise is the writer's wake itself: no async function
   * around it, so a wake costs one hop, not three.
   */
  #sleep(): Promise<void> {
    if (!this.pool.shared) return new Promise<void>((resolve) => this.#wake = resolve);
    return this.#sleepShared();
  }

  /** #sleep for a shared pool: the bell word, which writers in any worker ring. */
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

  /** Takes the whole list and turns each buffer's news into a region, oldest first. */
  #take(batch: FlushRegion[] | null): void {
    const taken = this.#taken;
    takeList(this.#control, this.#words, this.#headerOf, taken);
    for (let i = 0; i < taken.length; i++) this.#deliver(taken[i]!, batch);
    taken.length = 0;
  }

  /** Delivers one buffer's news to `batch`, or releases it when `batch` is null. */
  #deliver(index: number, batch: FlushRegion[] | null): void {
    const words = this.#words;
    const header = this.pool._headerOf(index);
    let buffer = this.#tokens[index] ?? null;
    if (buffer === null) {
      buffer = this.pool._claim(index);
      claim(words, header);
      this.#tokens[index] = buffer;
    }
    const value = takePublished(words, header);
    const end = value & PUBLISH_END;
    const done = (value & PUBLISH_DONE) !== 0;
    const from = flushedTo(words, header);
    if (end > from && batch !== null) {
      setFlushedTo(words, header, end);
      // The last region of a buffer takes over the token's reference.
      if (done) this.#tokens[index] = null;
      else buffer.retain();
      batch.push(new FlushRegion(buffer, from, end - from, writerOf(words, header)));
    } else if (done) {
      this.#tokens[index] = null;
      buffer.release();
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
    closeList(control);
    while (!endList(control)) this.#take(batch);
    const tokens = this.#tokens;
    for (let i = 0; i < tokens.length; i++) {
      const buffer = tokens[i] ?? null;
      if (buffer === null) continue;
      tokens[i] = null;
      buffer.release();
    }
    this._ring();
  }
}

/** Whether a region of `batch` was used. */
function anyTouched(batch: readonly FlushRegion[]): boolean {
  for (let i = 0; i < batch.length; i++) if (batch[i]!._touched) return true;
  return false;
}

/** A batch's bytes, copied into one fresh array; its regions released. */
function copyOut(batch: readonly FlushRegion[]): Uint8Array<ArrayBuffer> {
  let length = 0;
  for (let i = 0; i < batch.length; i++) length += batch[i]!.length;
  const bytes = new Uint8Array(length);
  let at = 0;
  for (let i = 0; i < batch.length; i++) {
    const region = batch[i]!;
    bytes.set(region.bytes, at);
    at += region.length;
    region.release();
  }
  return bytes;
}

/** What {@linkcode FlushReadable} tells its flusher about its pipes. */
interface PipeWatcher {
  /** A pipe took the stream. */
  started(): void;
  /**
   * The pipe ended, with `error` when it failed.
   *
   * @returns What the pipe rejects with: the reason, or a clearer one.
   */
  ended(error: { reason: unknown } | undefined): unknown;
}

/**
 * The flusher's readable. It follows its own pipes: a pipe's destination
 * drops what it queued when it fails, and only the pipe can tell that a
 * batch went there rather than to a reader, so the flusher can reclaim it.
 */
class FlushReadable extends ReadableStream<FlushRegion[]> {
  readonly #watcher: PipeWatcher;

  constructor(source: UnderlyingDefaultSource<FlushRegion[]>, watcher: PipeWatcher) {
    // A high-water mark of 0: a batch is taken only for a read that waits
    // for it, never into the stream's queue, which a cancel would drop
    // without a word, stranding its buffers.
    super(source, { highWaterMark: 0 });
    this.#watcher = watcher;
  }

  override pipeTo(
    destination: WritableStream<FlushRegion[]>,
    options?: StreamPipeOptions,
  ): Promise<void> {
    const wasLocked = this.locked;
    const piping = super.pipeTo(destination, options);
    // Refused (locked, or a bad argument): it took no batch.
    if (wasLocked || !this.locked) return piping;
    const watcher = this.#watcher;
    watcher.started();
    return piping.then(
      () => {
        watcher.ended(undefined);
      },
      (reason: unknown) => {
        throw watcher.ended({ reason });
      },
    );
  }

  override pipeThrough<T>(
    transform: ReadableWritablePair<T, FlushRegion[]>,
    options?: StreamPipeOptions,
  ): ReadableStream<T> {
    if (!(transform?.readable instanceof ReadableStream)) {
      throw new TypeError("Cannot pipe through: transform.readable is not a ReadableStream");
    }
    if (!(transform.writable instanceof WritableStream)) {
      throw new TypeError("Cannot pipe through: transform.writable is not a WritableStream");
    }
    if (this.locked) throw new TypeError("Cannot pipe through: the flusher's readable is locked");
    if (transform.writable.locked) {
      throw new TypeError("Cannot pipe through: transform.writable is locked");
    }
    // As the standard pipeThrough does: the pipe's failure shows on transform.readable.
    this.pipeTo(transform.writable, options).catch(() => {});
    return transform.readable;
  }
}
