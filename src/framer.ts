/**
 * {@linkcode Framer} and {@linkcode BatchFramer}: Web Streams that cut a byte
 * stream into {@linkcode Packet}s on pool memory, for
 * `conn.readable.pipeThrough(...)`. To look at frames in place with no
 * object per frame, pipe into a {@linkcode FrameSink} instead.
 *
 * @module
 */

import type { BufferPool } from "./buffer_pool.ts";
import type { FrameCutterOptions } from "./frame_cutter_options.ts";
import type { Packet } from "./packet.ts";
import { framerSides } from "./_framer_streams.ts";

/**
 * Options for {@linkcode Framer} and {@linkcode BatchFramer}: the codec, the
 * longest payload, and what an unfinished last frame means, as for
 * {@linkcode FrameCutter}, and a signal to stop it.
 */
export interface FramerOptions extends FrameCutterOptions {
  /**
   * Stops the framer wherever it is: both sides error with the signal's
   * reason, a wait for a pool buffer is given up, and the staging buffer and
   * every packet not yet read are released. `pipeThrough`'s own `signal`
   * cannot do this while a write is in progress (a pipe lets the write
   * finish first), and a write waits for the reader and for buffers.
   */
  signal?: AbortSignal;
}

/**
 * What a {@linkcode Framer} hands out for each value of its `output`
 * option: `"packets"` (the default) gives {@linkcode Packet}s on pool
 * memory, to release; `"bytes"` gives each frame's bytes copied into a
 * plain `Uint8Array`, the packet already released.
 *
 * @example The readable's chunk type follows the option
 * ```ts
 * import { BufferPool, Framer, type FramerOutputs, lengthPrefix } from "@bab/bab";
 *
 * const pool = new BufferPool({ bufferSize: 256, bufferCount: 2 });
 * const framer = new Framer(pool, { codec: lengthPrefix(2), output: "bytes" });
 * const readable: ReadableStream<FramerOutputs["bytes"]> = framer.readable;
 * await readable.cancel();
 * ```
 */
export interface FramerOutputs {
  /** A packet per frame, to be released by the reader. */
  packets: Packet;
  /** A copy of each frame's bytes, holding no pool memory. */
  bytes: Uint8Array<ArrayBuffer>;
}

/**
 * Options for {@linkcode Framer}: those of {@linkcode FramerOptions}, and
 * what it hands out.
 *
 * @typeParam O The `output` option, which picks the readable's chunk type.
 */
export interface FramerOutputOptions<O extends keyof FramerOutputs> extends FramerOptions {
  /**
   * `"packets"` (the default): a {@linkcode Packet} per frame, which the
   * reader must release. `"bytes"`: a copy of each frame's bytes, made as
   * a read takes it, with the packet released at once; what is read then
   * holds no pool memory, so the readable can be piped into any consumer
   * of bytes (a `TextDecoderStream`, say) or simply dropped. The copy
   * costs an allocation and a memcpy per frame.
   */
  output?: O;
}

/**
 * A transform stream from bytes to {@linkcode Packet}s, one per frame, cut
 * by a {@linkcode FrameCodec} from bytes staged in `pool` (see
 * {@linkcode FrameCutter} for how). Every packet read must be released.
 *
 * The stream errors with a {@linkcode FrameError} when the bytes break the
 * framing, once the frames before the bad one have been read, and with a
 * {@linkcode TruncatedError} when the input closes in the middle of a
 * frame. On any error, cancel or abort, the staging buffer and every packet
 * not yet read are released. Piping the readable (`pipeTo`, `pipeThrough`)
 * is safe too: when the pipe fails, every packet it was handed that its
 * destination never used (read the bytes of, released or sent) is
 * released, since a failed destination drops what it queued without a
 * word; a destination that keeps packets past its failure must read them
 * first. When the pool is empty the writable side waits
 * for a buffer, so a slow reader slows the writer rather than growing
 * memory.
 *
 * One pool buffer is enough when each packet is released before the next
 * read: a frame across the end of the buffer then moves to its start. A
 * reader that keeps packets while it reads on needs the buffers they pin in
 * the pool too; if they pin them all, the framer waits until the reader
 * releases some, or until `options.signal` aborts.
 *
 * One read per packet caps a Web Stream at a few million packets a second;
 * {@linkcode BatchFramer} hands out each input chunk's packets in one array,
 * and a {@linkcode FrameSink} visits each frame in place with no packet at
 * all.
 *
 * With `output: "bytes"` it hands out a copy of each frame's bytes
 * instead, the packet released as the copy is read (see
 * {@linkcode FramerOutputOptions.output}); the readable is then a
 * `ReadableStream<Uint8Array>`.
 *
 * Structurally a `TransformStream<Uint8Array, Packet>` (a `readable` and a
 * `writable`), so `pipeThrough` takes it; it is not an instance of the
 * `TransformStream` class.
 *
 * @typeParam O The `output` option: `"packets"` unless it is given.
 *
 * @example Cutting length-prefixed frames
 * ```ts
 * import { BufferPool, Framer, lengthPrefix } from "@bab/bab";
 * import assert from "node:assert/strict";
 *
 * const pool = new BufferPool({ bufferSize: 4096, bufferCount: 16 });
 * const codec = lengthPrefix(2);
 * const bytes = ReadableStream.from([codec.encode(new Uint8Array([1, 2])), new Uint8Array([0, 1, 3])]);
 * const payloads: number[][] = [];
 * for await (const packet of bytes.pipeThrough(new Framer(pool, { codec }))) {
 *   payloads.push([...packet.bytes]);
 *   packet.release();
 * }
 * assert.deepEqual(payloads, [[1, 2], [3]]);
 * assert.equal(pool.stats().inUse, 0);
 * ```
 *
 * @example Lines as text, with no packet to release
 * ```ts
 * import { BufferPool, delimiter, Framer } from "@bab/bab";
 * import assert from "node:assert/strict";
 *
 * const pool = new BufferPool({ bufferSize: 64, bufferCount: 1 });
 * const input = ReadableStream.from([new TextEncoder().encode("one\ntwo\n")]);
 * const lines = input
 *   .pipeThrough(new Framer(pool, { codec: delimiter("\n"), output: "bytes" }))
 *   .pipeThrough(new TextDecoderStream());
 * assert.deepEqual(await Array.fromAsync(lines), ["one", "two"]);
 * assert.equal(pool.stats().inUse, 0);
 * ```
 */
export class Framer<O extends keyof FramerOutputs = "packets">
  implements TransformStream<Uint8Array, FramerOutputs[O]> {
  /** One chunk per frame, in stream order: packets, or copies of their bytes. */
  readonly readable: ReadableStream<FramerOutputs[O]>;
  /** Bytes of the framed stream. */
  readonly writable: WritableStream<Uint8Array>;

  /**
   * Makes the stream.
   *
   * @param pool Where staging buffers come from.
   * @param options The codec, and optionally `maxFrameLength`,
   * `allowPartial`, a `signal` and the `output`.
   * @throws {RangeError} If `maxFrameLength` does not fit the pool's buffers
   * (see {@linkcode FrameCutter}), or `output` is neither `"packets"` nor
   * `"bytes"`.
   */
  constructor(pool: BufferPool, options: FramerOutputOptions<O>) {
    const output: keyof FramerOutputs = options.output ?? "packets";
    if (output !== "packets" && output !== "bytes") {
      throw new RangeError(
        `Cannot make framer: output ${JSON.stringify(output)} must be "packets" or "bytes"`,
      );
    }
    // The overloads pick the chunk type by `output`; O is that same choice.
    const sides = output === "bytes"
      ? framerSides(pool, options, false, true)
      : framerSides(pool, options, false);
    this.readable = sides.readable as ReadableStream<FramerOutputs[O]>;
    this.writable = sides.writable;
  }
}

/**
 * A transform stream from bytes to arrays of {@linkcode Packet}s: all the
 * frames completed by one input chunk come out as one array, in order; a
 * chunk that completes none produces nothing. (When the pool runs out of
 * buffers in the middle of a chunk, the frames cut so far go out first, so
 * that the reader can release them.) The fast form of
 * {@linkcode Framer}, which it otherwise matches in every respect (an
 * array handed to a failed pipe counts as used once any of its packets
 * was). Every packet of every array read must be released.
 *
 * @example Batches of newline-delimited lines
 * ```ts
 * import { BatchFramer, BufferPool, delimiter } from "@bab/bab";
 * import assert from "node:assert/strict";
 *
 * const pool = new BufferPool({ bufferSize: 4096, bufferCount: 16 });
 * const encoder = new TextEncoder();
 * const decoder = new TextDecoder();
 * const bytes = ReadableStream.from(["a\nbb\nc", "c\n"].map((s) => encoder.encode(s)));
 * const batches: string[][] = [];
 * for await (const batch of bytes.pipeThrough(new BatchFramer(pool, { codec: delimiter("\n") }))) {
 *   batches.push(batch.map((packet) => decoder.decode(packet.bytes)));
 *   for (const packet of batch) packet.release();
 * }
 * assert.deepEqual(batches, [["a", "bb"], ["cc"]]);
 * assert.equal(pool.stats().inUse, 0);
 * ```
 */
export class BatchFramer implements TransformStream<Uint8Array, Packet[]> {
  /** Arrays of packets, one per input chunk that completed a frame. */
  readonly readable: ReadableStream<Packet[]>;
  /** Bytes of the framed stream. */
  readonly writable: WritableStream<Uint8Array>;

  /**
   * Makes the stream.
   *
   * @param pool Where staging buffers come from.
   * @param options The codec, and optionally `maxFrameLength`, `allowPartial`
   * and a `signal`.
   * @throws {RangeError} If `maxFrameLength` does not fit the pool's buffers
   * (see {@linkcode FrameCutter}).
   */
  constructor(pool: BufferPool, options: FramerOptions) {
    const sides = framerSides(pool, options, true);
    this.readable = sides.readable;
    this.writable = sides.writable;
  }
}
