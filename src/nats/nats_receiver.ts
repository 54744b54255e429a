/**
 * {@linkcode NatsReceiver}: the bytes a NATS server sends, cut into ops in
 * pool memory and handed to {@linkcode NatsServerHandlers}, with no object
 * made per message.
 *
 * @module
 */

import type { BufferPool } from "../buffer_pool.ts";
import { ClosedError, TruncatedError } from "../errors.ts";
import { FrameCutter, type FrameVisitor } from "../frame_cutter.ts";
import type { ByteSource } from "../read_frames.ts";
import { NatsProtocolError, NatsServerError } from "./nats_errors.ts";
import { NatsMessage } from "./nats_message.ts";
import type { NatsReceiverOptions } from "./nats_receiver_options.ts";
import type { NatsServerHandlers } from "./nats_server_handlers.ts";
import { parseServerInfo } from "./nats_server_info.ts";
import {
  NatsOpsCodec,
  OP_ERR,
  OP_INFO,
  OP_MSG,
  OP_OK,
  OP_PING,
  OP_PONG,
} from "./_nats_ops_codec.ts";
import { decodeText } from "./_nats_text.ts";

/** nats-server's own default `max_control_line`. */
const DEFAULT_MAX_CONTROL_LINE = 4096;

/**
 * Reads what a NATS server sends: stages the bytes in buffers of a
 * {@linkcode BufferPool} (a {@linkcode FrameCutter} underneath), cuts them
 * into ops (`MSG`, `HMSG`, `INFO`, `PING`, `PONG`, `+OK`, `-ERR`) and calls
 * the matching handler for each, in order.
 *
 * A message is handed over in place: {@linkcode NatsMessage} is one object
 * reused for every message, its subject, reply, headers and payload are
 * offsets into the staging memory, and parsing the control line makes no
 * string, view or object. So the `MSG` path allocates nothing; a handler that
 * keeps a payload takes a packet of it ({@linkcode NatsMessage.retain}, no
 * copy), which pins its buffer until released.
 *
 * Each op must fit one staging buffer, so the pool's `bufferSize` must hold
 * the longest control line and the largest payload with their `\r\n`s:
 * `maxControlLine + maxPayload + 4` bytes. One buffer is enough when handlers
 * retain nothing; each buffer pinned by retained packets needs another.
 *
 * Input the receiver cannot read, past a limit or not NATS at all, is a
 * {@linkcode NatsProtocolError}: the ops before it were dispatched, the
 * receiver closes, and the connection should be closed too, since the stream
 * cannot be resynchronised. So does an error thrown by a handler, which
 * propagates out of the `push` or `read` that dispatched it. Every way out
 * releases the staging buffer.
 *
 * @example Messages and chores from a server
 * ```ts
 * import { BufferPool } from "@bab/bab";
 * import { NatsReceiver } from "@bab/bab/nats";
 * import assert from "node:assert/strict";
 *
 * const pool = new BufferPool({ bufferSize: 8192, bufferCount: 2 });
 * const events: string[] = [];
 * const receiver = new NatsReceiver(pool, {
 *   message: (m) => events.push(`${m.subject} #${m.sid}: ${m.text()}`),
 *   info: (info) => events.push(`INFO ${info.max_payload}`),
 *   ping: () => events.push("PING"),
 *   pong: () => events.push("PONG"),
 *   ok: () => events.push("+OK"),
 *   error: (error) => events.push(`-ERR ${error.serverMessage} fatal=${error.fatal}`),
 * });
 * const input = new TextEncoder().encode(
 *   'INFO {"server_id":"N1","version":"2.9.10","max_payload":1048576} \r\n' +
 *     "MSG greet 1 5\r\nhello\r\nPING\r\n-ERR 'Invalid Subject'\r\n",
 * );
 * receiver.push(input.subarray(0, 70)); // ops may be split anywhere
 * receiver.push(input.subarray(70));
 * receiver.end(); // the input stopped between two ops
 * assert.deepEqual(events, [
 *   "INFO 1048576",
 *   "greet #1: hello",
 *   "PING",
 *   "-ERR Invalid Subject fatal=false",
 * ]);
 * assert.equal(pool.stats().inUse, 0);
 * ```
 */
export class NatsReceiver {
  /** The pool the staging buffers come from. */
  readonly pool: BufferPool;
  /** The most bytes a message may carry, headers included. */
  readonly maxPayload: number;
  /** The longest control line accepted, in bytes, not counting its `\r\n`. */
  readonly maxControlLine: number;
  readonly #handlers: NatsServerHandlers;
  readonly #codec: NatsOpsCodec;
  readonly #cutter: FrameCutter;
  readonly #visit: FrameVisitor;
  /** A `read()` is in progress: it owns the staging memory it reads into. */
  #reading = false;

  /**
   * Makes a receiver. It takes its first staging buffer when the first bytes
   * arrive.
   *
   * @param pool Where staging buffers come from.
   * @param handlers Called for each op.
   * @param options `maxPayload` and `maxControlLine`; see
   * {@linkcode NatsReceiverOptions}.
   * @throws {RangeError} If `maxControlLine` is not a positive integer,
   * `maxPayload` not a non-negative integer, or the pool's buffers cannot
   * hold a control line and payload that long.
   */
  constructor(pool: BufferPool, handlers: NatsServerHandlers, options: NatsReceiverOptions = {}) {
    const maxControlLine = options.maxControlLine ?? DEFAULT_MAX_CONTROL_LINE;
    if (!Number.isSafeInteger(maxControlLine) || maxControlLine < 1) {
      throw new RangeError(
        `Cannot create NatsReceiver: maxControlLine must be a positive integer, received ${maxControlLine}`,
      );
    }
    // Room for a control line and a payload, each with its "\r\n".
    const room = pool.bufferSize - maxControlLine - 4;
    const maxPayload = options.maxPayload ?? Math.max(room, 0);
    if (!Number.isSafeInteger(maxPayload) || maxPayload < 0) {
      throw new RangeError(
        `Cannot create NatsReceiver: maxPayload must be a non-negative integer, received ${maxPayload}`,
      );
    }
    if (maxPayload > room) {
      throw new RangeError(
        `Cannot create NatsReceiver: a ${maxPayload}-byte maxPayload needs ${
          maxPayload + maxControlLine + 4
        }-byte buffers (with a ${maxControlLine}-byte control line and two "\\r\\n"), but the pool's buffers are ${pool.bufferSize} bytes; ${
          room < 0 ? "lower maxControlLine or use" : `lower maxPayload to ${room} or less, or use`
        } larger buffers`,
      );
    }
    this.pool = pool;
    this.maxPayload = maxPayload;
    this.maxControlLine = maxControlLine;
    this.#handlers = handlers;
    const message = new NatsMessage(() => this.#cutter.retain());
    const codec = new NatsOpsCodec(message, maxControlLine, maxPayload);
    this.#codec = codec;
    this.#cutter = new FrameCutter(pool, { codec, maxFrameLength: codec.maxPayload });
    this.#visit = (bytes) => this.#dispatch(bytes, message);
  }

  /** Whether the receiver was closed: by `close()`, `end()`, the end of `read()`, or an error. */
  get closed(): boolean {
    return this.#cutter.closed;
  }

  /**
   * Copies `chunk` into staging memory and dispatches every op it completes.
   * The rest of an unfinished op stays staged for the next chunk.
   *
   * It needs a free buffer whenever an op cannot end in the staging buffer
   * and packets retained from that buffer pin it: when the pool has none,
   * the chunk cannot be taken whole, and `push` closes the receiver and
   * throws. {@linkcode NatsReceiver.read} waits for a release instead.
   *
   * @param chunk Bytes from the server; not kept, so the caller may reuse it.
   * @throws {NatsProtocolError} If the bytes are not NATS or break a limit.
   * @throws {RangeError} If the pool had no buffer to stage the chunk in.
   * @throws {ClosedError} If the receiver was closed.
   * @throws {TypeError} If called by a handler, or while `read()` reads.
   * @throws Whatever a handler throws.
   * On every error but the last two the receiver is closed.
   */
  push(chunk: Uint8Array): void {
    if (this.#reading) {
      throw new TypeError("Cannot push into the NATS receiver while read() is reading into it");
    }
    const cutter = this.#cutter;
    if (cutter.closed) throw closedError("push into");
    const taken = cutter.push(chunk, this.#visit);
    if (taken < chunk.length && !cutter.closed) {
      cutter.close();
      throw new RangeError(
        `Cannot push into the NATS receiver: the pool has no free buffer to stage the rest of the input in (${
          chunk.length - taken
        } of ${chunk.length} bytes left), as retained payloads hold every one; the receiver is closed. Release them sooner, use more buffers, or read with read(), which waits for one`,
      );
    }
  }

  /**
   * Ends input given with `push`: checks that it stopped between ops, then
   * closes the receiver.
   *
   * @throws {NatsProtocolError} If the input stopped inside an op; the
   * receiver is closed all the same.
   * @throws {ClosedError} If the receiver was closed.
   * @throws {TypeError} If called by a handler, or while `read()` reads.
   */
  end(): void {
    if (this.#reading) {
      throw new TypeError("Cannot end the NATS receiver while read() is reading into it");
    }
    if (this.#cutter.closed) throw closedError("end");
    this.#end();
  }

  /**
   * Reads `source` until it ends, straight into staging memory when it is a
   * {@linkcode ByteSource} such as a `Deno.Conn` (no copy), chunk by chunk
   * when it is an async iterable such as a `ReadableStream`, and dispatches
   * every op as it completes. When the pool has no free buffer it waits for
   * retained packets to be released. The receiver is closed when it returns,
   * whichever way.
   *
   * Resolves when the source ends between ops, or once the receiver is
   * closed (by a handler, or by `close()` while a read or wait is pending:
   * what that read returns, error or bytes, is then dropped). Rejects with a
   * {@linkcode NatsProtocolError} when the input is not NATS, breaks a limit
   * or stops inside an op; with whatever a handler or the source throws; and
   * with the signal's reason when it aborts. The source is not closed; an
   * async iterable is stopped (a stream is cancelled) when the reading stops
   * early.
   *
   * @param source What to read: a `read()`able such as a `Deno.Conn`, or an
   * async iterable of chunks such as a `ReadableStream<Uint8Array>`.
   * @param signal Stops the reading, checked before and after each read and
   * while waiting for a buffer; a read in progress is not interrupted (close
   * the source for that).
   * @returns A promise that settles when the reading stops.
   * @throws {ClosedError} If the receiver was closed (the promise rejects).
   * @throws {TypeError} If called by a handler, or while another `read()`
   * reads.
   *
   * @example Reading a TCP connection
   * ```ts
   * import { BufferPool } from "@bab/bab";
   * import { NatsReceiver } from "@bab/bab/nats";
   * import assert from "node:assert/strict";
   *
   * const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
   * const client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
   * const server = await listener.accept();
   * await server.write(new TextEncoder().encode("MSG a 1 2\r\nhi\r\nMSG b 1 3\r\nyou\r\n"));
   * server.close();
   *
   * const pool = new BufferPool({ bufferSize: 8192, bufferCount: 1 });
   * const texts: string[] = [];
   * const receiver = new NatsReceiver(pool, {
   *   message: (message) => void texts.push(message.text()),
   *   info() {},
   *   ping() {},
   *   pong() {},
   *   ok() {},
   *   error() {},
   * });
   * await receiver.read(client);
   * client.close();
   * listener.close();
   * assert.deepEqual(texts, ["hi", "you"]);
   * assert.equal(pool.stats().inUse, 0);
   * ```
   */
  async read(
    source: ByteSource | AsyncIterable<Uint8Array>,
    signal?: AbortSignal,
  ): Promise<void> {
    if (this.#reading) {
      throw new TypeError("Cannot read into the NATS receiver: another read() is reading");
    }
    const cutter = this.#cutter;
    if (cutter.closed) throw closedError("read into");
    this.#reading = true;
    try {
      const ended = typeof (source as ByteSource).read === "function"
        ? await this.#readSource(source as ByteSource, signal)
        : await this.#readChunks(source as AsyncIterable<Uint8Array>, signal);
      if (ended) this.#end();
    } finally {
      this.#reading = false;
      cutter.close();
    }
  }

  /**
   * Releases the staging buffer and stops the receiver; an unfinished op is
   * dropped. Packets retained from messages stay valid. Calling it again
   * does nothing. Called by a handler, it stops the dispatching: the ops
   * after the current one are not dispatched.
   */
  close(): void {
    // Also ends a read() waiting for a buffer: FrameCutter.close ends its wait.
    this.#cutter.close();
  }

  /**
   * Closes the receiver, so `using` can own it.
   *
   * @example A receiver closed at the end of its scope
   * ```ts
   * import { BufferPool } from "@bab/bab";
   * import { NatsReceiver } from "@bab/bab/nats";
   * import assert from "node:assert/strict";
   *
   * const pool = new BufferPool({ bufferSize: 8192, bufferCount: 1 });
   * {
   *   using receiver = new NatsReceiver(pool, {
   *     message() {},
   *     info() {},
   *     ping() {},
   *     pong() {},
   *     ok() {},
   *     error() {},
   *   });
   *   receiver.push(new TextEncoder().encode("MSG a 1 10\r\nunfin")); // an unfinished op
   * } // closed here: the op is dropped
   * assert.equal(pool.stats().inUse, 0);
   * ```
   */
  [Symbol.dispose](): void {
    this.close();
  }

  /** Calls the handler of the op just decoded: the codec says which and where. */
  #dispatch(bytes: Uint8Array, message: NatsMessage): void {
    const codec = this.#codec;
    const handlers = this.#handlers;
    switch (codec.op) {
      case OP_MSG:
        handlers.message(message);
        return;
      case OP_PING:
        handlers.ping();
        return;
      case OP_PONG:
        handlers.pong();
        return;
      case OP_OK:
        handlers.ok();
        return;
      case OP_INFO:
        handlers.info(parseServerInfo(decodeText(bytes, codec.textStart, codec.textEnd)));
        return;
      case OP_ERR:
        handlers.error(new NatsServerError(decodeText(bytes, codec.textStart, codec.textEnd)));
        return;
    }
  }

  /** Ends the input; an unfinished op is a protocol error. */
  #end(): void {
    try {
      this.#cutter.end(this.#visit);
    } catch (error) {
      if (!(error instanceof TruncatedError)) throw error;
      const op = Number.isNaN(error.expected)
        ? "an op whose control line had not ended"
        : `a ${error.expected}-byte op`;
      throw new NatsProtocolError(
        `Cannot read NATS from the server: the input ended ${error.received} bytes into ${op}`,
      );
    }
  }

  /**
   * Reads a `read()`able into staging memory until it ends.
   * @returns Whether it ended (else the receiver was closed).
   */
  async #readSource(source: ByteSource, signal: AbortSignal | undefined): Promise<boolean> {
    const cutter = this.#cutter;
    for (;;) {
      signal?.throwIfAborted();
      let view = cutter.writable();
      if (view === null) {
        if (!await this.#waitForBuffer(signal)) return false;
        view = cutter.writable()!;
      }
      let n: number | null;
      try {
        n = await source.read(view);
      } catch (error) {
        if (cutter.closed) return false; // close() while reading: its failure is moot
        throw error;
      }
      if (cutter.closed) return false;
      signal?.throwIfAborted();
      if (n === null) return true;
      cutter.commit(n, this.#visit);
      if (cutter.closed) return false; // a handler closed it
    }
  }

  /**
   * Pushes each chunk of an async iterable, waiting for buffers as needed.
   * @returns Whether it ended (else the receiver was closed).
   */
  async #readChunks(
    source: AsyncIterable<Uint8Array>,
    signal: AbortSignal | undefined,
  ): Promise<boolean> {
    const cutter = this.#cutter;
    signal?.throwIfAborted();
    for await (const chunk of source) {
      if (cutter.closed) return false;
      signal?.throwIfAborted();
      let taken = cutter.push(chunk, this.#visit);
      while (taken < chunk.length && !cutter.closed) {
        if (!await this.#waitForBuffer(signal)) return false;
        taken += cutter.push(chunk.subarray(taken), this.#visit);
      }
      if (cutter.closed) return false;
    }
    return true;
  }

  /**
   * Waits for a staging buffer, for `read()`, until `signal` aborts or the
   * receiver is closed (the cutter alone would notice only once a buffer
   * came). Allocates, but only when the pool has run dry.
   * @returns false if the receiver was closed meanwhile.
   */
  async #waitForBuffer(signal: AbortSignal | undefined): Promise<boolean> {
    const cutter = this.#cutter;
    try {
      // close() ends the cutter's wait (FrameCutter.close).
      await cutter.waitForBuffer(signal === undefined ? undefined : { signal });
    } catch (error) {
      if (cutter.closed) return false;
      throw error;
    }
    return !cutter.closed;
  }
}

function closedError(action: string): ClosedError {
  return new ClosedError(`Cannot ${action} the NATS receiver: it was closed`);
}
