// The npm `nats` client (2.29.3) as the other end in interop tests: connect
// it to a test server (tests/nats/_nats_server.ts), publish numbered
// messages of mixed sizes, and collect messages on a subject. Message i's
// payload is fully determined by i, so either end can check every byte of
// what the other sent, in order (NATS keeps one connection's order).
import { connect, type Msg, type NatsConnection } from "npm:nats@2.29.3";

export type { Msg, NatsConnection };

/** Payload sizes cycled through by default: empty, tiny, around 32 B, and across 4 KiB and 64 KiB. */
export const MIXED_SIZES: readonly number[] = [0, 1, 31, 32, 33, 1024, 4095, 65_537];

/** How to log in, as the test server was configured. */
export interface NpmLogin {
  user?: string;
  pass?: string;
  token?: string;
}

/**
 * Connects the npm client to `server`, without reconnecting, so that a
 * server that goes away fails the test instead of leaving the client
 * waiting for it. Close it with `await nc.close()`.
 *
 * @param server where the server listens (a NatsServer from _nats_server.ts)
 * @param login user/pass or token, if the server requires them
 * @returns the open connection
 */
export function connectNpm(
  server: { readonly hostname: string; readonly port: number },
  login: NpmLogin = {},
): Promise<NatsConnection> {
  return connect({
    servers: `${server.hostname}:${server.port}`,
    reconnect: false,
    name: "bab-interop-npm",
    ...login,
  });
}

/**
 * The payload of numbered message `i`: `sizes[i % sizes.length]` bytes,
 * byte j being (i * 31 + j) & 0xff, so that a swapped, shifted or cut
 * message shows.
 *
 * @param i the message's number, from 0
 * @param sizes the sizes to cycle through
 * @returns a new array
 */
export function numberedPayload(i: number, sizes: readonly number[] = MIXED_SIZES): Uint8Array {
  const size = sizes[i % sizes.length]!;
  const bytes = new Uint8Array(size);
  for (let j = 0; j < size; j++) bytes[j] = (i * 31 + j) & 0xff;
  return bytes;
}

/**
 * Checks that `bytes` is exactly numbered message `i`'s payload.
 *
 * @param i the number it should have
 * @param bytes what arrived
 * @param sizes the sizes the sender cycled through
 * @throws {Error} naming the message, and the first byte that differs or both lengths
 */
export function checkNumbered(
  i: number,
  bytes: Uint8Array,
  sizes: readonly number[] = MIXED_SIZES,
): void {
  const expected = numberedPayload(i, sizes);
  if (bytes.length !== expected.length) {
    throw new Error(`Message ${i} has ${bytes.length} bytes, expected ${expected.length}`);
  }
  for (let j = 0; j < expected.length; j++) {
    if (bytes[j] !== expected[j]) {
      throw new Error(`Message ${i} differs at byte ${j}: ${bytes[j]}, expected ${expected[j]}`);
    }
  }
}

/**
 * Publishes numbered messages 0 to `count` - 1 on `subject`, then flushes:
 * once it resolves, the server has had every one.
 *
 * @param nc an npm connection, from {@link connectNpm}
 * @param subject where to publish
 * @param count how many
 * @param sizes the payload sizes to cycle through
 */
export async function npmPublishNumbered(
  nc: NatsConnection,
  subject: string,
  count: number,
  sizes: readonly number[] = MIXED_SIZES,
): Promise<void> {
  for (let i = 0; i < count; i++) nc.publish(subject, numberedPayload(i, sizes));
  await nc.flush();
}

/** A subscription that gathers a known number of messages. */
export interface Collecting {
  /** The messages in arrival order, once `count` arrived; rejects on timeout or a closed connection. */
  readonly messages: Promise<Msg[]>;
}

/**
 * Subscribes to `subject` and resolves once the server has the
 * subscription, so that anything published after it arrives; the returned
 * `messages` then resolves with the first `count` messages. It fails after
 * `timeoutMs` rather than hanging the test, saying how many arrived. The
 * subscription ends either way.
 *
 * @param nc an npm connection, from {@link connectNpm}
 * @param subject the subject (wildcards allowed)
 * @param count how many messages to wait for
 * @param timeoutMs how long to wait for all of them, from now
 * @returns once subscribed, the messages to come
 * @throws {Error} when the subscription cannot be flushed to the server
 */
export async function npmCollect(
  nc: NatsConnection,
  subject: string,
  count: number,
  timeoutMs = 10_000,
): Promise<Collecting> {
  const got: Msg[] = [];
  let settle!: (error: Error | null) => void;
  const messages = new Promise<Msg[]>((resolve, reject) => {
    settle = (error) => error === null ? resolve(got) : reject(error);
  });
  // It may fail while the caller awaits something else (the server's stop,
  // say): that is not an unhandled rejection, the caller awaits it next.
  messages.catch(() => {});
  // Keeps only the settle it was given; later messages, the timer and the
  // connection's end then change nothing.
  let once: ((error: Error | null) => void) | null = (error) => {
    once = null;
    clearTimeout(timer);
    sub.unsubscribe();
    settle(error);
  };
  const timer = setTimeout(
    () =>
      once?.(new Error(`Got ${got.length} of ${count} messages on ${subject} in ${timeoutMs} ms`)),
    timeoutMs,
  );
  const sub = nc.subscribe(subject, {
    callback: (error, msg) => {
      if (error !== null) once?.(error);
      else if (got.push(msg) === count) once?.(null);
    },
  });
  nc.closed().then(() =>
    once?.(new Error(`The connection closed after ${got.length} of ${count} messages`))
  );
  if (count === 0) once(null);
  try {
    await nc.flush();
  } catch (error) {
    once?.(error instanceof Error ? error : new Error(String(error)));
    throw error;
  }
  return { messages };
}
