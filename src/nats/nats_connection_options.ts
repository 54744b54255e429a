/**
 * Options of {@linkcode NatsConnection.connect}, and the handle that lets a
 * worker publish through a connection made in another worker.
 *
 * @module
 */
import type { BufferPool, BufferPoolHandle } from "../buffer_pool.ts";
import type { WriteFlusherHandle } from "../write_flusher.ts";
import type { NatsServerError } from "./nats_errors.ts";

/**
 * How to reach a `nats-server` and who to say we are.
 *
 * @example
 * ```ts
 * import { BufferPool } from "@bab/bab";
 * import type { NatsConnectOptions } from "@bab/bab/nats";
 *
 * const options: NatsConnectOptions = {
 *   pool: new BufferPool({ bufferSize: 64 * 1024, bufferCount: 64, shared: true }),
 *   port: 4222,
 *   name: "telemetry-gateway",
 *   maxPayload: 16 * 1024,
 * };
 * ```
 */
export interface NatsConnectOptions {
  /**
   * The pool that every buffer of the connection comes from: what is written
   * to the server, and what is read from it. Each buffer must hold the
   * largest message the connection receives (`maxPayload`) with its control
   * line (up to 4,096 bytes) around it. The connection keeps two even when
   * idle (its reader's and its writer's); a writer in another worker needs
   * a third, and waits for one as long as there is none.
   */
  pool: BufferPool;
  /** The server's host. Default `"127.0.0.1"`. */
  hostname?: string;
  /** The server's port. Default 4222. */
  port?: number;
  /** This client's name, as the server's monitoring shows it. */
  name?: string;
  /** A user and password, for a server with `authorization { user, password }`. */
  user?: string;
  /** The password that goes with `user`. */
  pass?: string;
  /** A token, for a server with `authorization { token }`. */
  token?: string;
  /**
   * The largest payload this client publishes and receives. Default: the
   * server's `max_payload`, lowered to what one of the pool's buffers holds.
   * A larger message from the server fails the connection with a
   * {@linkcode NatsProtocolError} before it is buffered.
   */
  maxPayload?: number;
  /**
   * Ask the server to answer a request that has no subscriber with a 503
   * status message (`no_responders`; needs headers). Default false.
   */
  noResponders?: boolean;
  /** Send a PING after this many milliseconds of the connection's life. Default 120,000. */
  pingInterval?: number;
  /**
   * PINGs left unanswered before the connection counts as stale and fails.
   * Default 2.
   */
  maxPingsOut?: number;
  /** Milliseconds to wait for the server's INFO and its answer to CONNECT. Default 5,000. */
  timeout?: number;
  /**
   * Called with each `-ERR` the server sends that does not close the
   * connection (a permissions violation, say). Errors that close it reject
   * {@linkcode NatsConnection.closed} instead.
   */
  onError?: (error: NatsServerError) => void;
}

/**
 * What a worker needs to publish through a connection made in another
 * worker: post it, and call {@linkcode attachPublisher} there. The pool
 * must be shared (`shared: true`).
 *
 * @example In a publisher worker
 * ```ts
 * import { BufferPool, type BufferPoolHandle } from "@bab/bab";
 * import { attachPublisher, type NatsPublisherHandle, NatsSubject } from "@bab/bab/nats";
 *
 * // What the worker gets from postMessage({ pool: pool.handle, nats: conn.publisherHandle }).
 * function onStart(data: { pool: BufferPoolHandle; nats: NatsPublisherHandle }): void {
 *   const publisher = attachPublisher(BufferPool.attach(data.pool), data.nats);
 *   publisher.tryPublish(new NatsSubject("ticks"), new Uint8Array(32));
 * }
 * ```
 */
export interface NatsPublisherHandle {
  /** The connection's pool. */
  readonly pool: BufferPoolHandle;
  /** The connection's flusher, which writes to the server's socket. */
  readonly flusher: WriteFlusherHandle;
  /** The largest payload the connection publishes. */
  readonly maxPayload: number;
}
