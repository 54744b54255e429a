/**
 * {@linkcode NatsMessage}: a message from a NATS server (`MSG` or `HMSG`),
 * read in place in pool memory.
 *
 * @module
 */

import type { Packet } from "../packet.ts";
import { decodeText } from "./_nats_text.ts";

const NO_BYTES = new Uint8Array(0);

/**
 * A message from the server, seen in place: its parts are offsets into
 * `bytes`, the receiver's staging memory. One object is reused for every
 * message of a {@linkcode NatsReceiver}, and the memory behind it is reused
 * once the handler returns, so a message is valid only during the handler
 * call. Reading the offsets and {@linkcode NatsMessage.subjectEquals}
 * allocate nothing; the getters and `text()`/`json()` make what they return
 * each time they are called. To keep the payload past the call, take a
 * packet of it with {@linkcode NatsMessage.retain} (no copy).
 *
 * @example Reading a message in its handler, keeping one payload
 * ```ts
 * import { BufferPool, type Packet } from "@bab/bab";
 * import { NatsReceiver } from "@bab/bab/nats";
 * import assert from "node:assert/strict";
 *
 * const pool = new BufferPool({ bufferSize: 8192, bufferCount: 2 });
 * const orders = new TextEncoder().encode("orders");
 * let kept: Packet | null = null;
 * const seen: string[] = [];
 * const receiver = new NatsReceiver(pool, {
 *   message(message) {
 *     seen.push(`${message.sid} ${message.subject} ${message.reply} ${message.text()}`);
 *     if (message.subjectEquals(orders)) kept = message.retain();
 *   },
 *   info() {},
 *   ping() {},
 *   pong() {},
 *   ok() {},
 *   error() {},
 * });
 * receiver.push(new TextEncoder().encode("MSG orders 7 _INBOX.1 3\r\nabc\r\nMSG news 8 2\r\nhi\r\n"));
 * assert.deepEqual(seen, ["7 orders _INBOX.1 abc", "8 news null hi"]);
 * assert.equal(kept!.text(), "abc");
 * kept!.release();
 * receiver.close();
 * assert.equal(pool.stats().inUse, 0);
 * ```
 */
export class NatsMessage {
  /** The staging memory the message lies in; the offsets below index it. */
  bytes: Uint8Array = NO_BYTES;
  /** The subscription id the server tagged the message with. */
  sid: number = 0;
  /** First byte of the subject. */
  subjectStart: number = 0;
  /** Byte after the subject. */
  subjectEnd: number = 0;
  /** First byte of the reply subject, or -1 when there is none. */
  replyStart: number = -1;
  /** Byte after the reply subject, or -1 when there is none. */
  replyEnd: number = -1;
  /**
   * First byte of the header block (`NATS/1.0...\r\n\r\n`, of an `HMSG`), or
   * -1 when there is none.
   */
  headersStart: number = -1;
  /** Byte after the header block's blank line, or -1 when there is none. */
  headersEnd: number = -1;
  /** First byte of the payload. */
  payloadStart: number = 0;
  /** Byte after the payload. */
  payloadEnd: number = 0;
  /** The receiver's way to keep the op being dispatched. */
  readonly #retainOp: () => Packet;

  /**
   * @ignore Made by {@linkcode NatsReceiver}; `retainOp` returns the whole op
   * being dispatched (control line to the payload's `\r\n`) as a packet.
   */
  constructor(retainOp: () => Packet) {
    this.#retainOp = retainOp;
  }

  /** The subject, decoded as UTF-8: a new string each call. */
  get subject(): string {
    return decodeText(this.bytes, this.subjectStart, this.subjectEnd);
  }

  /** The reply subject, or null when there is none: a new string each call. */
  get reply(): string | null {
    if (this.replyStart < 0) return null;
    return decodeText(this.bytes, this.replyStart, this.replyEnd);
  }

  /** The payload as a view of the staging memory (made each call; valid during the call only). */
  get payload(): Uint8Array {
    return this.bytes.subarray(this.payloadStart, this.payloadEnd);
  }

  /**
   * The raw header block, from `NATS/1.0` to its blank line, as a view of the
   * staging memory; null when the message has no headers.
   */
  get headers(): Uint8Array | null {
    if (this.headersStart < 0) return null;
    return this.bytes.subarray(this.headersStart, this.headersEnd);
  }

  /**
   * Whether the subject is exactly `subject`'s bytes, compared in place with
   * no allocation: for dispatching on a few known subjects without making a
   * string per message.
   *
   * @param subject The subject's bytes (UTF-8).
   * @returns Whether they are equal.
   *
   * @example Matching a subject without making a string
   * ```ts
   * import { BufferPool } from "@bab/bab";
   * import { NatsReceiver } from "@bab/bab/nats";
   * import assert from "node:assert/strict";
   *
   * const pool = new BufferPool({ bufferSize: 8192, bufferCount: 1 });
   * const prices = new TextEncoder().encode("prices");
   * let matched = 0;
   * const receiver = new NatsReceiver(pool, {
   *   message(message) {
   *     if (message.subjectEquals(prices)) matched++;
   *   },
   *   info() {},
   *   ping() {},
   *   pong() {},
   *   ok() {},
   *   error() {},
   * });
   * receiver.push(new TextEncoder().encode("MSG prices 1 0\r\n\r\nMSG price 1 0\r\n\r\n"));
   * assert.equal(matched, 1);
   * receiver.close();
   * ```
   */
  subjectEquals(subject: Uint8Array): boolean {
    const start = this.subjectStart;
    const length = subject.length;
    if (this.subjectEnd - start !== length) return false;
    const bytes = this.bytes;
    for (let i = 0; i < length; i++) {
      if (bytes[start + i] !== subject[i]) return false;
    }
    return true;
  }

  /**
   * The payload decoded as UTF-8 text (malformed sequences become U+FFFD).
   *
   * @returns A new string.
   */
  text(): string {
    return decodeText(this.bytes, this.payloadStart, this.payloadEnd);
  }

  /**
   * The payload parsed as JSON text.
   *
   * @returns The parsed value.
   * @throws {SyntaxError} If the payload is not valid JSON.
   */
  json(): unknown {
    return JSON.parse(this.text());
  }

  /**
   * The payload as a {@linkcode Packet} holding its own reference to the
   * pool buffer, with no copy: keep it past the handler call, hand it on,
   * and release it when done. Until then it pins its buffer; the receiver
   * stages later input in other buffers meanwhile. Each call makes another
   * packet.
   *
   * @returns The payload's packet, the caller's to release.
   * @throws {ReleasedError} If called after the handler returned: the
   * memory is no longer the message's to give.
   *
   * @example Keeping payloads in a queue
   * ```ts
   * import { BufferPool, type Packet } from "@bab/bab";
   * import { NatsReceiver } from "@bab/bab/nats";
   * import assert from "node:assert/strict";
   *
   * const pool = new BufferPool({ bufferSize: 8192, bufferCount: 4 });
   * const queue: Packet[] = [];
   * const receiver = new NatsReceiver(pool, {
   *   message(message) {
   *     queue.push(message.retain());
   *   },
   *   info() {},
   *   ping() {},
   *   pong() {},
   *   ok() {},
   *   error() {},
   * });
   * receiver.push(new TextEncoder().encode("MSG jobs 1 4\r\njob1\r\nHMSG jobs 1 12 16\r\nNATS/1.0\r\n\r\njob2\r\n"));
   * receiver.close();
   * assert.deepEqual(queue.map((packet) => packet.text()), ["job1", "job2"]);
   * for (const packet of queue) packet.release();
   * assert.equal(pool.stats().inUse, 0);
   * ```
   */
  retain(): Packet {
    const op = this.#retainOp();
    try {
      // The op runs from its control line to the "\r\n" after the payload.
      const opStart = this.payloadEnd + 2 - op.length;
      return op.subarray(this.payloadStart - opStart, this.payloadEnd - opStart);
    } finally {
      op.release();
    }
  }
}
