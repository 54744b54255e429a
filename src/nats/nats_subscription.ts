/**
 * {@linkcode NatsSubscription}: one `SUB` of a {@linkcode NatsConnection},
 * with its handler and its count of messages.
 *
 * @module
 */
import type { NatsMessage } from "./nats_message.ts";
import { checkMax } from "./_nats_limits.ts";

/**
 * Called with each message of a subscription, during the read that found
 * it: the message (a view reused for every message) is valid until the
 * handler returns. Keep the payload past the call with
 * {@linkcode NatsMessage.retain}, which holds a reference to pool memory
 * (no copy) until its packet is released. A handler that throws fails the
 * connection with that error.
 *
 * Retained packets pin their buffers: while they hold every buffer of the
 * pool the connection stalls, reading nothing and sending no PING or PONG,
 * until some are released (a server drops a client stalled too long).
 * {@linkcode NatsConnection.drain} waits for them too, as the messages
 * before its PONG need a buffer; {@linkcode NatsConnection.close} does not.
 *
 * @example Keeping payloads past the call, as packets on pool memory
 * ```ts
 * import type { Packet } from "@bab/bab";
 * import type { NatsHandler } from "@bab/bab/nats";
 *
 * const kept: Packet[] = [];
 * const keep: NatsHandler = (message) => {
 *   if (message.payloadEnd > message.payloadStart) kept.push(message.retain());
 * };
 * // Later, once done with them: for (const packet of kept) packet.release();
 * ```
 */
export type NatsHandler = (message: NatsMessage) => void;

/**
 * What a subscription needs of its connection: {@linkcode NatsConnection}
 * is one.
 *
 * @example
 * ```ts
 * import type { NatsConnection, NatsSubscriber } from "@bab/bab/nats";
 *
 * function owner(conn: NatsConnection): NatsSubscriber {
 *   return conn;
 * }
 * ```
 */
export interface NatsSubscriber {
  /** Sends `UNSUB <sid> [max]`, and forgets the subscription once it is done. */
  _unsubscribe(subscription: NatsSubscription, max: number | undefined): void;
}

/**
 * One subscription: the server sends every message on its subject (or a
 * share of them, in a queue group) to its handler, until it is unsubscribed,
 * reaches its `max`, or the connection ends.
 *
 * @example Counting bytes until the subscription ends
 * ```ts
 * import type { NatsConnection } from "@bab/bab/nats";
 *
 * async function countBytes(conn: NatsConnection): Promise<number> {
 *   let bytes = 0;
 *   const sub = conn.subscribe("ticks.>", (message) => {
 *     bytes += message.payloadEnd - message.payloadStart;
 *   }, { max: 1000 });
 *   await sub.closed; // after 1,000 messages, an unsubscribe(), or the connection's end
 *   return bytes;
 * }
 * ```
 */
export class NatsSubscription {
  /** The subscription id the server tags its messages with. */
  readonly sid: number;
  /** The subject (wildcards allowed) it listens on. */
  readonly subject: string;
  /** The queue group it belongs to, if any: each message goes to one member. */
  readonly queue: string | undefined;
  /** Resolves once it ends: unsubscribed, at its `max`, or the connection ended. */
  readonly closed: Promise<void>;
  readonly #handler: NatsHandler;
  readonly #owner: NatsSubscriber;
  #received = 0;
  /** Messages after which it ends (auto-unsubscribe), or Infinity. */
  #max = Infinity;
  #ended = false;
  readonly #end: () => void;

  /** @ignore Made by {@linkcode NatsConnection.subscribe}. */
  constructor(
    owner: NatsSubscriber,
    sid: number,
    subject: string,
    queue: string | undefined,
    handler: NatsHandler,
  ) {
    this.#owner = owner;
    this.sid = sid;
    this.subject = subject;
    this.queue = queue;
    this.#handler = handler;
    const { promise, resolve } = Promise.withResolvers<void>();
    this.closed = promise;
    this.#end = resolve;
  }

  /** Messages handed to the handler so far. */
  get received(): number {
    return this.#received;
  }

  /** Whether it ended. */
  get ended(): boolean {
    return this.#ended;
  }

  /**
   * Stops the subscription: at once, or, with `max`, once it has received
   * `max` messages in all (the server stops sending then too). Idempotent.
   *
   * @param max The total number of messages after which it ends.
   * @throws {RangeError} If `max` is not a positive integer.
   */
  unsubscribe(max?: number): void {
    if (max !== undefined) checkMax(max);
    if (this.#ended) return;
    if (max !== undefined && this.#received < max) {
      this.#max = max;
      this.#owner._unsubscribe(this, max);
      return;
    }
    this.#owner._unsubscribe(this, undefined);
    this._end();
  }

  /** @ignore Hands a message to the handler; true once the subscription is done. */
  _deliver(message: NatsMessage): boolean {
    this.#received++;
    this.#handler(message);
    if (this.#received < this.#max) return false;
    this._end();
    return true;
  }

  /** @ignore Ends it: unsubscribed, at its max, or the connection ended. */
  _end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#end();
  }
}
