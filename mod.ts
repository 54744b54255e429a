/**
 * bab ("build a bus"): low-level parts for building a message bus, sharing
 * one fixed block of memory.
 *
 * - {@linkcode BufferPool}: fixed-size buffers allocated once; acquire and
 *   release allocate no memory for them (an acquire makes one small handle),
 *   moving buffers through a per-worker cache in batches, and `acquire()`
 *   waits first come, first served when it is empty.
 * - {@linkcode PooledBuffer}: an acquired buffer, to write into and cut into
 *   packets.
 * - {@linkcode Packet}: a ref-counted view of a region of a pooled buffer;
 *   the buffer goes back to the pool when the last packet on it is released.
 *
 * @example Messages packed into one pooled buffer
 * ```ts
 * import { BufferPool, type Packet } from "@bab/bab";
 * import assert from "node:assert/strict";
 *
 * const pool = new BufferPool({ bufferSize: 8192, bufferCount: 256 });
 * const encoder = new TextEncoder();
 *
 * // Pack three messages into one buffer and cut a packet for each.
 * const buffer = await pool.acquire();
 * const packets: Packet[] = [];
 * let end = 0;
 * for (const text of ["alpha", "beta", "gamma"]) {
 *   const { written } = encoder.encodeInto(text, buffer.bytes.subarray(end));
 *   packets.push(buffer.toPacket(end, end + written));
 *   end += written;
 * }
 * buffer.release(); // the packets keep the buffer alive
 *
 * const decoder = new TextDecoder();
 * assert.deepEqual(packets.map((p) => decoder.decode(p.bytes)), [
 *   "alpha",
 *   "beta",
 *   "gamma",
 * ]);
 * for (const packet of packets) packet.release();
 * assert.equal(pool.stats().inUse, 0); // all back in the pool
 * ```
 *
 * @module
 */

export * from "./src/buffer_pool.ts";
export * from "./src/codec.ts";
export * from "./src/errors.ts";
export * from "./src/packet.ts";
export * from "./src/pooled_buffer.ts";
export * from "./src/reservation.ts";
export * from "./src/flush_region.ts";
export * from "./src/leak_report.ts";
export * from "./src/send_packet.ts";
export * from "./src/write_flusher.ts";
export * from "./src/writer.ts";
export * from "./src/writer_claim.ts";
export * from "./src/frame_cutter.ts";
export * from "./src/framer.ts";
export * from "./src/read_frames.ts";
export * from "./src/visit_frames.ts";
export * from "./src/frame_sink.ts";
