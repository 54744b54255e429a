// A worker that attaches to a shared pool and writes numbered, checkable
// messages (writeNumbered) through a Writer into a flusher of the main
// thread, then closes the writer, detaches and reports.
/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />
import {
  BufferPool,
  type BufferPoolHandle,
  lengthPrefix,
  type WriteFlusherHandle,
  Writer,
} from "../../mod.ts";
import { writeNumbered, YIELD_TO_TASKS } from "../_writer_helpers.ts";

export interface WriterJob {
  pool: BufferPoolHandle;
  flusher: WriteFlusherHandle;
  writer: number;
  count: number;
}

export type WriterReport = { ok: true; inUseAfter: number } | { ok: false; error: string };

self.onmessage = async (event: MessageEvent<WriterJob>) => {
  const job = event.data;
  try {
    const pool = BufferPool.attach(job.pool);
    const writer = new Writer(pool, job.flusher, { codec: lengthPrefix(4) });
    await writeNumbered(writer, job.writer, job.count, YIELD_TO_TASKS);
    writer.close();
    pool.detach();
    self.postMessage({ ok: true, inUseAfter: pool.stats().inUse } satisfies WriterReport);
  } catch (error) {
    self.postMessage({ ok: false, error: String(error) } satisfies WriterReport);
  }
};
