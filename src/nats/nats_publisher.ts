/**
 * NATS publishes encoded straight into a bab writer's pooled buffers, so
 * that one socket write sends every message of a flush.
 *
 * @module
 */

import { SharedWriter } from "../shared_writer.ts";
import { Writer } from "../writer.ts";
import type { ReserveOptions } from "../writer_options.ts";
import { utf8Length } from "../_writer_framing.ts";
import type { NatsPublisherOptions, NatsPublishOptions } from "./nats_publisher_options.ts";
import type { NatsReservation } from "./nats_reservation.ts";
import type { NatsSubject } from "./nats_subject.ts";
import {
  fill,
  frameLength,
  frameReservation,
  publishLater,
  publishNow,
  type PublishTarget,
  reservedFrame,
} from "./_nats_frame.ts";
import { placerOf } from "../_frame_placer.ts";
import { OpenNatsReservations } from "./_nats_open.ts";
import { writeEnd, writeVoid } from "./_nats_wire.ts";

/** The server's `max_payload` unless its configuration says otherwise: 1 MiB. */
const DEFAULT_MAX_PAYLOAD = 1024 * 1024;

/**
 * Publishes NATS messages through a bab writer: each publish is one message
 * of the writer, the protocol's control line, headers, payload and closing
 * CRLF written in place into its pooled buffer, so that the
 * {@linkcode WriteFlusher} piped to the server's socket sends a whole
 * flush's messages in one write. Give it a {@linkcode Writer} (one per
 * worker, each flushing to the connection's flusher through its handle) or
 * a {@linkcode SharedWriter} (shared by workers).
 *
 * Three ways to publish, as for the writers:
 *
 * - {@linkcode NatsPublisher.tryPublish} / {@linkcode NatsPublisher.publish}
 *   copy a payload you hold as bytes, once, into the buffer; `tryPublish`
 *   makes nothing per message (it fills a `Writer`'s reusable claim, or
 *   places the frame straight into a `SharedWriter`'s buffer).
 * - {@linkcode NatsPublisher.tryPublishString} /
 *   {@linkcode NatsPublisher.publishString} encode text as UTF-8 straight
 *   into the buffer; `tryPublishString` makes nothing either.
 * - {@linkcode NatsPublisher.tryReserve} / {@linkcode NatsPublisher.reserve}
 *   hand you the payload's space to fill, then commit: nothing is copied.
 *
 * Every check comes before anything is written: a wildcard subject or
 * reply is a `TypeError`, headers and payload over
 * {@linkcode NatsPublisher.maxPayload} or a message too big for a pool
 * buffer a `RangeError`. Subjects are {@linkcode NatsSubject}s, checked and
 * encoded when made, so a publish only copies their bytes. Close it with
 * {@linkcode NatsPublisher.close}, not the writer's close. Over a
 * `SharedWriter` it also makes what that handle cancels (its close, a
 * `reclaim` of a dead worker's claims) no-op `UNSUB` lines, not zeros.
 *
 * The writer must frame nothing, the protocol being the framing: one made
 * with a codec is refused with a `TypeError` when the publisher is made.
 *
 * @example Many publishes, one region for the socket
 * ```ts
 * import { BufferPool, WriteFlusher, Writer } from "@bab/bab";
 * import { NatsPublisher, NatsSubject } from "@bab/bab/nats";
 * import assert from "node:assert/strict";
 *
 * const pool = new BufferPool({ bufferSize: 64 * 1024, bufferCount: 8 });
 * const flusher = new WriteFlusher(pool); // in a program: flusher.pipeTo(conn)
 * const writer = new Writer(pool, flusher);
 * const publisher = new NatsPublisher(writer);
 *
 * const prices = new NatsSubject("prices.eurusd");
 * const tick = new Uint8Array([1, 0, 8, 5]);
 * for (let i = 0; i < 3; i++) publisher.tryPublish(prices, tick);
 * await publisher.publishString(prices, "close");
 * publisher.close(); // and its writer
 * flusher.close();
 *
 * const wire = await new Response(flusher.bytes()).text();
 * assert.equal(wire, "PUB prices.eurusd 4\r\n\x01\x00\x08\x05\r\n".repeat(3) + "PUB prices.eurusd 5\r\nclose\r\n");
 * assert.equal(pool.stats().inUse, 0);
 * ```
 */
export class NatsPublisher {
  /** The writer the messages go through. */
  readonly writer: Writer | SharedWriter;
  /** The most bytes of headers and payload one message may carry. */
  readonly maxPayload: number;
  /** The writer, and how a message is placed in it with nothing made. */
  readonly #target: PublishTarget;
  /** The reservations it handed out that are still open, for close to cancel. */
  readonly #open = new OpenNatsReservations();

  /**
   * Makes a publisher that writes through `writer`.
   *
   * @example
   * ```ts
   * import { BufferPool, SharedWriter, WriteFlusher } from "@bab/bab";
   * import { NatsPublisher } from "@bab/bab/nats";
   * import assert from "node:assert/strict";
   *
   * const pool = new BufferPool({ bufferSize: 64 * 1024, bufferCount: 8, shared: true });
   * using flusher = new WriteFlusher(pool);
   * using writer = new SharedWriter(pool, flusher);
   * const publisher = new NatsPublisher(writer);
   * assert.equal(publisher.maxPayload, 1024 * 1024);
   * ```
   *
   * @param writer A {@linkcode Writer} or {@linkcode SharedWriter} made without a codec.
   * @param options The server's `max_payload`.
   * @throws {TypeError} If `writer` is neither, or frames with a codec.
   * @throws {RangeError} If `maxPayload` is not an integer from 0 to 2^31 - 1.
   */
  constructor(writer: Writer | SharedWriter, options?: NatsPublisherOptions) {
    const isWriter = writer instanceof Writer;
    if (!isWriter && !(writer instanceof SharedWriter)) {
      throw new TypeError("Cannot make NATS publisher: pass a Writer or a SharedWriter");
    }
    const maxPayload = options?.maxPayload ?? DEFAULT_MAX_PAYLOAD;
    if (!Number.isInteger(maxPayload) || maxPayload < 0 || maxPayload > 0x7fffffff) {
      throw new RangeError(
        `Cannot make NATS publisher: maxPayload ${maxPayload} is not an integer from 0 to 2^31 - 1`,
      );
    }
    if (writer.codec !== null) {
      throw new TypeError(
        "Cannot make NATS publisher over a writer with a codec: the NATS protocol frames its messages; make the writer without one",
      );
    }
    this.writer = writer;
    this.maxPayload = maxPayload;
    const placer = isWriter ? null : placerOf(writer)!;
    // What the handle cancels or reclaims (its own close, a dead worker's
    // claims) becomes no-op lines: zeros are a protocol error. Every NATS
    // frame is at least the 9 bytes one line takes.
    if (placer !== null) placer.layout.filler = writeVoid;
    this.#target = {
      writer,
      claimer: isWriter ? writer : null,
      placer,
      maxPayload,
      bufferSize: writer.pool.bufferSize,
    };
  }

  /**
   * Publishes `payload` to `subject` now, if the writer has room: copies it
   * into the buffer with its control line, and commits it.
   *
   * @example Publish, or wait for room
   * ```ts
   * import { BufferPool, WriteFlusher, Writer } from "@bab/bab";
   * import { NatsPublisher, NatsSubject } from "@bab/bab/nats";
   *
   * const pool = new BufferPool({ bufferSize: 4096, bufferCount: 4 });
   * using flusher = new WriteFlusher(pool);
   * using writer = new Writer(pool, flusher);
   * const publisher = new NatsPublisher(writer);
   * const subject = new NatsSubject("events");
   * const payload = new Uint8Array([1, 2, 3]);
   * if (!publisher.tryPublish(subject, payload)) await publisher.publish(subject, payload);
   * ```
   *
   * @param subject Where to publish: no wildcards.
   * @param payload The message's bytes.
   * @param options A reply subject, headers.
   * @returns `false` if the writer would have to wait for a buffer; nothing was written then.
   * @throws {TypeError} If the subject or reply has a wildcard, or the
   * writer's claim is open.
   * @throws {RangeError} If headers and payload exceed
   * {@linkcode NatsPublisher.maxPayload}, or the message does not fit in a buffer.
   * @throws {ClosedError} If the writer or its flusher was closed.
   */
  tryPublish(subject: NatsSubject, payload: Uint8Array, options?: NatsPublishOptions): boolean {
    const reply = options?.reply;
    const headers = options?.headers;
    const headerLength = headers === undefined ? 0 : headers.bytes.length;
    const total = headerLength + payload.length;
    const target = this.#target;
    const frame = frameLength(
      subject,
      reply,
      headerLength,
      total,
      target.maxPayload,
      target.bufferSize,
    );
    const claimer = target.claimer;
    if (claimer !== null) {
      const claim = claimer.tryClaim(frame);
      if (claim === null) return false;
      const buffer = claim.buffer;
      const at = fill(buffer, claim.offset, subject, reply, headers, total);
      buffer.set(payload, at);
      writeEnd(buffer, at + payload.length);
      claim.commit();
      return true;
    }
    const placer = target.placer!;
    const start = placer.tryPlace(frame);
    if (start === -1) return false;
    const buffer = placer.placed;
    const at = fill(buffer, start, subject, reply, headers, total);
    buffer.set(payload, at);
    writeEnd(buffer, at + payload.length);
    placer.settlePlaced();
    return true;
  }

  /**
   * Publishes `payload` to `subject`, waiting for room if need be. The
   * payload is copied when the message's turn comes: leave it unchanged
   * until the promise settles.
   *
   * @example A deadline for the wait
   * ```ts
   * import { BufferPool, WriteFlusher, Writer } from "@bab/bab";
   * import { NatsPublisher, NatsSubject } from "@bab/bab/nats";
   *
   * const pool = new BufferPool({ bufferSize: 4096, bufferCount: 4 });
   * using flusher = new WriteFlusher(pool);
   * using writer = new Writer(pool, flusher);
   * const publisher = new NatsPublisher(writer);
   * await publisher.publish(new NatsSubject("events"), new Uint8Array([1]), {
   *   signal: AbortSignal.timeout(1000),
   * });
   * ```
   *
   * @param subject Where to publish: no wildcards.
   * @param payload The message's bytes.
   * @param options A reply subject, headers, and a `signal` to give up the wait.
   * @throws {TypeError} As {@linkcode NatsPublisher.tryPublish}.
   * @throws {RangeError} As {@linkcode NatsPublisher.tryPublish}.
   * @throws {ClosedError} If the writer or its flusher was closed.
   * @throws The signal's reason, if it aborts first: nothing was written.
   */
  async publish(
    subject: NatsSubject,
    payload: Uint8Array,
    options?: NatsPublishOptions & ReserveOptions,
  ): Promise<void> {
    if (this.tryPublish(subject, payload, options)) return;
    await publishLater(this.#target, subject, payload, payload.length, options);
  }

  /**
   * Publishes `text` as UTF-8 to `subject` now, if the writer has room:
   * encoded straight into the buffer.
   *
   * @example
   * ```ts
   * import { BufferPool, WriteFlusher, Writer } from "@bab/bab";
   * import { NatsPublisher, NatsSubject } from "@bab/bab/nats";
   * import assert from "node:assert/strict";
   *
   * const pool = new BufferPool({ bufferSize: 4096, bufferCount: 4 });
   * const flusher = new WriteFlusher(pool);
   * const writer = new Writer(pool, flusher);
   * assert.ok(new NatsPublisher(writer).tryPublishString(new NatsSubject("greet"), "héllo"));
   * writer.close();
   * flusher.close();
   * assert.equal(await new Response(flusher.bytes()).text(), "PUB greet 6\r\nhéllo\r\n");
   * ```
   *
   * @param subject Where to publish: no wildcards.
   * @param text The payload, sent as UTF-8 (a lone surrogate as U+FFFD).
   * @param options A reply subject, headers.
   * @returns `false` if the writer would have to wait for a buffer; nothing was written then.
   * @throws {TypeError} As {@linkcode NatsPublisher.tryPublish}.
   * @throws {RangeError} As {@linkcode NatsPublisher.tryPublish}.
   * @throws {ClosedError} If the writer or its flusher was closed.
   */
  tryPublishString(subject: NatsSubject, text: string, options?: NatsPublishOptions): boolean {
    return publishNow(this.#target, subject, text, utf8Length(text), options);
  }

  /**
   * Publishes `text` as UTF-8 to `subject`, waiting for room if need be.
   *
   * @example
   * ```ts
   * import { BufferPool, WriteFlusher, Writer } from "@bab/bab";
   * import { NatsPublisher, NatsSubject } from "@bab/bab/nats";
   *
   * const pool = new BufferPool({ bufferSize: 4096, bufferCount: 4 });
   * using flusher = new WriteFlusher(pool);
   * using writer = new Writer(pool, flusher);
   * await new NatsPublisher(writer).publishString(new NatsSubject("greet"), "hi");
   * ```
   *
   * @param subject Where to publish: no wildcards.
   * @param text The payload, sent as UTF-8.
   * @param options A reply subject, headers, and a `signal` to give up the wait.
   * @throws {TypeError} As {@linkcode NatsPublisher.tryPublish}.
   * @throws {RangeError} As {@linkcode NatsPublisher.tryPublish}.
   * @throws {ClosedError} If the writer or its flusher was closed.
   * @throws The signal's reason, if it aborts first: nothing was written.
   */
  async publishString(
    subject: NatsSubject,
    text: string,
    options?: NatsPublishOptions & ReserveOptions,
  ): Promise<void> {
    const length = utf8Length(text);
    if (publishNow(this.#target, subject, text, length, options)) return;
    await publishLater(this.#target, subject, text, length, options);
  }

  /**
   * Reserves a message of `length` bytes of payload to `subject` now, if
   * the writer has room: its control line and headers are written, and you
   * fill {@linkcode NatsReservation.payload} in place, then commit.
   *
   * @example
   * ```ts
   * import { BufferPool, WriteFlusher, Writer } from "@bab/bab";
   * import { NatsPublisher, NatsSubject } from "@bab/bab/nats";
   *
   * const pool = new BufferPool({ bufferSize: 4096, bufferCount: 4 });
   * using flusher = new WriteFlusher(pool);
   * using writer = new Writer(pool, flusher);
   * const reservation = new NatsPublisher(writer).tryReserve(new NatsSubject("blob"), 100);
   * if (reservation !== null) {
   *   reservation.payload.fill(0xab);
   *   reservation.commit();
   * }
   * ```
   *
   * @param subject Where to publish: no wildcards.
   * @param length The payload's length in bytes.
   * @param options A reply subject, headers.
   * @returns The reservation, or `null` if the writer would have to wait for a buffer.
   * @throws {TypeError} As {@linkcode NatsPublisher.tryPublish}.
   * @throws {RangeError} As {@linkcode NatsPublisher.tryPublish}, or if
   * `length` is not an integer from 0 up.
   * @throws {ClosedError} If the writer or its flusher was closed.
   */
  tryReserve(
    subject: NatsSubject,
    length: number,
    options?: NatsPublishOptions,
  ): NatsReservation | null {
    const frame = reservedFrame(subject, length, options, this.maxPayload, this.#target.bufferSize);
    const inner = this.writer.tryReserve(frame);
    return inner === null ? null : frameReservation(inner, subject, length, options, this.#open);
  }

  /**
   * Reserves a message of `length` bytes of payload to `subject`, waiting
   * for room if need be; see {@linkcode NatsPublisher.tryReserve}.
   *
   * @example
   * ```ts
   * import { BufferPool, WriteFlusher, Writer } from "@bab/bab";
   * import { NatsPublisher, NatsSubject } from "@bab/bab/nats";
   *
   * const pool = new BufferPool({ bufferSize: 4096, bufferCount: 4 });
   * using flusher = new WriteFlusher(pool);
   * using writer = new Writer(pool, flusher);
   * const publisher = new NatsPublisher(writer);
   * using reservation = await publisher.reserve(new NatsSubject("blob"), 3, {
   *   signal: AbortSignal.timeout(1000),
   * });
   * reservation.payload.set([1, 2, 3]);
   * reservation.commit();
   * ```
   *
   * @param subject Where to publish: no wildcards.
   * @param length The payload's length in bytes.
   * @param options A reply subject, headers, and a `signal` to give up the wait.
   * @returns The reservation.
   * @throws {TypeError} As {@linkcode NatsPublisher.tryPublish}.
   * @throws {RangeError} As {@linkcode NatsPublisher.tryReserve}.
   * @throws {ClosedError} If the writer or its flusher was closed.
   * @throws The signal's reason, if it aborts first: nothing was written.
   */
  async reserve(
    subject: NatsSubject,
    length: number,
    options?: NatsPublishOptions & ReserveOptions,
  ): Promise<NatsReservation> {
    const now = this.tryReserve(subject, length, options);
    if (now !== null) return now;
    const frame = reservedFrame(subject, length, options, this.maxPayload, this.#target.bufferSize);
    return frameReservation(
      await this.writer.reserve(frame, options),
      subject,
      length,
      options,
      this.#open,
    );
  }

  /**
   * Hands what was committed to the flusher now: the writer's
   * {@linkcode Writer.flush}.
   *
   * @example
   * ```ts
   * import { BufferPool, WriteFlusher, Writer } from "@bab/bab";
   * import { NatsPublisher, NatsSubject } from "@bab/bab/nats";
   *
   * const pool = new BufferPool({ bufferSize: 4096, bufferCount: 4 });
   * using flusher = new WriteFlusher(pool);
   * using writer = new Writer(pool, flusher, { flush: "manual" });
   * const publisher = new NatsPublisher(writer);
   * publisher.tryPublishString(new NatsSubject("a"), "1");
   * publisher.flush();
   * ```
   *
   * @throws {ClosedError} If the flusher has ended.
   */
  flush(): void {
    this.writer.flush();
  }

  /**
   * Cancels the reservations it handed out that are still open, as
   * {@linkcode NatsReservation.cancel} does, then closes the writer
   * (this worker's handle, for a {@linkcode SharedWriter}). Close a
   * publisher's writer this way: the writer's own close would cancel them
   * with zeros where something follows them, which the server rejects by
   * closing the connection, losing what follows.
   *
   * @example
   * ```ts
   * import { BufferPool, WriteFlusher, Writer } from "@bab/bab";
   * import { NatsPublisher, NatsSubject } from "@bab/bab/nats";
   * import assert from "node:assert/strict";
   *
   * const pool = new BufferPool({ bufferSize: 256, bufferCount: 2 });
   * const flusher = new WriteFlusher(pool);
   * const publisher = new NatsPublisher(new Writer(pool, flusher));
   * const subject = new NatsSubject("a");
   * const forgotten = publisher.tryReserve(subject, 1)!;
   * publisher.tryPublishString(subject, "x");
   * publisher.close();
   * flusher.close();
   * assert.equal(forgotten.open, false);
   * assert.equal(await new Response(flusher.bytes()).text(), "UNSUB _   \r\nPUB a 1\r\nx\r\n");
   * ```
   */
  close(): void {
    this.#open.cancelAll();
    this.writer.close();
  }

  /** Closes the publisher and its writer: `using` support. */
  [Symbol.dispose](): void {
    this.close();
  }
}
