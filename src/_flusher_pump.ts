// WriteFlusher.pipeTo's pump: it drains the flush list into a sink from
// pool memory, a region at a time, without the stream (no read, pull or
// promise per batch), and releases every region on every way out: the
// flusher ends, the sink fails, or the signal aborts, even while a write
// hangs.

import type { FlushRegion } from "./flush_region.ts";
import type { ByteSink, PipeToOptions } from "./write_flusher_options.ts";

/** What the pump needs of its flusher. */
export interface PumpSource {
  /** The flusher's readable: locked while the pump runs, cancelled when it fails. */
  readonly readable: ReadableStream<FlushRegion[]>;
  /** The pump's batch, reused from one run to the next. */
  readonly batch: FlushRegion[];
  /** Takes what the writers flushed into `batch`, as regions. */
  take(batch: FlushRegion[]): void;
  /** Whether nothing more will come once the list is empty: closed, or ended. */
  closing(): boolean;
  /** Ends the flusher, delivering what is still on its list into `batch`. */
  end(batch: FlushRegion[]): void;
  /** Sleeps until a writer pushes, or close. */
  sleep(): Promise<void>;
  /** Ends the readable: everything was delivered. */
  closeReadable(): void;
}

/**
 * Writes every region `source` delivers to `sink` and releases it once
 * written, until the flusher ends; see {@linkcode WriteFlusher.pipeTo}.
 */
export async function pump(
  source: PumpSource,
  sink: ByteSink | WritableStream<Uint8Array>,
  options?: PipeToOptions,
): Promise<void> {
  // The readable stays locked while the pump runs, so no reader takes a batch.
  const reader = source.readable.getReader();
  const stream = sink instanceof WritableStream ? sink.getWriter() : null;
  const bytes = stream === null ? sink as ByteSink : null;
  const signal = options?.signal;
  // Rejects when the signal aborts, so that neither a wait nor a write
  // that never finishes holds the abort up.
  let aborted: Promise<never> | null = null;
  let onAbort: (() => void) | undefined;
  if (signal !== undefined) {
    aborted = new Promise<never>((_, reject) => onAbort = () => reject(signal.reason));
    aborted.catch(() => {});
    signal.addEventListener("abort", onAbort!, { once: true });
  }
  const batch = source.batch;
  let i = 0;
  /** The write of `batch[i]` while it is in flight. */
  let writing: Promise<unknown> | null = null;
  try {
    signal?.throwIfAborted();
    for (let last = false; !last;) {
      source.take(batch);
      if (batch.length === 0) {
        if (source.closing()) {
          source.end(batch);
          last = true;
        } else {
          const sleep = source.sleep();
          await (aborted === null ? sleep : Promise.race([sleep, aborted]));
          continue;
        }
      }
      for (i = 0; i < batch.length; i++) {
        const region = batch[i]!;
        const view = region.bytes;
        if (stream !== null) {
          writing = stream.write(view);
          await (aborted === null ? writing : Promise.race([writing, aborted]));
        } else {
          let written = 0;
          while (written < view.length) {
            writing = bytes!.write(written === 0 ? view : view.subarray(written));
            written +=
              await (aborted === null ? writing : Promise.race([writing, aborted])) as number;
          }
        }
        writing = null;
        region.release();
      }
      batch.length = 0;
    }
    source.closeReadable();
    signal?.throwIfAborted();
    if (stream !== null && options?.preventClose !== true) await stream.close();
  } catch (error) {
    // Cancelled first: the flusher records why it ended before a buffer of
    // this batch goes back, so that a writer in another worker that is
    // granted one sees the end rather than writing on.
    const cancelled = reader.cancel(error);
    if (writing !== null) {
      // The sink may still be reading these bytes: release them once it is done.
      const region = batch[i++]!;
      writing.then(() => region.release(), () => region.release());
    }
    for (; i < batch.length; i++) batch[i]!.release();
    batch.length = 0;
    await cancelled;
    // Not awaited: an abort waits for a write in flight, which may never end.
    stream?.abort(error).catch(() => {});
    throw error;
  } finally {
    if (onAbort !== undefined) signal!.removeEventListener("abort", onAbort);
    reader.releaseLock();
    stream?.releaseLock();
  }
}
