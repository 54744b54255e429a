// A worker that attaches to a shared pool and a SharedWriter made in the
// main thread, and places numbered messages (sharedNumbered) into it; or,
// in "hold" mode, leaves reservations open and waits to be terminated.
/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />
import {
  BufferPool,
  type BufferPoolHandle,
  lengthPrefix,
  SharedWriter,
  type SharedWriterHandle,
} from "../../mod.ts";
import { type PlaceMode, sharedNumbered } from "../_shared_writer_helpers.ts";

export interface SharedWriterJob {
  pool: BufferPoolHandle;
  writer: SharedWriterHandle;
  /** This worker's number in the messages. */
  w: number;
  count: number;
  mode: PlaceMode | "hold";
}

export type SharedWriterReport =
  | { ok: true; workerId: number; held?: number }
  | { ok: false; error: string };

self.onmessage = async (event: MessageEvent<SharedWriterJob>) => {
  const job = event.data;
  try {
    const pool = BufferPool.attach(job.pool);
    const writer = SharedWriter.attach(pool, job.writer, { codec: lengthPrefix(4) });
    if (job.mode === "hold") {
      // Commit all but the last `count`, which stay open until terminate().
      await sharedNumbered(writer, job.w, job.count, "reserve");
      const open = [await writer.reserve(40), await writer.reserve(12)];
      for (const r of open) r.bytes.fill(0xee);
      writer.flush();
      self.postMessage({ ok: true, workerId: pool.workerId, held: open.length });
      return;
    }
    await sharedNumbered(writer, job.w, job.count, job.mode);
    writer.close();
    const workerId = pool.workerId;
    pool.detach();
    self.postMessage({ ok: true, workerId } satisfies SharedWriterReport);
  } catch (error) {
    self.postMessage({ ok: false, error: String(error) } satisfies SharedWriterReport);
  }
};
