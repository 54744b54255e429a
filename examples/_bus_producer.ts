// A producer of the demo bus, in a worker: it connects to the server, and
// writes numbered, length-prefixed messages into a pool of its own through
// a Writer, claiming a run of them at a time (tryClaim with a count: no
// object per message, one commit per buffer) and filling each in place.
// Its own WriteFlusher writes what the writer flushes straight from pool
// memory to its connection, so the main thread never touches these bytes
// before they arrive. Reports when done.
/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />
import { BufferPool, lengthPrefix, WriteFlusher, Writer } from "../mod.ts";
import { fillRun } from "./_bus_message.ts";

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

/** The most messages claimed at once; a run also ends where its buffer does. */
const RUN = 4096;

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
    // A run per claim: room for as many messages as the buffer holds, their
    // length prefixes written, filled in place, committed at once.
    let sample = Math.ceil(messages / 4 / 1_000_000) * 1_000_000;
    while (sent < messages && performance.now() < stopAt) {
      if (job.memory && sent >= sample) {
        // As in the main thread: after a full collection where --expose-gc allows.
        (globalThis as { gc?: () => void }).gc?.();
        const heap = Deno.memoryUsage().heapUsed;
        if (warmHeap === 0) warmHeap = heap;
        maxHeap = Math.max(maxHeap, heap);
        sample += 1_000_000;
      }
      const count = Math.min(messages - sent, RUN);
      let run = writer.tryClaim(size, count);
      if (run === null) {
        waits++;
        run = await writer.claim(size, { count });
      }
      sent += fillRun(run, producer, sent);
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
