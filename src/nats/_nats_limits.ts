// The limits a NATS connection checks its options against: the longest
// control line and payload its pool's buffers can hold, and what a queue
// group's name may be.

import type { BufferPool } from "../buffer_pool.ts";
import type { NatsConnectOptions } from "./nats_connection_options.ts";
import type { NatsServerInfo } from "./nats_server_info.ts";

/** The longest control line the connection accepts from the server: NATS's default. */
const MAX_CONTROL_LINE = 4096;

/**
 * The longest control line to accept: NATS's default, or half a buffer when
 * the pool's are small, so that a message still has room beside it.
 */
export function controlLineLimit(pool: BufferPool): number {
  return Math.min(MAX_CONTROL_LINE, Math.floor(pool.bufferSize / 2));
}

/**
 * The largest payload: the option, else the server's lowered to what a
 * buffer holds beside a control line (`room`); never over the server's.
 */
export function payloadLimit(
  info: NatsServerInfo,
  options: NatsConnectOptions,
  room: number,
): number {
  const limit = options.maxPayload ?? Math.min(info.max_payload, room);
  if (!(Number.isInteger(limit) && limit > 0)) {
    throw new RangeError(`Cannot connect with maxPayload ${limit}: give a positive integer`);
  }
  if (limit > info.max_payload) {
    throw new RangeError(
      `Cannot connect with maxPayload ${limit}: the server's max_payload is ${info.max_payload}`,
    );
  }
  if (limit > room) {
    throw new RangeError(
      `Cannot connect with maxPayload ${limit}: the pool's buffers of ${options.pool.bufferSize} bytes hold a payload of at most ${room} beside a control line`,
    );
  }
  return limit;
}

/** A queue group's name: one or more printable characters, no whitespace. */
export function validQueue(queue: string): boolean {
  if (queue.length === 0) return false;
  for (let i = 0; i < queue.length; i++) {
    const code = queue.charCodeAt(i);
    if (code <= 32 || code === 127) return false;
  }
  return true;
}

/** A count of messages to unsubscribe after must be a positive integer. */
export function checkMax(max: number): void {
  if (!(Number.isInteger(max) && max > 0)) {
    throw new RangeError(`Cannot unsubscribe after ${max} messages: give a positive integer`);
  }
}

export function checkPositive(name: string, value: number): void {
  if (!(value > 0)) {
    throw new RangeError(`Cannot connect with ${name} ${value}: give a number above 0`);
  }
}
