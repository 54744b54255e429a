/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />
// One producer of examples/shared_writer.ts: attaches to the pool and the
// SharedWriter, says it is ready, and on "go" writes its messages, each
// [worker u16][seq u32][filler: seq's low byte], of messageSize(w, seq)
// bytes, then closes its handle.
import {
  BufferPool,
  type BufferPoolHandle,
  lengthPrefix,
  SharedWriter,
  type SharedWriterHandle,
} from "../mod.ts";

/** What the main thread posts first. */
export interface PackJob {
  pool: BufferPoolHandle;
  writer: SharedWriterHandle;
  /** This worker's index, written into its messages. */
  w: number;
  /** Messages to write. */
  count: number;
}

/** What a worker posts: ready after attaching, done after writing, or what failed. */
export type PackReport = { ready: true } | { done: number } | { error: string };

/** Bytes before the filler: worker index and sequence number. */
export const HEADER = 6;

/** The size of worker `w`'s message `seq`: 10 to 200 bytes, mixed. */
export function messageSize(w: number, seq: number): number {
  return 10 + ((seq * 37 + w * 11) % 191);
}

let job: PackJob | null = null;
let writer: SharedWriter | null = null;
let pool: BufferPool | null = null;

async function writeAll(w: number, count: number): Promise<void> {
  const out = writer!;
  for (let seq = 0; seq < count; seq++) {
    const size = messageSize(w, seq);
    // No room now: the next buffer is not in yet; wait for it.
    const reservation = out.tryReserve(size) ?? await out.reserve(size);
    const bytes = reservation.bytes;
    const view = new DataView(bytes.buffer, bytes.byteOffset, size);
    view.setUint16(0, w);
    view.setUint32(2, seq);
    bytes.fill(seq & 0xff, HEADER);
    reservation.commit();
  }
}

self.onmessage = async (event: MessageEvent<PackJob | "go">) => {
  try {
    if (event.data !== "go") {
      job = event.data;
      pool = BufferPool.attach(job.pool);
      // "manual": a buffer goes to the flusher once full, never part-filled.
      writer = SharedWriter.attach(pool, job.writer, { codec: lengthPrefix(2), flush: "manual" });
      self.postMessage({ ready: true } satisfies PackReport);
      return;
    }
    await writeAll(job!.w, job!.count);
    writer!.close();
    pool!.detach();
    self.postMessage({ done: job!.count } satisfies PackReport);
  } catch (error) {
    self.postMessage({ error: String(error) } satisfies PackReport);
  }
};
