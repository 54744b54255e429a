/**
 * A writer's one reusable claim: space for the next message, filled in
 * place through the pool buffer's own views.
 *
 * @module
 */

import type { Chunk } from "./_chunk.ts";
import type { ClaimOwner } from "./_writer_link.ts";
import { ReleasedError } from "./errors.ts";

/**
 * Space for one message that a {@linkcode Writer} handed out with
 * {@linkcode Writer.tryClaim} or {@linkcode Writer.claim}: write the
 * message into {@linkcode WriterClaim.buffer} (or through
 * {@linkcode WriterClaim.dataView}) from {@linkcode WriterClaim.offset}
 * for {@linkcode WriterClaim.length} bytes, then
 * {@linkcode WriterClaim.commit} it or {@linkcode WriterClaim.cancel} it.
 * Claimed with a count, it is space for a run of
 * {@linkcode WriterClaim.count} such messages, each
 * {@linkcode WriterClaim.stride} bytes after the one before.
 *
 * This is the writer's fast path: a writer has exactly one claim object and
 * hands it out again for every message, and `buffer` and `dataView` cover
 * the whole pool buffer and are made once per buffer, so claiming, filling
 * and committing allocate nothing. The price is that a claim is exclusive
 * and short-lived:
 *
 * - While it is open, the writer places nothing else: any other claim,
 *   reserve or write on it throws a `TypeError` until the claim is
 *   committed or cancelled. Reservations opened before it stay open and may
 *   be committed meanwhile.
 * - `buffer`, `dataView`, `offset` and `length` are valid only while it is
 *   open; once it is committed or cancelled they throw a
 *   {@linkcode ReleasedError}, and so do `commit` and `cancel`. Since the
 *   object is reused, a reference kept past `commit` sees the writer's next
 *   claim once there is one: do not keep it.
 * - Nothing is placed after an open claim, so `cancel` always takes its
 *   space back.
 * - If its writer closes (or its flusher's consumer fails) while it is open,
 *   it is cancelled: `commit` and the accessors throw the writer's
 *   {@linkcode ClosedError} saying why, and `cancel` does nothing.
 *
 * Use a {@linkcode Reservation} instead to keep several messages open at
 * once, commit them in any order, or hold one across an `await` without
 * stopping the writer.
 *
 * @example Filling messages in place, header and body
 * ```ts
 * import { BufferPool, lengthPrefix, WriteFlusher, Writer } from "@bab/bab";
 * import assert from "node:assert/strict";
 *
 * const pool = new BufferPool({ bufferSize: 4096, bufferCount: 4 });
 * const flusher = new WriteFlusher(pool);
 * const writer = new Writer(pool, flusher, { codec: lengthPrefix(4) });
 *
 * for (let i = 0; i < 3; i++) {
 *   const claim = writer.tryClaim(12) ?? await writer.claim(12);
 *   claim.dataView.setUint32(claim.offset, i); // a sequence number
 *   claim.dataView.setFloat64(claim.offset + 4, i / 2);
 *   claim.commit();
 * }
 * writer.close();
 * flusher.close();
 *
 * const values: number[] = [];
 * for await (const batch of flusher.readable) {
 *   for (const region of batch) {
 *     const view = new DataView(region.bytes.buffer, region.bytes.byteOffset, region.length);
 *     // Each frame: a 4-byte length prefix, then the 12-byte message.
 *     for (let at = 0; at < region.length; at += 16) {
 *       assert.equal(view.getUint32(at), 12);
 *       values.push(view.getUint32(at + 4), view.getFloat64(at + 8));
 *     }
 *     region.release();
 *   }
 * }
 * assert.deepEqual(values, [0, 0, 1, 0.5, 2, 1]);
 * assert.equal(pool.stats().inUse, 0);
 * ```
 */
export class WriterClaim {
  /** @ignore Its writer's open claim, which hands it out and settles it. */
  readonly _writer: ClaimOwner<WriterClaim>;
  /** @ignore The writer's record of the buffer the claim is in, while open. */
  _chunk: Chunk | null = null;
  /** @ignore Offset of the frame (header included) in the buffer. */
  _frameStart = 0;
  /** @ignore Offset of the payload in the buffer. */
  _offset = 0;
  /** @ignore Payload length. */
  _length = 0;
  /** @ignore Messages in the run. */
  _count = 1;
  /** @ignore Bytes from one message of the run to the next: the framed length. */
  _stride = 0;
  /** @ignore Its writer closed while it was open. */
  _closed = false;

  /** @ignore Made by the writer, once. */
  constructor(writer: ClaimOwner<WriterClaim>) {
    this._writer = writer;
  }

  /**
   * The whole pool buffer the message goes into: write the message at
   * `buffer[offset]` to `buffer[offset + length - 1]`, and nowhere else.
   * Those bytes hold whatever an earlier message left there: write all of
   * them.
   *
   * @throws {ReleasedError} If the claim was committed or cancelled.
   * @throws {ClosedError} If its writer closed while it was open.
   */
  get buffer(): Uint8Array {
    const chunk = this._chunk;
    if (chunk === null) throw settled(this, "read the buffer of");
    return chunk.view;
  }

  /**
   * A `DataView` over the same whole buffer, e.g. to write numbers at
   * `offset`; made once per pool buffer.
   *
   * @throws {ReleasedError} If the claim was committed or cancelled.
   * @throws {ClosedError} If its writer closed while it was open.
   */
  get dataView(): DataView {
    const chunk = this._chunk;
    if (chunk === null) throw settled(this, "read the dataView of");
    return chunk.data;
  }

  /**
   * Where the message starts in {@linkcode WriterClaim.buffer} (after the
   * codec's header, which the writer wrote).
   *
   * @throws {ReleasedError} If the claim was committed or cancelled.
   * @throws {ClosedError} If its writer closed while it was open.
   */
  get offset(): number {
    if (this._chunk === null) throw settled(this, "read the offset of");
    return this._offset;
  }

  /**
   * The message's length in bytes, as claimed (its payload, under a codec).
   *
   * @throws {ReleasedError} If the claim was committed or cancelled.
   * @throws {ClosedError} If its writer closed while it was open.
   */
  get length(): number {
    if (this._chunk === null) throw settled(this, "read the length of");
    return this._length;
  }

  /**
   * How many messages the claim holds: 1, or for a **run** from 1 to the
   * count asked for. Claimed with a count above 1
   * ({@linkcode Writer.tryClaim}`(length, count)` or
   * {@linkcode Writer.claim}`(length, { count })`), a claim is room for up
   * to that many messages of `length` bytes, as many as the current buffer
   * holds (at least one; a full buffer moves to the next as for one
   * message), framed back to back with their headers already written.
   * Message `i` starts at `offset + i * stride`. One commit settles them
   * all, or the first few with `commit(n)`. For many small messages of one
   * size this is the fastest way to send: the per-message cost is the
   * filling alone.
   *
   * @example A run of fixed-size messages, one commit
   * ```ts
   * import { BufferPool, lengthPrefix, WriteFlusher, Writer } from "@bab/bab";
   * import assert from "node:assert/strict";
   *
   * // 5,000 bytes to send before reading them: room for all of them.
   * const pool = new BufferPool({ bufferSize: 1024, bufferCount: 8 });
   * const flusher = new WriteFlusher(pool);
   * const writer = new Writer(pool, flusher, { codec: lengthPrefix(2) });
   *
   * let sent = 0;
   * while (sent < 500) {
   *   const run = writer.tryClaim(8, 500 - sent) ?? await writer.claim(8, { count: 500 - sent });
   *   for (let i = 0; i < run.count; i++) {
   *     run.dataView.setFloat64(run.offset + i * run.stride, sent + i);
   *   }
   *   sent += run.count;
   *   run.commit();
   * }
   * writer.close();
   * flusher.close();
   *
   * let received = 0;
   * for await (const batch of flusher.readable) {
   *   for (const region of batch) {
   *     const view = new DataView(region.bytes.buffer, region.bytes.byteOffset, region.length);
   *     for (let at = 0; at < region.length; at += 10) {
   *       assert.equal(view.getUint16(at), 8);
   *       assert.equal(view.getFloat64(at + 2), received++);
   *     }
   *     region.release();
   *   }
   * }
   * assert.equal(received, 500);
   * assert.equal(pool.stats().inUse, 0);
   * ```
   *
   * @throws {ReleasedError} If the claim was committed or cancelled.
   * @throws {ClosedError} If its writer closed while it was open.
   */
  get count(): number {
    if (this._chunk === null) throw settled(this, "read the count of");
    return this._count;
  }

  /**
   * Bytes from one message of a run to the next: the message's length
   * plus its codec's header and trailer.
   *
   * @throws {ReleasedError} If the claim was committed or cancelled.
   * @throws {ClosedError} If its writer closed while it was open.
   */
  get stride(): number {
    if (this._chunk === null) throw settled(this, "read the stride of");
    return this._stride;
  }

  /** Whether the claim is open: handed out and neither committed nor cancelled. */
  get open(): boolean {
    return this._chunk !== null;
  }

  /**
   * Marks the message written; the writer may place the next one. The
   * flusher gets it with the next flush, once every message placed before
   * it was committed too. For a run, `count` commits its first `count`
   * messages and takes the rest back (default: all of them).
   *
   * @param count Messages of a run to commit, from 0 to
   * {@linkcode WriterClaim.count}; 0 is a cancel.
   * @throws {RangeError} If `count` is out of that range.
   * @throws {ReleasedError} If it was already committed or cancelled.
   * @throws {ClosedError} If its writer closed (or its flusher's consumer
   * failed) while it was open, saying why: the message was dropped.
   */
  commit(count?: number): void {
    if (this._chunk === null) throw settled(this, "commit");
    if (count === undefined) count = this._count;
    else if (!Number.isInteger(count) || count < 0 || count > this._count) {
      throw new RangeError(
        `Cannot commit ${count} messages of a claim: it holds ${this._count}; commit from 0 to ${this._count}`,
      );
    }
    this._writer._commitClaim(this, count);
  }

  /**
   * Gives the space back: nothing is ever placed after an open claim, so
   * the writer takes it back whole. Does nothing once its writer's close
   * cancelled it.
   *
   * @throws {ReleasedError} If it was already committed or cancelled.
   */
  cancel(): void {
    if (this._chunk !== null) this._writer._cancelClaim(this);
    else if (!this._closed) throw settled(this, "cancel");
  }

  /** Cancels the claim if it is still open: `using` support. */
  [Symbol.dispose](): void {
    if (this._chunk !== null) this._writer._cancelClaim(this);
  }
}

/**
 * The error for using a claim that is not open: its writer's ClosedError if
 * that closed while it was open, else a ReleasedError. A function, not a
 * private method: the getters that call it stay small enough to inline.
 */
function settled(claim: WriterClaim, action: string): Error {
  if (claim._closed) return claim._writer._closedError(`${action} a claim`);
  return new ReleasedError(`Cannot ${action} a claim: it was already committed or cancelled`);
}
