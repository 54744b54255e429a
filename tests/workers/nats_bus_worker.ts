/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />
// A worker of tests/nats/nats_workers_test.ts: either a publisher, writing
// numbered messages of mixed sizes through the main thread's NATS connection
// (a Writer of its own, or a handle of a SharedWriter), or a subscriber with
// a connection of its own, checking every message. One request, one reply.
import {
  BufferPool,
  type BufferPoolHandle,
  SharedWriter,
  type SharedWriterHandle,
} from "../../mod.ts";
import {
  attachPublisher,
  NatsConnection,
  NatsPublisher,
  type NatsPublisherHandle,
  NatsSubject,
} from "../../nats.ts";
import { busMessage, readBusMessage } from "../nats/_bus_messages.ts";

/** What the main thread asks. */
export type BusRequest =
  | {
    kind: "publish";
    pool: BufferPoolHandle;
    nats: NatsPublisherHandle;
    /** A SharedWriter to publish through instead of a Writer of this worker's own. */
    shared: SharedWriterHandle | null;
    publisher: number;
    count: number;
    subject: string;
  }
  | { kind: "subscribe"; port: number; subject: string; publishers: number; count: number }
  | { kind: "collect" };

/** The reply: what the worker did, or what failed. */
export type BusReply =
  | { ok: true; received?: number[]; inUse?: number }
  | { ok: false; error: string };

let collected: Promise<BusReply> | null = null;

async function publish(request: Extract<BusRequest, { kind: "publish" }>): Promise<BusReply> {
  const pool = BufferPool.attach(request.pool);
  const publisher = request.shared === null
    ? attachPublisher(pool, request.nats)
    : new NatsPublisher(SharedWriter.attach(pool, request.shared), {
      maxPayload: request.nats.maxPayload,
    });
  const subject = new NatsSubject(request.subject);
  for (let i = 0; i < request.count; i++) {
    await publisher.publish(subject, busMessage(request.publisher, i));
  }
  publisher.close();
  pool.detach();
  return { ok: true };
}

async function subscribe(request: Extract<BusRequest, { kind: "subscribe" }>): Promise<BusReply> {
  const pool = new BufferPool({ bufferSize: 16 * 1024, bufferCount: 16 });
  const conn = await NatsConnection.connect({ pool, port: request.port });
  const next = new Array<number>(request.publishers).fill(0);
  let total = 0;
  const all = Promise.withResolvers<void>();
  let failure: string | null = null;
  conn.subscribe(request.subject, (message) => {
    const { publisher, seq } = readBusMessage(message.payload);
    if (seq !== next[publisher]) {
      failure ??= `publisher ${publisher}: got ${seq}, expected ${next[publisher]}`;
    }
    next[publisher] = seq + 1;
    if (++total === request.publishers * request.count) all.resolve();
  });
  await conn.flush();
  collected = (async () => {
    await Promise.race([all.promise, conn.closed]);
    await conn.drain();
    if (failure !== null) return { ok: false, error: failure };
    return { ok: true, received: next, inUse: pool.stats().inUse };
  })();
  return { ok: true };
}

self.onmessage = async (event: MessageEvent<BusRequest>) => {
  const request = event.data;
  try {
    const reply = request.kind === "publish"
      ? await publish(request)
      : request.kind === "subscribe"
      ? await subscribe(request)
      : await collected!;
    self.postMessage(reply satisfies BusReply);
  } catch (error) {
    self.postMessage({ ok: false, error: String(error) } satisfies BusReply);
  }
};
