/**
 * {@linkcode NatsServerHandlers}: what a {@linkcode NatsReceiver} calls for
 * each op the server sends.
 *
 * @module
 */

import type { NatsServerError } from "./nats_errors.ts";
import type { NatsMessage } from "./nats_message.ts";
import type { NatsServerInfo } from "./nats_server_info.ts";

/**
 * Called by a {@linkcode NatsReceiver}, one call per server op, in the order
 * the server sent them, synchronously, during the `push` or `read` that
 * completed the op. A handler that throws stops the receiver: the error
 * propagates out of that `push` or `read` and the receiver is closed. A
 * handler may call {@linkcode NatsReceiver.close} (the ops after this one
 * are not dispatched), but not `push` or `read`.
 *
 * @example Counting what the server sends
 * ```ts
 * import { BufferPool } from "@bab/bab";
 * import { NatsReceiver, type NatsServerHandlers } from "@bab/bab/nats";
 * import assert from "node:assert/strict";
 *
 * const counts = { message: 0, info: 0, ping: 0, pong: 0, ok: 0, error: 0 };
 * const handlers: NatsServerHandlers = {
 *   message: () => void counts.message++,
 *   info: () => void counts.info++,
 *   ping: () => void counts.ping++,
 *   pong: () => void counts.pong++,
 *   ok: () => void counts.ok++,
 *   error: () => void counts.error++,
 * };
 * const pool = new BufferPool({ bufferSize: 8192, bufferCount: 1 });
 * const receiver = new NatsReceiver(pool, handlers);
 * receiver.push(new TextEncoder().encode("PING\r\nPONG\r\n+OK\r\n-ERR 'Invalid Subject'\r\n"));
 * receiver.close();
 * assert.deepEqual(counts, { message: 0, info: 0, ping: 1, pong: 1, ok: 1, error: 1 });
 * ```
 */
export interface NatsServerHandlers {
  /**
   * A message (`MSG`, or `HMSG` with headers). The one {@linkcode NatsMessage}
   * object of the receiver, valid during this call only; keep its payload
   * with {@linkcode NatsMessage.retain}.
   */
  message(message: NatsMessage): void;
  /** An `INFO`: the server's details, sent first and again when they change. */
  info(info: NatsServerInfo): void;
  /** A `PING`: answer it with a `PONG`, or the server closes the connection. */
  ping(): void;
  /** A `PONG`: the answer to the oldest `PING` the client sent. */
  pong(): void;
  /** A `+OK`: an acknowledgement, sent only to clients that CONNECT with `verbose`. */
  ok(): void;
  /**
   * A `-ERR`. When `error.fatal`, the server closes the connection after it;
   * otherwise it refused one operation and goes on.
   */
  error(error: NatsServerError): void;
}
