// A worker that attaches to a shared pool and writes numbered, checkable
// messages through a Writer into a flusher of the main thread, then closes
// the writer, detaches and reports. The messages are those of
// tests/writer_test.ts: [writer u32][seq u32][(seq + i) & 0xff ...].
/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />
import {
  BufferPool,
  type BufferPoolHandle,
  lengthPrefix,
  type WriteFlusherHandle,
  Writer,
} from "../../mod.ts";

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
    for (let seq = 0; seq < job.count; seq++) {
      const size = 8 + ((seq * 7 + job.writer) % 40);
      const r = await writer.reserve(size);
      const view = new DataView(r.bytes.buffer, r.bytes.byteOffset, size);
      view.setUint32(0, job.writer);
      view.setUint32(4, seq);
      for (let i = 8; i < size; i++) r.bytes[i] = (seq + i) & 0xff;
      r.commit();
      // Let the microtask flush run now and then, as a real producer would.
      if (seq % 64 === 0) await new Promise((resolve) => setTimeout(resolve, 0));
    }
    writer.close();
    pool.detach();
    self.postMessage({ ok: true, inUseAfter: pool.stats().inUse } satisfies WriterReport);
  } catch (error) {
    self.postMessage({ ok: false, error: String(error) } satisfies WriterReport);
  }
};
