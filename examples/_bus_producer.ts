// A producer of the demo bus: attaches to the shared pool and writes
// numbered messages through a Writer into the main thread's flusher, whose
// bytes go to the TCP socket. Reports when done.
/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />
import {
  BufferPool,
  type BufferPoolHandle,
  lengthPrefix,
  type WriteFlusherHandle,
  Writer,
} from "../mod.ts";
import { fill } from "./_bus_message.ts";

export interface ProducerJob {
  producer: number;
  pool: BufferPoolHandle;
  flusher: WriteFlusherHandle;
  messages: number;
  size: number;
  /** performance.timeOrigin-based time to stop at, even if not all are sent. */
  deadline: number;
}

export type ProducerReport = { sent: number; waits: number } | { error: string };

self.onmessage = async ({ data: job }: MessageEvent<ProducerJob>) => {
  const pool = BufferPool.attach(job.pool);
  // Flush every 32 KiB: the loop below only yields when it must wait.
  const writer = new Writer(pool, job.flusher, { codec: lengthPrefix(4), flushBytes: 32 * 1024 });
  let sent = 0;
  let waits = 0;
  try {
    for (; sent < job.messages; sent++) {
      if ((sent & 0xfff) === 0 && performance.timeOrigin + performance.now() > job.deadline) break;
      let reservation = writer.tryReserve(job.size);
      if (reservation === null) {
        waits++;
        reservation = await writer.reserve(job.size);
      }
      fill(reservation.bytes, job.producer, sent);
      reservation.commit();
    }
    writer.close();
    self.postMessage({ sent, waits } satisfies ProducerReport);
  } catch (error) {
    writer.close();
    self.postMessage({ error: String(error) } satisfies ProducerReport);
  } finally {
    pool.detach();
  }
};
