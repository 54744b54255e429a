/**
 * {@linkcode visitFrames}: frames read from a connection straight into pool
 * memory and visited in place, with no input copy and no object per frame.
 *
 * @module
 */

import type { BufferPool } from "./buffer_pool.ts";
import { FrameCutter, type FrameVisitor } from "./frame_cutter.ts";
import type { ByteSource, ReadFramesOptions } from "./read_frames.ts";
import { readInto } from "./_read_into.ts";

/**
 * Reads `source` straight into pool staging memory, as
 * {@linkcode readFrames} does, and calls `visit` with each frame in place
 * (see {@linkcode FrameVisitor}): no packet, view or array is made per
 * frame, and only the frames the visitor {@linkcode FrameCutter.retain}s
 * become packets. Resolves when the source ends on a frame boundary.
 *
 * Rejects with a {@linkcode FrameError} when the bytes break the framing,
 * after visiting the frames before the bad one; with a
 * {@linkcode TruncatedError} when the source ends inside a frame (with
 * `allowPartial`, the unfinished frame is visited instead); with the
 * signal's reason when it aborts; and with whatever the visitor or the
 * source throws. Every way out releases the staging buffer; retained
 * packets are the caller's. The source is not closed.
 *
 * To stop early, close the cutter from the visitor
 * (`cutter.close()`, the visitor's fourth argument): the frames after that
 * one are not visited and the promise resolves. Aborting the signal stops
 * before the next read or wait (a read in progress is not interrupted;
 * close the source for that).
 *
 * One pool buffer is enough when the visitor retains nothing: a frame across
 * the end of the buffer then moves to its start. Retained packets pin their
 * buffers; if they pin them all while the reader needs one, it waits for a
 * release, or until the `signal` aborts.
 *
 * @param source What to read from, such as a `Deno.Conn`.
 * @param pool Where staging buffers come from.
 * @param options The codec, and optionally `maxFrameLength`,
 * `allowPartial` and a `signal`.
 * @param visit Called with each frame, in stream order.
 * @returns A promise that resolves at the end of the input.
 * @throws {RangeError} If `maxFrameLength` does not fit the pool's buffers
 * (see {@linkcode FrameCutter}); the promise rejects with it.
 *
 * @example Counting the bytes of every frame on a TCP connection
 * ```ts
 * import { BufferPool, lengthPrefix, visitFrames } from "@bab/bab";
 * import assert from "node:assert/strict";
 *
 * const pool = new BufferPool({ bufferSize: 65536, bufferCount: 1 });
 * const codec = lengthPrefix(4);
 * const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
 * const server = await listener.accept();
 * const encoder = new TextEncoder();
 * await client.write(codec.encode(encoder.encode("hello")));
 * await client.write(codec.encode(encoder.encode("world!")));
 * client.close();
 *
 * let frames = 0;
 * let bytes = 0;
 * await visitFrames(server, pool, { codec }, (_bytes, start, end) => {
 *   frames++;
 *   bytes += end - start;
 * });
 * server.close();
 * listener.close();
 * assert.deepEqual([frames, bytes], [2, 11]);
 * assert.equal(pool.stats().inUse, 0);
 * ```
 *
 * @example Keeping some frames as packets, stopping at a "quit" frame
 * ```ts
 * import { BufferPool, delimiter, type Packet, visitFrames } from "@bab/bab";
 * import assert from "node:assert/strict";
 *
 * const pool = new BufferPool({ bufferSize: 64, bufferCount: 4 });
 * const text = new TextEncoder().encode("keep a\nskip\nkeep b\nquit\nnever\n");
 * let at = 0;
 * const source = {
 *   read(p: Uint8Array) {
 *     if (at === text.length) return Promise.resolve(null);
 *     const n = Math.min(p.length, text.length - at, 5); // 5 bytes a read
 *     p.set(text.subarray(at, at + n));
 *     at += n;
 *     return Promise.resolve(n);
 *   },
 * };
 * const kept: Packet[] = [];
 * await visitFrames(source, pool, { codec: delimiter("\n") }, (bytes, start, end, cutter) => {
 *   const line = new TextDecoder().decode(bytes.subarray(start, end));
 *   if (line.startsWith("keep")) kept.push(cutter.retain());
 *   else if (line === "quit") cutter.close();
 * });
 * const decoder = new TextDecoder();
 * assert.deepEqual(kept.map((p) => decoder.decode(p.bytes)), ["keep a", "keep b"]);
 * for (const packet of kept) packet.release();
 * assert.equal(pool.stats().inUse, 0);
 * ```
 */
export async function visitFrames(
  source: ByteSource,
  pool: BufferPool,
  options: ReadFramesOptions,
  visit: FrameVisitor,
): Promise<void> {
  const cutter = new FrameCutter(pool, options);
  const signal = options.signal;
  const acquireOptions = signal === undefined ? undefined : { signal };
  try {
    for (;;) {
      const n = await readInto(cutter, source, signal, acquireOptions);
      if (n === null) {
        cutter.end(visit);
        return;
      }
      cutter.commit(n, visit);
      if (cutter.closed) return; // the visitor closed it: stop here
    }
  } finally {
    cutter.close();
  }
}
