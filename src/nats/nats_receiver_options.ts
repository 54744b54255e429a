/**
 * {@linkcode NatsReceiverOptions}: the limits a {@linkcode NatsReceiver}
 * holds the server to.
 *
 * @module
 */

/**
 * Limits on what a {@linkcode NatsReceiver} accepts. Both are enforced
 * before the bytes past them are buffered: input that breaks one is a
 * {@linkcode NatsProtocolError}, and the receiver closes.
 *
 * @example A receiver for messages of up to 64 KiB
 * ```ts
 * import { BufferPool } from "@bab/bab";
 * import { NatsReceiver, type NatsReceiverOptions } from "@bab/bab/nats";
 * import assert from "node:assert/strict";
 *
 * const options: NatsReceiverOptions = { maxPayload: 65536, maxControlLine: 1024 };
 * // Each staging buffer holds one whole message: control line, payload, two "\r\n"s.
 * const pool = new BufferPool({ bufferSize: 65536 + 1024 + 4, bufferCount: 2 });
 * const receiver = new NatsReceiver(pool, {
 *   message() {},
 *   info() {},
 *   ping() {},
 *   pong() {},
 *   ok() {},
 *   error() {},
 * }, options);
 * assert.equal(receiver.maxPayload, 65536);
 * receiver.close();
 * ```
 */
export interface NatsReceiverOptions {
  /**
   * The most bytes a message may carry, headers included (as the server's
   * `max_payload` counts them). A `MSG` or `HMSG` announcing more fails as
   * soon as its control line is read. Defaults to what one of the pool's
   * buffers holds beside the longest control line: `bufferSize -
   * maxControlLine - 4`. A connection passes the server's `max_payload`, or
   * less.
   */
  maxPayload?: number;
  /**
   * The longest control line accepted, in bytes, not counting its `\r\n`: a
   * line that has not ended within that many bytes fails once that many
   * (and 2) are buffered. Default 4,096, as nats-server's own
   * `max_control_line`. An `INFO` line must fit too.
   */
  maxControlLine?: number;
}
