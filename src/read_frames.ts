/**
 * {@linkcode readFrames}: frames read from a connection straight into pool
 * memory, with no input copy, as packets. To look at frames in place with no
 * object per frame, use {@linkcode visitFrames}.
 *
 * @module
 */

import type { BufferPool } from "./buffer_pool.ts";
import { FrameCutter } from "./frame_cutter.ts";
import type { FrameCutterOptions } from "./frame_cutter_options.ts";
import type { Packet } from "./packet.ts";
import { readInto } from "./_read_into.ts";

/**
 * Anything that reads bytes into memory it is given, as `Deno.Conn`,
 * `Deno.FsFile` and `Deno.stdin` do: resolves to the number of bytes
 * written at the start of `p`, or `null` at the end of the input.
 */
export interface ByteSource {
  /**
   * Reads up to `p.length` bytes into `p`.
   *
   * @param p Where the bytes go: a view of pool memory.
   * @returns How many bytes were read, or `null` at the end.
   */
  read(p: Uint8Array): Promise<number | null>;
}

/** Options for {@linkcode readFrames}. */
export interface ReadFramesOptions extends FrameCutterOptions {
  /**
   * Stops the reading: checked before each read and while waiting for a
   * buffer, which is the reader's only wait besides the source. A read in
   * progress is not interrupted; close the source for that.
   */
  signal?: AbortSignal;
}

/**
 * Reads `source` straight into pool staging memory and yields the frames cut
 * from each read, as an array of {@linkcode Packet}s (a read that completes
 * no frame yields nothing). The bytes land in pool memory by
 * `source.read(view)` and are never copied again unless a frame crosses the
 * end of a buffer; nor does a 64 KiB chunk per read stay pinned, as with
 * `conn.readable`.
 *
 * Ends when the source does, after checking that it ended on a frame
 * boundary. Throws a {@linkcode FrameError} when the bytes break the
 * framing, after yielding the frames before the bad one, and a
 * {@linkcode TruncatedError} when the source ends inside a frame. Leaving
 * the loop early (`break`, `return`, an error) releases the staging buffer;
 * packets already yielded are the caller's to release. The source is not
 * closed.
 *
 * Each frame becomes a {@linkcode Packet}, and each read an array: the form
 * for frames that are kept or handed on. A consumer that looks at most
 * frames and keeps few is several times faster with
 * {@linkcode visitFrames}, which makes a packet only for the frames it
 * retains.
 *
 * One pool buffer is enough when each batch is released before the next is
 * asked for: a frame across the end of the buffer then moves to its start.
 * A consumer that keeps packets while it asks for more needs the buffers
 * they pin in the pool too; if they pin them all, reading waits until the
 * `signal` aborts.
 *
 * @param source What to read from, such as a `Deno.Conn`.
 * @param pool Where staging buffers come from.
 * @param options The codec, and optionally `maxFrameLength`,
 * `allowPartial` and a `signal`.
 * @returns The batches of packets, in stream order.
 * @throws {RangeError} If `maxFrameLength` does not fit the pool's buffers
 * (see {@linkcode FrameCutter}).
 *
 * @example Reading frames from a TCP connection
 * ```ts
 * import { BufferPool, lengthPrefix, readFrames } from "@bab/bab";
 * import assert from "node:assert/strict";
 *
 * const pool = new BufferPool({ bufferSize: 65536, bufferCount: 16 });
 * const codec = lengthPrefix(4);
 * const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
 * const server = await listener.accept();
 * await client.write(codec.encode(new TextEncoder().encode("hello")));
 * client.close();
 *
 * const texts: string[] = [];
 * for await (const batch of readFrames(server, pool, { codec })) {
 *   for (const packet of batch) {
 *     texts.push(new TextDecoder().decode(packet.bytes));
 *     packet.release();
 *   }
 * }
 * server.close();
 * listener.close();
 * assert.deepEqual(texts, ["hello"]);
 * assert.equal(pool.stats().inUse, 0);
 * ```
 */
export async function* readFrames(
  source: ByteSource,
  pool: BufferPool,
  options: ReadFramesOptions,
): AsyncGenerator<Packet[], void, undefined> {
  const cutter = new FrameCutter(pool, options);
  const signal = options.signal;
  const acquireOptions = signal === undefined ? undefined : { signal };
  try {
    for (;;) {
      const n = await readInto(cutter, source, signal, acquireOptions);
      const batch: Packet[] = [];
      if (n === null) {
        cutter.end(batch);
        if (batch.length > 0) yield batch;
        return;
      }
      try {
        cutter.commit(n, batch);
      } catch (error) {
        // The frames before the bad one are good: hand them out first, as
        // the caller's to release, then fail.
        if (batch.length > 0) yield batch;
        throw error;
      }
      if (batch.length > 0) yield batch;
    }
  } finally {
    cutter.close();
  }
}
