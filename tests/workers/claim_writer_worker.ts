// A worker that attaches to a shared pool and fills numbered, checkable
// messages (the format of writeNumbered in tests/_writer_helpers.ts) in
// place with a Writer's claims, into a flusher of the main thread; then
// closes the writer, detaches and reports how often a claim had to wait.
/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />
import {
  BufferPool,
  type BufferPoolHandle,
  lengthPrefix,
  type WriteFlusherHandle,
  Writer,
} from "../../mod.ts";

export interface ClaimJob {
  pool: BufferPoolHandle;
  flusher: WriteFlusherHandle;
  writer: number;
  count: number;
}

export type ClaimReport = { ok: true; waited: number } | { ok: false; error: string };

self.onmessage = async (event: MessageEvent<ClaimJob>) => {
  const { writer: w, count } = event.data;
  try {
    const pool = BufferPool.attach(event.data.pool);
    const writer = new Writer(pool, event.data.flusher, { codec: lengthPrefix(4) });
    let waited = 0;
    for (let seq = 0; seq < count; seq++) {
      const size = 8 + ((seq * 7 + w) % 40);
      let claim = writer.tryClaim(size);
      if (claim === null) {
        waited++;
        claim = await writer.claim(size);
      }
      const { buffer, dataView, offset } = claim;
      dataView.setUint32(offset, w);
      dataView.setUint32(offset + 4, seq);
      for (let i = 8; i < size; i++) buffer[offset + i] = (seq + i) & 0xff;
      claim.commit();
    }
    writer.close();
    pool.detach();
    self.postMessage({ ok: true, waited } satisfies ClaimReport);
  } catch (error) {
    self.postMessage({ ok: false, error: String(error) } satisfies ClaimReport);
  }
};
