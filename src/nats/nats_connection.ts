/**
 * {@linkcode NatsConnection}: one TCP connection to a `nats-server`, doing
 * the protocol's chores (CONNECT, PING/PONG, SUB/UNSUB, `-ERR`), writing
 * through a {@linkcode WriteFlusher} piped to the socket and reading into
 * pool memory with a {@linkcode NatsReceiver}.
 *
 * @module
 */
import type { BufferPool } from "../buffer_pool.ts";
import { WriteFlusher } from "../write_flusher.ts";
import type { ByteSink } from "../write_flusher_options.ts";
import { Writer } from "../writer.ts";
import { NatsConnectionError, type NatsServerError } from "./nats_errors.ts";
import type { NatsMessage } from "./nats_message.ts";
import { NatsPublisher } from "./nats_publisher.ts";
import { NatsReceiver } from "./nats_receiver.ts";
import { type NatsServerInfo, parseServerInfo } from "./nats_server_info.ts";
import { NatsSubject } from "./nats_subject.ts";
import { type NatsHandler, NatsSubscription } from "./nats_subscription.ts";
import type { NatsConnectOptions, NatsPublisherHandle } from "./nats_connection_options.ts";
import { connectLine, readInfoLine } from "./_nats_handshake.ts";
import {
  checkMax,
  checkPositive,
  controlLineLimit,
  payloadLimit,
  validQueue,
} from "./_nats_limits.ts";
import { errorText, readFailure, writeFailure } from "./_nats_failures.ts";

/**
 * A connection to a `nats-server`. Publish through
 * {@linkcode NatsConnection.publisher} here, or from any worker with
 * {@linkcode attachPublisher} and {@linkcode NatsConnection.publisherHandle}:
 * every publisher's messages go out through the connection's flusher, many
 * per socket write. Subscribe with {@linkcode NatsConnection.subscribe}: each
 * message reaches its handler in place in pool memory.
 *
 * When the server goes away (or a PING goes unanswered too long, or a
 * fatal `-ERR` comes) the connection fails: {@linkcode NatsConnection.closed}
 * rejects with the reason, publishes in every worker reject with a
 * `ClosedError` whose cause it is, subscriptions end, and every buffer goes
 * back to the pool. It does not reconnect: connect again and subscribe again.
 *
 * @example Publishing to yourself
 * ```ts
 * import { BufferPool } from "@bab/bab";
 * import { NatsConnection, NatsSubject } from "@bab/bab/nats";
 *
 * async function hello(port: number): Promise<string[]> {
 *   const pool = new BufferPool({ bufferSize: 16 * 1024, bufferCount: 64 });
 *   const conn = await NatsConnection.connect({ pool, port });
 *   const received: string[] = [];
 *   conn.subscribe("greetings.*", (message) => received.push(message.text()));
 *   await conn.flush(); // the server has the SUB
 *   conn.publisher().tryPublishString(new NatsSubject("greetings.world"), "hello");
 *   await conn.flush(); // and the message, and has sent it back
 *   await conn.drain();
 *   return received; // ["hello"]
 * }
 * ```
 */
export class NatsConnection {
  /** Where every buffer of the connection comes from. */
  readonly pool: BufferPool;
  /** Writes what every publisher commits to the server's socket. */
  readonly flusher: WriteFlusher;
  /** The largest payload the connection publishes and receives. */
  readonly maxPayload: number;
  /**
   * Resolves once {@linkcode NatsConnection.close} or
   * {@linkcode NatsConnection.drain} finished; rejects with a
   * {@linkcode NatsConnectionError} (the server went away, a PING went
   * unanswered), a {@linkcode NatsServerError} (a fatal `-ERR`), a
   * {@linkcode NatsProtocolError} (the server sent what is not NATS), or
   * what a handler threw.
   */
  readonly closed: Promise<void>;
  #info: NatsServerInfo;
  readonly #conn: Deno.Conn;
  /** This worker's writer: control lines, and this worker's publisher. */
  readonly #writer: Writer;
  readonly #receiver: NatsReceiver;
  readonly #publisher: NatsPublisher;
  readonly #subscriptions = new Map<number, NatsSubscription>();
  #nextSid = 1;
  /** One entry per PING sent and not answered: what to call when its PONG comes. */
  readonly #pongs: ((error?: unknown) => void)[] = [];
  readonly #maxPingsOut: number;
  readonly #pinger: ReturnType<typeof setInterval>;
  readonly #onError: ((error: NatsServerError) => void) | undefined;
  /** Stops the flusher's pipe at once when the connection fails. */
  readonly #stop = new AbortController();
  readonly #piped: Promise<void>;
  readonly #reading: Promise<void>;
  #state: "open" | "closing" | "closed" = "open";
  #resolveClosed!: () => void;
  #rejectClosed!: (reason: unknown) => void;

  /**
   * Connects to a server: reads its INFO, sends CONNECT, and resolves once
   * the server answered a PING after it (so a refused login rejects here).
   *
   * @param options Where the server is, who we are, and the pool to use.
   * @returns The open connection.
   * @throws {NatsConnectionError} If the server cannot be reached, or does
   * not send INFO or answer within `timeout`.
   * @throws {NatsServerError} If the server refuses the connection (e.g. an
   * authorization violation).
   * @throws {RangeError} If an option is out of range, or the pool's buffers
   * are too small for `maxPayload`.
   */
  static async connect(options: NatsConnectOptions): Promise<NatsConnection> {
    const timeout = options.timeout ?? 5000;
    checkPositive("timeout", timeout);
    const hostname = options.hostname ?? "127.0.0.1";
    const port = options.port ?? 4222;
    let conn: Deno.TcpConn;
    try {
      conn = await Deno.connect({ hostname, port });
    } catch (error) {
      throw new NatsConnectionError(
        `Cannot connect to the NATS server at ${hostname}:${port}: ${errorText(error)}`,
        { cause: error },
      );
    }
    let connection: NatsConnection;
    try {
      const { line, rest } = await readInfoLine(conn, controlLineLimit(options.pool), timeout);
      connection = new NatsConnection(conn, parseServerInfo(line), options, rest);
    } catch (error) {
      try {
        conn.close();
      } catch {
        // The handshake's timeout closed it.
      }
      throw error;
    }
    await connection.#greeted(options, timeout);
    return connection;
  }

  private constructor(
    conn: Deno.Conn,
    info: NatsServerInfo,
    options: NatsConnectOptions,
    rest: Uint8Array,
  ) {
    const pool = options.pool;
    this.pool = pool;
    this.#conn = conn;
    this.#info = info;
    const maxControlLine = controlLineLimit(pool);
    this.maxPayload = payloadLimit(info, options, pool.bufferSize - maxControlLine - 4);
    this.#maxPingsOut = options.maxPingsOut ?? 2;
    checkPositive("maxPingsOut", this.#maxPingsOut);
    const pingInterval = options.pingInterval ?? 120_000;
    checkPositive("pingInterval", pingInterval);
    this.#onError = options.onError;
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    this.closed = promise;
    this.#resolveClosed = resolve;
    this.#rejectClosed = reject;
    // Nobody may listen: a failure is still reported where it is awaited.
    promise.catch(() => {});
    this.#receiver = new NatsReceiver(pool, {
      message: (message) => this.#message(message),
      info: (next) => this.#info = next,
      ping: () => this.#send("PONG\r\n"),
      pong: () => this.#pongs.shift()?.(),
      ok: () => {},
      error: (error) => this.#serverError(error),
    }, { maxPayload: this.maxPayload, maxControlLine });
    this.flusher = new WriteFlusher(pool);
    this.#writer = new Writer(pool, this.flusher);
    this.#publisher = new NatsPublisher(this.#writer, { maxPayload: this.maxPayload });
    // The socket's write errors become the connection's own, so that every
    // writer's ClosedError has a NatsConnectionError as its cause, whichever
    // side notices the lost server first.
    const socket: ByteSink = {
      write: (bytes) =>
        conn.write(bytes).catch((error: unknown) => {
          throw writeFailure(error);
        }),
    };
    this.#piped = this.flusher.pipeTo(socket, { signal: this.#stop.signal }).then(
      () => {},
      (error) => this.#fail(writeFailure(error)),
    );
    if (rest.length > 0) this.#receiver.push(rest);
    this.#reading = this.#receiver.read(conn).then(
      () => this.#fail(new NatsConnectionError("The NATS server closed the connection")),
      (error) => this.#fail(readFailure(error)),
    );
    this.#pinger = setInterval(() => this.#ping(), pingInterval);
  }

  /** What the server said about itself, last (it may send INFO again, e.g. as a cluster changes). */
  get info(): NatsServerInfo {
    return this.#info;
  }

  /** Whether the connection ended (closed, drained or failed). */
  get ended(): boolean {
    return this.#state === "closed";
  }

  /**
   * This worker's publisher: shares the connection's own writer, so a
   * subscribe and a publish made after it in this worker reach the server in
   * that order.
   */
  publisher(): NatsPublisher {
    return this.#publisher;
  }

  /**
   * What another worker needs to publish through this connection with
   * {@linkcode attachPublisher}; post it. The pool must be shared.
   *
   * @throws {TypeError} If the pool is not shared.
   */
  get publisherHandle(): NatsPublisherHandle {
    return { pool: this.pool.handle, flusher: this.flusher.handle, maxPayload: this.maxPayload };
  }

  /**
   * Subscribes to `subject` (wildcards `*` and `>` allowed), calling
   * `handler` with each message. The `SUB` goes out with this worker's next
   * flush (at the end of the microtask); {@linkcode NatsConnection.flush}
   * resolves once the server has it.
   *
   * @param subject What to listen on.
   * @param handler Called with each message; see {@linkcode NatsHandler}.
   * @param options `queue`: join this queue group, so that each message goes
   * to one member. `max`: end after this many messages.
   * @returns The subscription.
   * @throws {TypeError} If the subject or queue name is invalid.
   * @throws {RangeError} If `max` is not a positive integer.
   * @throws {NatsConnectionError} If the connection ended.
   */
  subscribe(
    subject: NatsSubject | string,
    handler: NatsHandler,
    options?: { queue?: string; max?: number },
  ): NatsSubscription {
    this.#checkOpen("subscribe");
    const text = typeof subject === "string" ? new NatsSubject(subject).text : subject.text;
    const queue = options?.queue;
    if (queue !== undefined && !validQueue(queue)) {
      throw new TypeError(
        `Cannot subscribe with queue group ${
          JSON.stringify(queue)
        }: a name of one or more printable characters, no spaces`,
      );
    }
    if (options?.max !== undefined) checkMax(options.max);
    const sid = this.#nextSid++;
    const subscription = new NatsSubscription(this, sid, text, queue, handler);
    this.#subscriptions.set(sid, subscription);
    this.#send(queue === undefined ? `SUB ${text} ${sid}\r\n` : `SUB ${text} ${queue} ${sid}\r\n`);
    if (options?.max !== undefined) subscription.unsubscribe(options.max);
    return subscription;
  }

  /**
   * Resolves once the server has processed everything this worker sent
   * before the call (a PING, answered by its PONG).
   *
   * @throws {NatsConnectionError} If the connection ended first.
   */
  flush(): Promise<void> {
    if (this.#state === "closed") {
      return Promise.reject(new NatsConnectionError("Cannot flush: the NATS connection ended"));
    }
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    this.#pongs.push((error) => error === undefined ? resolve() : reject(error));
    this.#send("PING\r\n");
    return promise;
  }

  /**
   * Unsubscribes every subscription, waits until the server has processed
   * all this worker sent and has sent what it had for them, then closes.
   * When retained packets hold every buffer, it waits for their release.
   */
  async drain(): Promise<void> {
    if (this.#state !== "open") return this.closed;
    for (const subscription of this.#subscriptions.values()) subscription.unsubscribe();
    try {
      await this.flush();
    } catch {
      // Failed meanwhile: closed says why.
      return this.closed;
    }
    await this.close();
  }

  /**
   * Closes the connection: what this worker's writers committed is sent
   * first, then the socket closes; subscriptions end, publishes reject from
   * then on, and every buffer goes back to the pool. No handler is called
   * once it is (messages still on their way are dropped), even when a
   * handler calls it. Idempotent. A server that stopped reading fails it as
   * stale after `maxPingsOut` ping intervals rather than hang it.
   */
  async close(): Promise<void> {
    if (this.#state !== "open") return this.closed.catch(() => {});
    this.#state = "closing";
    // Reservations this worker's publisher left open are cancelled the NATS
    // way (the writer's own close would zero them: a protocol error).
    this.#publisher.close();
    this.flusher.close();
    await this.#piped;
    clearInterval(this.#pinger);
    this.#finish(undefined);
    await this.#settled();
  }

  /** @ignore */
  _unsubscribe(subscription: NatsSubscription, max: number | undefined): void {
    if (this.#state === "closed") return;
    this.#send(
      max === undefined ? `UNSUB ${subscription.sid}\r\n` : `UNSUB ${subscription.sid} ${max}\r\n`,
    );
    if (max === undefined) this.#subscriptions.delete(subscription.sid);
  }

  #message(message: NatsMessage): void {
    // Closing: the messages read meanwhile are dropped.
    if (this.#state !== "open") return;
    const subscription = this.#subscriptions.get(message.sid);
    // Unsubscribed while the message was on its way.
    if (subscription === undefined) return;
    if (subscription._deliver(message)) this.#subscriptions.delete(message.sid);
  }

  /** Writes a control line with this worker's writer, waiting for room if need be. */
  #send(line: string): void {
    // Closing or closed: the writer is, too (a PONG for a late PING has nowhere to go).
    if (this.#state !== "open") return;
    if (this.#writer.tryWriteString(line)) return;
    this.#writer.writeString(line).catch((error) => {
      // close() closed the writer under a line waiting for a buffer: not a failure.
      if (this.#state === "open") this.#fail(error);
    });
  }

  #ping(): void {
    if (this.#pongs.length >= this.#maxPingsOut) {
      this.#fail(
        new NatsConnectionError(
          `The NATS connection is stale: ${this.#pongs.length} PINGs went unanswered (maxPingsOut ${this.#maxPingsOut})`,
        ),
      );
      return;
    }
    this.#pongs.push(() => {});
    this.#send("PING\r\n");
  }

  #serverError(error: NatsServerError): void {
    if (error.fatal) this.#fail(error);
    else this.#onError?.(error);
  }

  /** Sends CONNECT and a PING, and waits for the PONG (or the refusal). */
  async #greeted(options: NatsConnectOptions, timeout: number): Promise<void> {
    this.#send(connectLine(options));
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new NatsConnectionError(`The NATS server did not answer CONNECT within ${timeout} ms`),
          ),
        timeout,
      );
    });
    try {
      // A refusal (-ERR, then the server closes) fails the connection: closed rejects.
      await Promise.race([this.flush(), this.closed.then(() => {}), late]);
    } catch (error) {
      this.#fail(error);
      await this.#settled();
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  #checkOpen(what: string): void {
    if (this.#state !== "open") {
      throw new NatsConnectionError(`Cannot ${what}: the NATS connection ended`);
    }
  }

  /**
   * Fails the connection with `reason`, unless it ended already. Does not
   * wait for the pipe and the reader to end: it is called from their own
   * endings (see {@link #settled}).
   */
  #fail(reason: unknown): void {
    if (this.#state === "closed") return;
    this.#state = "closed";
    clearInterval(this.#pinger);
    this.#stop.abort(reason);
    this.flusher.close();
    this.#finish(reason);
  }

  /** Resolves once the pipe and the reader have ended, and with them every buffer they held. */
  async #settled(): Promise<void> {
    await this.#piped;
    await this.#reading;
  }

  /** Ends everything: the socket, the reader, pending flushes, subscriptions. */
  #finish(reason: unknown): void {
    this.#state = "closed";
    try {
      this.#conn.close();
    } catch {
      // Closed already.
    }
    this.#receiver.close();
    const ended = reason ?? new NatsConnectionError("The NATS connection was closed");
    for (const pong of this.#pongs.splice(0)) pong(ended);
    for (const subscription of this.#subscriptions.values()) subscription._end();
    this.#subscriptions.clear();
    if (reason === undefined) this.#resolveClosed();
    else this.#rejectClosed(reason);
  }
}

/**
 * A publisher in this worker for a connection made in another one, from its
 * {@linkcode NatsConnection.publisherHandle}: a `Writer` of this worker's
 * own on the connection's flusher.
 *
 * @example In a worker
 * ```ts
 * import { BufferPool, type BufferPoolHandle } from "@bab/bab";
 * import { attachPublisher, type NatsPublisherHandle, NatsSubject } from "@bab/bab/nats";
 *
 * async function produce(pool: BufferPoolHandle, nats: NatsPublisherHandle): Promise<void> {
 *   const publisher = attachPublisher(BufferPool.attach(pool), nats);
 *   const subject = new NatsSubject("ticks");
 *   for (let i = 0; i < 1000; i++) await publisher.publish(subject, new Uint8Array(32));
 *   publisher.close(); // cancels what it left open, the NATS way, and sends the rest
 * }
 * ```
 *
 * @param pool This worker's object of the connection's (shared) pool.
 * @param handle The connection's publisher handle.
 * @returns A publisher; close it when done.
 */
export function attachPublisher(pool: BufferPool, handle: NatsPublisherHandle): NatsPublisher {
  return new NatsPublisher(new Writer(pool, handle.flusher), { maxPayload: handle.maxPayload });
}
