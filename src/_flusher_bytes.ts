// A flusher's batches as a plain byte stream: each read copies one batch
// into a fresh array and releases its regions at once. A consumer of a
// ReadableStream reads ahead of what its sink has finished with and cannot
// say when that is, so only a copy is safe to hand out.

import type { FlushRegion } from "./flush_region.ts";

/**
 * A byte stream of copies of what `readable` yields, taking a batch only
 * when a read asks for one. Cancelling it cancels `readable`.
 *
 * @param readable The flusher's readable, not locked.
 */
export function flushedBytes(
  readable: ReadableStream<FlushRegion[]>,
): ReadableStream<Uint8Array<ArrayBuffer>> {
  const reader = readable.getReader();
  let cancelled = false;
  return new ReadableStream<Uint8Array<ArrayBuffer>>({
    async pull(controller) {
      const { done, value } = await reader.read();
      if (cancelled) return;
      if (done) {
        reader.releaseLock();
        controller.close();
        return;
      }
      controller.enqueue(copyOut(value));
    },
    cancel(reason) {
      cancelled = true;
      return reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
}

/** A batch's bytes, copied into one fresh array; its regions released. */
function copyOut(batch: readonly FlushRegion[]): Uint8Array<ArrayBuffer> {
  let length = 0;
  for (let i = 0; i < batch.length; i++) length += batch[i]!.length;
  const bytes = new Uint8Array(length);
  let at = 0;
  for (let i = 0; i < batch.length; i++) {
    const region = batch[i]!;
    bytes.set(region.bytes, at);
    at += region.length;
    region.release();
  }
  return bytes;
}
