/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />
// One bab NATS client in a worker of its own, for bench/nats_compare.ts: a
// publisher with its own pool and connection that publishes and flushes, or
// a subscriber that counts (and, for the soak run, samples its heap after a
// GC every million messages). One reply per request from the main thread.
import { BufferPool } from "../../mod.ts";
import { NatsConnection, NatsSubject } from "../../nats.ts";

/** What a worker is asked to do: start (connect, subscribe), go, close. */
export interface BabJob {
  role: "publisher" | "subscriber";
  port: number;
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
let job: BabJob | null = null;
let count = 0;
const heap: number[] = [];

function reply(message: BabReply): void {
  self.postMessage(message);
}

async function start(next: BabJob): Promise<void> {
  job = next;
  // 64 KiB buffers: a flush's worth of 32-byte messages per socket write.
  pool = new BufferPool({ bufferSize: 64 * 1024, bufferCount: 64 });
  conn = await NatsConnection.connect({ pool, port: next.port, name: `bab-bench-${next.role}` });
  conn.closed.catch((error) => reply({ kind: "error", message: `${error} after ${count}` }));
  if (next.role === "subscriber") {
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
    // Warm up where nobody listens, so that the timed run measures compiled code.
    await publish(new NatsSubject(`${next.subject}.warm`), next.size, WARM_UP);
  }
  reply({ kind: "ready" });
}

async function go(): Promise<void> {
  if (job === null || conn === null) throw new Error("go before start");
  if (job.role === "subscriber") return;
  await publish(new NatsSubject(job.subject), job.size, job.messages);
  count = job.messages;
  reply({ kind: "done", count, heap });
}

/** Publishes `messages` payloads of `size` bytes as fast as the writer takes them, then flushes. */
async function publish(subject: NatsSubject, size: number, messages: number): Promise<void> {
  const publisher = conn!.publisher();
  const payload = new Uint8Array(size).fill(0x61);
  for (let i = 0; i < messages; i++) {
    if (!publisher.tryPublish(subject, payload)) await publisher.publish(subject, payload);
  }
  await conn!.flush();
}

async function close(): Promise<void> {
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
