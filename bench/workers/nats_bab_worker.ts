/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />
// A bab NATS worker for bench/nats_compare.ts: a publisher that publishes
// through the main thread's connection (a Writer of its own on the
// connection's flusher, bab's way: one socket, many writers), or a
// subscriber with a pool and connection of its own that counts (and, for
// the soak run, samples its heap after a GC every million messages). One
// reply per request from the main thread.
import { BufferPool, type BufferPoolHandle } from "../../mod.ts";
import {
  attachPublisher,
  NatsConnection,
  type NatsPublisher,
  type NatsPublisherHandle,
  NatsSubject,
} from "../../nats.ts";

/** What a worker is asked to do: start (connect, subscribe), go, close. */
export interface BabJob {
  role: "publisher" | "subscriber";
  /** The server's port, for the subscriber's connection. */
  port: number;
  /** The main thread's pool and connection, for a publisher that shares it; null: its own. */
  shared: { pool: BufferPoolHandle; nats: NatsPublisherHandle } | null;
  subject: string;
  size: number;
  /** For a publisher, what it sends; for the subscriber, what it waits for. */
  messages: number;
  /** The subscriber samples its heap every this many messages (0: never). */
  sampleEvery: number;
}

export type BabRequest = { kind: "start"; job: BabJob } | { kind: "go" } | { kind: "close" };

export type BabReply =
  | { kind: "ready" }
  | { kind: "done"; count: number; heap: number[] }
  | { kind: "closed"; inUse: number }
  | { kind: "error"; message: string };

declare const gc: (() => void) | undefined;

/** Messages a publisher sends before the timed run, to a subject nobody listens on. */
const WARM_UP = 300_000;

let conn: NatsConnection | null = null;
let pool: BufferPool | null = null;
let publisher: NatsPublisher | null = null;
let job: BabJob | null = null;
let count = 0;
const heap: number[] = [];

function reply(message: BabReply): void {
  self.postMessage(message);
}

async function start(next: BabJob): Promise<void> {
  job = next;
  if (next.role === "subscriber") {
    pool = new BufferPool({ bufferSize: 64 * 1024, bufferCount: 64 });
    conn = await NatsConnection.connect({ pool, port: next.port, name: "bab-bench-subscriber" });
    conn.closed.catch((error) => reply({ kind: "error", message: `${error} after ${count}` }));
    const every = next.sampleEvery;
    conn.subscribe(next.subject, () => {
      if (++count === next.messages) reply({ kind: "done", count, heap });
      else if (every > 0 && count % every === 0) {
        // After a GC: what stays, not what waits to be collected.
        gc?.();
        heap.push(Deno.memoryUsage().heapUsed);
      }
    });
    await conn.flush();
  } else {
    if (next.shared !== null) {
      pool = BufferPool.attach(next.shared.pool);
      publisher = attachPublisher(pool, next.shared.nats);
    } else {
      pool = new BufferPool({ bufferSize: 60 * 1024, bufferCount: 64 });
      conn = await NatsConnection.connect({ pool, port: next.port, name: "bab-bench-publisher" });
      conn.closed.catch((error) => reply({ kind: "error", message: `${error} after ${count}` }));
      publisher = conn.publisher();
    }
    // Warm up where nobody listens, so that the timed run measures compiled code.
    await publish(new NatsSubject(`${next.subject}.warm`), next.size, WARM_UP);
  }
  reply({ kind: "ready" });
}

async function go(): Promise<void> {
  if (job === null) throw new Error("go before start");
  if (job.role === "subscriber") return;
  await publish(new NatsSubject(job.subject), job.size, job.messages);
  count = job.messages;
  reply({ kind: "done", count, heap });
}

/**
 * Publishes `messages` payloads of `size` bytes as fast as the writer takes
 * them, and flushes; the main thread's connection.flush() then makes sure
 * the server has them.
 */
async function publish(subject: NatsSubject, size: number, messages: number): Promise<void> {
  const out = publisher!;
  const payload = new Uint8Array(size).fill(0x61);
  for (let i = 0; i < messages; i++) {
    if (!out.tryPublish(subject, payload)) await out.publish(subject, payload);
  }
  out.flush();
  // Its own connection: done once the server has them.
  await conn?.flush();
}

async function close(): Promise<void> {
  if (publisher !== null && conn === null) {
    publisher.close();
    pool!.detach();
    reply({ kind: "closed", inUse: 0 });
    return;
  }
  await conn?.drain();
  reply({ kind: "closed", inUse: pool?.stats().inUse ?? 0 });
}

self.onmessage = (event: MessageEvent<BabRequest>) => {
  const request = event.data;
  const run = request.kind === "start"
    ? start(request.job)
    : request.kind === "go"
    ? go()
    : close();
  run.catch((error: unknown) => reply({ kind: "error", message: String(error) }));
};
