// One read of a byte source straight into a cutter's staging memory, shared
// by readFrames and visitFrames: the two differ only in what they do with
// the frames the read completes.

import type { AcquireOptions } from "./buffer_pool.ts";
import type { FrameCutter } from "./frame_cutter.ts";

/**
 * Waits for staging memory if the cutter has none, reads into it, and
 * checks `signal` before and after; returns what `source.read` returned.
 */
export async function readInto(
  cutter: FrameCutter,
  source: { read(p: Uint8Array): Promise<number | null> },
  signal: AbortSignal | undefined,
  acquireOptions: AcquireOptions | undefined,
): Promise<number | null> {
  signal?.throwIfAborted();
  let view = cutter.writable();
  if (view === null) {
    await cutter.waitForBuffer(acquireOptions);
    view = cutter.writable()!;
  }
  const n = await source.read(view);
  signal?.throwIfAborted();
  return n;
}
