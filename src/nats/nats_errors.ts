/**
 * The errors of bab's NATS support, one per party at fault: the server's
 * bytes ({@linkcode NatsProtocolError}), the server's verdict
 * ({@linkcode NatsServerError}) and the connection itself
 * ({@linkcode NatsConnectionError}).
 *
 * @module
 */

import { FrameError } from "../errors.ts";

/**
 * Thrown when what the server sent is not NATS: an unknown operation, a
 * malformed control line (bad number, too few or too many arguments), a
 * payload not followed by `\r\n`, an `INFO` that is not the JSON it should
 * be, or input past a limit: a control line longer than `maxControlLine`, or
 * a message announcing more than `maxPayload` bytes, thrown as soon as its
 * control line is readable, before the payload is buffered. The message says
 * what was wrong, shows the start of the offending line, and names the limit
 * when one was passed.
 *
 * It is a {@linkcode FrameError}: like every framing failure of bab's
 * readers, the stream cannot be resynchronised after it, so code that
 * already closes the connection on a `FrameError` does the right thing
 * here too. `frameLength` is the announced payload length, or the bytes
 * searched for a control line's end, and `maxFrameLength` the limit that
 * length broke; both are `NaN` when the input was malformed rather than too
 * long.
 *
 * @example A message announcing more than the receiver accepts
 * ```ts
 * import { BufferPool, FrameError } from "@bab/bab";
 * import { NatsProtocolError, NatsReceiver } from "@bab/bab/nats";
 * import assert from "node:assert/strict";
 *
 * const pool = new BufferPool({ bufferSize: 8192, bufferCount: 2 });
 * const receiver = new NatsReceiver(pool, {
 *   message() {},
 *   info() {},
 *   ping() {},
 *   pong() {},
 *   ok() {},
 *   error() {},
 * }, { maxPayload: 1024 });
 * assert.throws(() => receiver.push(new TextEncoder().encode("MSG big 1 5000\r\n")), (error) => {
 *   assert.ok(error instanceof NatsProtocolError);
 *   assert.ok(error instanceof FrameError);
 *   assert.equal(error.frameLength, 5000);
 *   assert.equal(error.maxFrameLength, 1024);
 *   return true;
 * });
 * assert.equal(pool.stats().inUse, 0); // the receiver closed
 * ```
 */
export class NatsProtocolError extends FrameError {
  /**
   * Makes the error.
   *
   * @param message What was wrong, with the start of the offending line.
   * @param frameLength The announced or searched length; `NaN` by default.
   * @param maxFrameLength The limit it broke; `NaN` by default.
   */
  constructor(message: string, frameLength: number = NaN, maxFrameLength: number = NaN) {
    super(message, frameLength, maxFrameLength);
    this.name = "NatsProtocolError";
  }
}

/**
 * Error texts after which the server keeps the connection open: it refused
 * one operation, not the client. Compared case-insensitively with the start
 * of the text (servers have changed the case of some over the years).
 */
const NOT_FATAL = [
  // "Permissions Violation for Publish to ...", "... for Subscription to ...",
  // "... for Publish with Reply of ...": the operation was dropped.
  "permissions violation",
  // A SUB (and, with pedantic, a PUB) on a malformed subject.
  "invalid subject",
  "invalid publish subject",
  // A SUB past the account's or user's max_subscriptions.
  "maximum subscriptions exceeded",
];

/**
 * A `-ERR` the server sent: `serverMessage` is its text without the quotes.
 *
 * `fatal` says whether the server closes the connection after it. Most
 * `-ERR`s are fatal ('Authorization Violation', 'Unknown Protocol
 * Operation', 'Maximum Payload Violation', 'Stale Connection', 'Maximum
 * Connections Exceeded', ...). These are not, as nats-server 2.x sends them
 * and keeps reading (checked against nats-server 2.9):
 *
 * - `Permissions Violation for Publish to "<subject>"` (and `for
 *   Subscription to`, `for Publish with Reply of`, `..., too many tokens`):
 *   that operation was refused;
 * - `Invalid Subject` and `Invalid Publish Subject`: a SUB, or with
 *   `pedantic` a PUB, on a malformed subject;
 * - `Maximum Subscriptions Exceeded`: a SUB past `max_subscriptions`.
 *
 * A text not on that list counts as fatal, so that an error new to this list
 * ends the connection rather than leaving it in doubt.
 *
 * @example Telling a refused publish from a closed connection
 * ```ts
 * import { NatsServerError } from "@bab/bab/nats";
 * import assert from "node:assert/strict";
 *
 * const refused = new NatsServerError(`Permissions Violation for Publish to "admin.x"`);
 * assert.equal(refused.fatal, false);
 * assert.equal(refused.serverMessage, `Permissions Violation for Publish to "admin.x"`);
 * assert.equal(new NatsServerError("Authorization Violation").fatal, true);
 * ```
 */
export class NatsServerError extends Error {
  /** The server's text, without the quotes around it. */
  readonly serverMessage: string;
  /** Whether the server closes the connection after this error. */
  readonly fatal: boolean;

  /**
   * Makes the error; `fatal` follows from the text.
   *
   * @param serverMessage The text of the `-ERR`, without its quotes.
   */
  constructor(serverMessage: string) {
    super(`The NATS server sent an error: '${serverMessage}'`);
    this.name = "NatsServerError";
    this.serverMessage = serverMessage;
    const text = serverMessage.toLowerCase();
    this.fatal = !NOT_FATAL.some((start) => text.startsWith(start));
  }
}

/**
 * The connection to the server failed or closed: it could not be made, the
 * server went away, a read or write on the socket failed, or the server
 * stopped answering PINGs. `cause`, when set, is the underlying error.
 *
 * @example Wrapping a socket's failure
 * ```ts
 * import { NatsConnectionError } from "@bab/bab/nats";
 * import assert from "node:assert/strict";
 *
 * const reset = new Error("connection reset");
 * const error = new NatsConnectionError("The NATS connection was lost", { cause: reset });
 * assert.equal(error.name, "NatsConnectionError");
 * assert.equal(error.cause, reset);
 * ```
 */
export class NatsConnectionError extends Error {
  /**
   * Makes the error.
   *
   * @param message What failed, and where.
   * @param options `cause`: the error underneath, such as the socket's.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "NatsConnectionError";
  }
}
