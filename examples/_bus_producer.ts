// A producer of the demo bus, in a worker: it connects to the server, and
// writes numbered, length-prefixed messages into a pool of its own through
// a Writer, filling each one in place (tryClaim: no object per message).
// Its own WriteFlusher writes what the writer flushes straight from pool
// memory to its connection, so the main thread never touches these bytes
// before they arrive. Reports when done.
/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />
import { BufferPool, lengthPrefix, WriteFlusher, Writer } from "../mod.ts";
import { fill } from "./_bus_message.ts";

export interface ProducerJob {
  producer: number;
  /** The server's port on 127.0.0.1. */
  port: number;
  messages: number;
  size: number;
  /** performance.timeOrigin-based time to stop at, even if not all are sent. */
  deadline: number;
  /** Sample this worker's heap after each million messages, past the first quarter. */
  memory: boolean;
}

export type ProducerReport =
  | {
    sent: number;
    waits: number;
    inUse: number;
    buffers: number;
    /** With `memory`: this worker's heap after the first quarter, and the most after (bytes). */
    warmHeap: number;
    maxHeap: number;
  }
  | { error: string };

/** Messages between looks at the clock, which costs more than a small message. */
const CHECK_EVERY = 256;

self.onmessage = async ({ data: job }: MessageEvent<ProducerJob>) => {
  // Eight 64 KiB buffers: the socket is written while the writer fills the
  // next ones, and a slow server makes the writer wait, not memory grow.
  const pool = new BufferPool({ bufferSize: 64 * 1024, bufferCount: 8 });
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: job.port });
  const flusher = new WriteFlusher(pool);
  const piped = flusher.pipeTo(conn);
  const writer = new Writer(pool, flusher, { codec: lengthPrefix(4) });
  const stopAt = job.deadline - performance.timeOrigin;
  const { producer, messages, size } = job;
  let sent = 0;
  let waits = 0;
  let warmHeap = 0;
  let maxHeap = 0;
  try {
    for (; sent < messages; sent++) {
      if (sent % CHECK_EVERY === 0 && performance.now() >= stopAt) break;
      if (job.memory && sent % 1_000_000 === 0 && sent >= messages / 4) {
        // As in the main thread: after a full collection where --expose-gc allows.
        (globalThis as { gc?: () => void }).gc?.();
        const heap = Deno.memoryUsage().heapUsed;
        if (warmHeap === 0) warmHeap = heap;
        maxHeap = Math.max(maxHeap, heap);
      }
      let claim = writer.tryClaim(size);
      if (claim === null) {
        waits++;
        claim = await writer.claim(size);
      }
      fill(claim.dataView, claim.offset, size, producer, sent);
      claim.commit();
    }
    writer.close();
    flusher.close();
    await piped;
    self.postMessage(
      {
        sent,
        waits,
        inUse: pool.stats().inUse,
        buffers: pool.bufferCount,
        warmHeap,
        maxHeap,
      } satisfies ProducerReport,
    );
  } catch (error) {
    // The pipe failed (its error is the writer's ClosedError's cause), or
    // the writer did: either way give everything back before reporting.
    writer.close();
    flusher.close();
    await piped.catch(() => {});
    self.postMessage({ error: String(error) } satisfies ProducerReport);
  } finally {
    conn.close();
  }
};
