/**
 * bab ("build a bus"): low-level parts for building a message bus, sharing
 * one fixed block of memory.
 *
 * Memory:
 * - {@linkcode BufferPool}: fixed-size buffers allocated once, in one
 *   worker or shared by many; acquire and release allocate no memory for
 *   them, and `acquire()` waits first come, first served when it is empty.
 * - {@linkcode Packet}: a ref-counted view of a region of a pooled buffer;
 *   the buffer goes back to the pool when the last packet on it is
 *   released. `send()` / `sendBatch()` hand packets to other workers
 *   without a copy.
 *
 * Sending:
 * - {@linkcode Writer}: packs messages into pooled buffers, framed by a
 *   codec ({@linkcode lengthPrefix}, {@linkcode varintPrefix},
 *   {@linkcode delimiter}, {@linkcode fixedSize}); `tryClaim` fills them in
 *   place with no object per message.
 * - {@linkcode SharedWriter}: one writer for many workers, packing their
 *   messages into the same buffers with one compare-and-swap each.
 * - {@linkcode WriteFlusher}: takes what writers in any worker commit, in
 *   batches, and `pipeTo(conn)` writes it straight from pool memory.
 *
 * Receiving:
 * - {@linkcode Framer} / {@linkcode BatchFramer}: `TransformStream`s that
 *   cut incoming bytes into packets on pool memory; {@linkcode readFrames}
 *   does it from a `read()`able source, and {@linkcode visitFrames} /
 *   {@linkcode FrameSink} visit each frame in place with no object at all.
 * - {@linkcode FrameCutter}: the synchronous core under all of them.
 *
 * @example The whole path: a writer's messages over TCP, cut back into packets
 * ```ts
 * import { BufferPool, Framer, lengthPrefix, WriteFlusher, Writer } from "@bab/bab";
 * import assert from "node:assert/strict";
 *
 * const pool = new BufferPool({ bufferSize: 64 * 1024, bufferCount: 16 });
 * const codec = lengthPrefix(4);
 * const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 *
 * // Receive: cut the connection into packets on pool memory.
 * const received = (async () => {
 *   const conn = await listener.accept();
 *   const texts: string[] = [];
 *   for await (const packet of conn.readable.pipeThrough(new Framer(pool, { codec }))) {
 *     texts.push(new TextDecoder().decode(packet.bytes));
 *     packet.release();
 *   }
 *   return texts;
 * })();
 *
 * // Send: writers fill pool buffers, the flusher writes them to the socket.
 * const conn = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
 * const flusher = new WriteFlusher(pool);
 * const sent = flusher.pipeTo(conn);
 * const writer = new Writer(pool, flusher, { codec });
 * writer.tryWriteString("hello");
 * const claim = writer.tryClaim(5) ?? await writer.claim(5); // filled in place
 * claim.buffer.set(new TextEncoder().encode("world"), claim.offset);
 * claim.commit();
 * writer.close();
 * flusher.close();
 * await sent;
 * conn.close();
 *
 * assert.deepEqual(await received, ["hello", "world"]);
 * listener.close();
 * assert.equal(pool.stats().inUse, 0); // every buffer back in the pool
 * ```
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
export * from "./src/frame_bounds.ts";
export * from "./src/frame_codec.ts";
export * from "./src/length_prefix.ts";
export * from "./src/varint_prefix.ts";
export * from "./src/delimiter.ts";
export * from "./src/fixed_size.ts";
export * from "./src/largest_payload.ts";
export * from "./src/errors.ts";
export * from "./src/packet.ts";
export * from "./src/pooled_buffer.ts";
export * from "./src/reservation.ts";
export * from "./src/flush_region.ts";
export * from "./src/leak_report.ts";
export * from "./src/send_packet.ts";
export * from "./src/write_flusher.ts";
export * from "./src/write_flusher_options.ts";
export * from "./src/writer.ts";
export * from "./src/writer_options.ts";
export * from "./src/writer_claim.ts";
export * from "./src/shared_writer.ts";
export * from "./src/shared_writer_options.ts";
export * from "./src/shared_reservation.ts";
export * from "./src/frame_cutter.ts";
export * from "./src/frame_cutter_options.ts";
export * from "./src/framer.ts";
export * from "./src/read_frames.ts";
export * from "./src/visit_frames.ts";
export * from "./src/frame_sink.ts";
export * from "./src/encode.ts";
export * from "./src/decode.ts";
export * from "./src/packet_bytes_stream.ts";
