/**
 * The collecting end of the send side: a flusher takes what its writers
 * flushed and delivers it as a stream of batches, e.g. to a socket.
 *
 * @module
 */

import type { BufferPool } from "./buffer_pool.ts";
import type { FlushRegion } from "./flush_region.ts";
import type { ByteSink, PipeToOptions, WriteFlusherOptions } from "./write_flusher_options.ts";
import { isSharedArrayBuffer } from "./_shared_memory.ts";
import type { FlusherWriter } from "./_writer_link.ts";
import { closeList, listClosed, newFlushWords, storeFailure } from "./_flush_list.ts";
import { FlusherBell } from "./_flusher_bell.ts";
import { flushedBytes } from "./_flusher_bytes.ts";
import { pump, type PumpSource } from "./_flusher_pump.ts";
import { PipedBatches } from "./_flusher_readable.ts";
import { TrackedPipeReadable } from "./_tracked_pipe_readable.ts";
import { FlushListTaker } from "./_flusher_taker.ts";

/**
 * The value to post to another worker so that a {@linkcode Writer} there can
 * flush to this flusher: plain data, structured-cloneable.
 */
export interface WriteFlusherHandle {
  /** The flusher's shared words. */
  readonly control: SharedArrayBuffer;
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
   *
   * @example Reading batches, and cancelling
   * ```ts
   * import { BufferPool, ClosedError, WriteFlusher, Writer } from "@bab/bab";
   * import assert from "node:assert/strict";
   *
   * const pool = new BufferPool({ bufferSize: 64, bufferCount: 4 });
   * const flusher = new WriteFlusher(pool);
   * const writer = new Writer(pool, flusher);
   * writer.tryWriteString("one");
   * let text = "";
   * for await (const batch of flusher.readable) {
   *   for (const region of batch) {
   *     text += new TextDecoder().decode(region.bytes);
   *     region.release();
   *   }
   *   break; // leaving the loop cancels the readable, which ends the flusher
   * }
   * assert.equal(text, "one");
   * assert.throws(() => writer.tryWriteString("two"), ClosedError);
   * assert.equal(pool.stats().inUse, 0);
   * ```
   */
  readonly readable: ReadableStream<FlushRegion[]>;
  readonly #control: Int32Array;
  readonly #taker: FlushListTaker;
  readonly #bell: FlusherBell;
  /** What pipeTo's pump sees of this flusher. */
  readonly #source: PumpSource;
  /** The batches handed to a pipe of `readable`. */
  readonly #pipes = new PipedBatches();
  /** Writers made with this object, closed with it. */
  readonly #writers = new Set<FlusherWriter>();
  /** The readable's controller: pipeTo ends the stream when it ends the flusher. */
  #controller!: ReadableStreamDefaultController<FlushRegion[]>;
  #readableClosed = false;
  /** What the readable was cancelled with, for the writers' ClosedErrors. */
  #failure: unknown = undefined;

  /**
   * Makes a flusher for writers of `pool`.
   *
   * @example A flusher and a writer of one pool
   * ```ts
   * import { BufferPool, WriteFlusher, Writer } from "@bab/bab";
   * import assert from "node:assert/strict";
   *
   * const pool = new BufferPool({ bufferSize: 64, bufferCount: 4 });
   * const flusher = new WriteFlusher(pool);
   * const writer = new Writer(pool, flusher);
   * writer.tryWriteString("hi");
   * flusher.close(); // closes the writer too, which flushes
   * assert.equal(await new Response(flusher.bytes()).text(), "hi");
   * assert.equal(pool.stats().inUse, 0);
   * ```
   *
   * @param pool The pool (in a worker: this worker's object of it).
   * @param options Nothing that changes anything today (see {@linkcode WriteFlusherOptions}).
   */
  constructor(pool: BufferPool, options?: WriteFlusherOptions) {
    const highWaterMark = options?.highWaterMark ?? 0;
    if (!(highWaterMark >= 0)) {
      throw new RangeError(
        `Cannot make flusher: highWaterMark ${highWaterMark} must be a number from 0 up`,
      );
    }
    this.pool = pool;
    const control = newFlushWords(pool.shared, pool._id);
    this.#control = control;
    this.#taker = new FlushListTaker(pool, control);
    this.#bell = new FlusherBell(control, pool.shared);
    this.readable = new TrackedPipeReadable<FlushRegion[]>({
      start: (controller) => {
        this.#controller = controller;
      },
      pull: (controller) => this.#pull(controller),
      cancel: (reason) => this.#fail(reason),
    }, this.#pipes);
    this.#source = {
      readable: this.readable,
      batch: [],
      take: (batch) => this.#taker.take(batch),
      closing: () => this.#taker.ended || listClosed(control),
      end: (batch) => this.#end(batch),
      sleep: () => this.#bell.sleep(),
      closeReadable: () => this.#closeReadable(),
    };
  }

  /**
   * The value to post to a worker so that a {@linkcode Writer} there can
   * flush here.
   *
   * @example A writer in another worker
   * ```ts
   * import { BufferPool, WriteFlusher, Writer } from "@bab/bab";
   * import assert from "node:assert/strict";
   *
   * const pool = new BufferPool({ bufferSize: 64, bufferCount: 4, shared: true });
   * const flusher = new WriteFlusher(pool);
   * // What a worker receives from postMessage({ pool: pool.handle, flusher: flusher.handle }),
   * const message = structuredClone({ pool: pool.handle, flusher: flusher.handle });
   * // and does with it there:
   * const there = BufferPool.attach(message.pool);
   * const writer = new Writer(there, message.flusher);
   * writer.tryWriteString("from afar");
   * writer.close();
   * there.detach();
   *
   * flusher.close();
   * assert.equal(await new Response(flusher.bytes()).text(), "from afar");
   * ```
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
   *
   * @example Closing: what was flushed still arrives, nothing more is taken
   * ```ts
   * import { BufferPool, ClosedError, WriteFlusher, Writer } from "@bab/bab";
   * import assert from "node:assert/strict";
   *
   * const pool = new BufferPool({ bufferSize: 64, bufferCount: 4 });
   * const flusher = new WriteFlusher(pool);
   * const writer = new Writer(pool, flusher);
   * writer.tryWriteString("last words");
   * flusher.close();
   * assert.equal(writer.closed, true);
   * assert.throws(() => writer.tryWriteString("more"), ClosedError);
   * assert.equal(await new Response(flusher.bytes()).text(), "last words");
   * assert.equal(pool.stats().inUse, 0);
   * ```
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
   * @example Into a `WritableStream`, which copies what it keeps
   * ```ts
   * import { BufferPool, WriteFlusher, Writer } from "@bab/bab";
   * import assert from "node:assert/strict";
   *
   * const received: string[] = [];
   * const decoder = new TextDecoder();
   * // The view is pool memory, released once the write resolves: keep a copy.
   * const sink = new WritableStream<Uint8Array>({
   *   write(bytes) {
   *     received.push(decoder.decode(bytes));
   *   },
   * });
   * const pool = new BufferPool({ bufferSize: 64, bufferCount: 4 });
   * const flusher = new WriteFlusher(pool);
   * const piped = flusher.pipeTo(sink);
   * const writer = new Writer(pool, flusher);
   * writer.tryWriteString("a");
   * writer.tryWriteString("b");
   * flusher.close();
   * await piped;
   * assert.equal(received.join(""), "ab");
   * assert.equal(pool.stats().inUse, 0);
   * ```
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
  pipeTo(sink: ByteSink | WritableStream<Uint8Array>, options?: PipeToOptions): Promise<void> {
    return pump(this.#source, sink, options);
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
    return flushedBytes(this.readable);
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
    this.#bell.ring();
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
    reason = this.#pipes.failed(reason);
    if (this.#taker.ended) {
      this.#pipes.releaseDropped();
      return;
    }
    this.#failure = reason;
    // Stored before any buffer goes back, so that a writer in another worker
    // that is granted one sees why the flusher ended.
    storeFailure(this.#control, reason);
    this.#closeWriters();
    this.#pipes.releaseDropped();
    this.#end(null);
  }

  /** Ends the list, delivering what is left to `batch` (or releasing it), and wakes a sleeper. */
  #end(batch: FlushRegion[] | null): void {
    if (this.#taker.end(batch)) this._ring();
  }

  /** Ends the readable once: the flusher delivered everything it will. */
  #closeReadable(): void {
    if (this.#readableClosed) return;
    this.#readableClosed = true;
    this.#controller.close();
  }

  async #pull(controller: ReadableStreamDefaultController<FlushRegion[]>): Promise<void> {
    const taker = this.#taker;
    for (;;) {
      if (taker.ended) return;
      const batch: FlushRegion[] = [];
      taker.take(batch);
      if (batch.length !== 0) {
        controller.enqueue(batch);
        this.#pipes.handed(batch);
        return;
      }
      if (listClosed(this.#control)) {
        const rest: FlushRegion[] = [];
        this.#end(rest);
        if (rest.length !== 0) {
          controller.enqueue(rest);
          this.#pipes.handed(rest);
        }
        this.#closeReadable();
        return;
      }
      await this.#bell.sleep();
      // A reader released while its read waited leaves nobody to take a
      // batch: it stays on the list for the next read, which pulls again.
      if (!this.readable.locked) return;
    }
  }
}
