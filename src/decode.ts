/**
 * {@linkcode decode}: framed bytes from any async iterable, however they are
 * chunked, back into messages, one `Uint8Array` each. The wire format of
 * `it-length-prefixed`'s `decode` by default. For the other direction see
 * {@linkcode encode}.
 *
 * @module
 */

import { BufferPool } from "./buffer_pool.ts";
import type { FrameCodec } from "./frame_codec.ts";
import { varintPrefix } from "./varint_prefix.ts";
import { FrameCutter, type FrameVisitor } from "./frame_cutter.ts";
import { MAX_BUFFER_SIZE } from "./_layout.ts";

/**
 * Bytes held in several chunks and read as one, such as a `Uint8ArrayList`
 * from the npm package `uint8arraylist`: {@linkcode decode} and
 * {@linkcode encode} call only `subarray()`, with no arguments, for all of
 * its bytes in one array.
 */
export interface ByteList {
  /**
   * All the bytes, in one array: a view when they are in one chunk, else a
   * copy.
   *
   * @returns The bytes.
   */
  subarray(): Uint8Array;
}

/** Options for {@linkcode decode}. */
export interface DecodeOptions {
  /** How frames are marked. Defaults to {@linkcode varintPrefix}. */
  codec?: FrameCodec;
  /**
   * The longest message to accept, in bytes. A header announcing more, or a
   * delimiter not found within this many bytes, is a
   * {@linkcode FrameError} raised before the message is buffered.
   *
   * Without a `pool` it defaults to 4 MiB (4194304 bytes), the default
   * `maxDataLength` of `it-length-prefixed`, and sizes the one buffer that
   * `decode` makes for itself: pass less when messages are small. With a
   * `pool` it defaults to the longest message that fits one of its buffers
   * (see {@linkcode FrameCutter}), and may not be more.
   */
  maxFrameLength?: number;
  /**
   * Where the staging buffer comes from. By default `decode` makes a pool of
   * one buffer for as long as it runs, big enough for a frame of
   * `maxFrameLength` bytes (and at least 64 KiB, a large socket read). A pool of your own keeps that memory to one fixed
   * block however many streams are decoded: each `decode` holds one of its
   * buffers while it runs, and waits for one when the pool has none free.
   */
  pool?: BufferPool;
  /**
   * Stops the decoding: checked before each chunk is taken and while
   * waiting for a buffer of `pool`. The loop then throws the signal's
   * reason.
   */
  signal?: AbortSignal;
}

/** The default `maxFrameLength` without a pool: `it-length-prefixed`'s `maxDataLength`. */
const DEFAULT_MAX_FRAME_LENGTH = 4 * 1024 * 1024;
/**
 * The least a buffer of decode's own pool holds: a socket read is commonly
 * up to 64 KiB, and a smaller buffer would take such a chunk in pieces,
 * moving the unfinished frame to the buffer's start for each.
 */
const MIN_OWN_BUFFER = 64 * 1024;

/**
 * Cuts the bytes of `source` back into messages, whatever their chunking,
 * and yields each as a `Uint8Array` of its own, the caller's to keep. With
 * the default codec, {@linkcode varintPrefix}, it reads what the npm
 * package `it-length-prefixed` writes, and what {@linkcode encode} writes.
 *
 * Chunks may be `Uint8Array`s or {@linkcode ByteList}s such as the
 * `Uint8ArrayList`s `it-length-prefixed` works with. Each chunk's bytes are
 * copied into a pooled staging buffer and cut there by a
 * {@linkcode FrameCutter}, and each message is copied out of it: two copies
 * a byte, in exchange for messages that are plain arrays. To read a
 * connection with no copy and no object per message, use
 * {@linkcode visitFrames} or {@linkcode readFrames} instead.
 *
 * Ends when the source does, after checking that it ended on a frame
 * boundary. Throws a {@linkcode FrameError} when the bytes break the
 * framing, after yielding the messages before the bad one; a
 * {@linkcode TruncatedError} when the source ends inside a frame; and
 * whatever the source throws. Every way out, `break` and `return`
 * included, gives the staging buffer back to its pool and closes the
 * source's iterator (its `return()` is called, as `for await` does).
 *
 * @param source The framed bytes, in chunks of any size.
 * @param options The codec, `maxFrameLength`, a `pool` to stage bytes in
 * and a `signal`; all optional.
 * @returns The messages, in stream order.
 * @throws {RangeError} If `maxFrameLength` is not a non-negative integer,
 * or too long for one buffer (2^30 bytes), or, with a `pool`, too long for
 * its buffers; the first `next()` rejects with it.
 *
 * @example Messages back from any chunking
 * ```ts
 * import { decode } from "@bab/bab";
 * import assert from "node:assert/strict";
 *
 * // Two varint-prefixed messages, "hi" and "bab", split mid-frame.
 * const chunks = [new Uint8Array([2, 104]), new Uint8Array([105, 3, 98, 97, 98])];
 * const texts: string[] = [];
 * for await (const message of decode(chunks)) {
 *   texts.push(new TextDecoder().decode(message));
 * }
 * assert.deepEqual(texts, ["hi", "bab"]);
 * ```
 *
 * @example Staging in a pool of your own, with another codec
 * ```ts
 * import { BufferPool, decode, encode, lengthPrefix } from "@bab/bab";
 * import assert from "node:assert/strict";
 *
 * const pool = new BufferPool({ bufferSize: 4096, bufferCount: 4 });
 * const codec = lengthPrefix(2);
 * const messages = [new Uint8Array([1, 2, 3]), new Uint8Array(0), new Uint8Array([4])];
 * const decoded: Uint8Array[] = [];
 * for await (const message of decode(encode(messages, { codec }), { codec, pool })) {
 *   decoded.push(message);
 * }
 * assert.deepEqual(decoded, messages);
 * assert.equal(pool.stats().inUse, 0); // the staging buffer is back
 * ```
 */
export async function* decode(
  source: AsyncIterable<Uint8Array | ByteList> | Iterable<Uint8Array | ByteList>,
  options: DecodeOptions = {},
): AsyncGenerator<Uint8Array, void, undefined> {
  const codec = options.codec ?? varintPrefix();
  const signal = options.signal;
  const acquireOptions = signal === undefined ? undefined : { signal };
  const cutter = options.pool === undefined
    ? cutterOfOwnPool(codec, options.maxFrameLength ?? DEFAULT_MAX_FRAME_LENGTH)
    : new FrameCutter(
      options.pool,
      options.maxFrameLength === undefined
        ? { codec }
        : { codec, maxFrameLength: options.maxFrameLength },
    );
  // Each message is copied out while it is visited: the staging memory is
  // reused once the visitor returns, so nothing the loop yields pins it.
  const ready: Uint8Array[] = [];
  const visit: FrameVisitor = (bytes, start, end) => {
    ready.push(bytes.slice(start, end));
  };
  try {
    for await (const chunk of source) {
      signal?.throwIfAborted();
      const bytes = chunk instanceof Uint8Array ? chunk : chunk.subarray();
      let taken = 0;
      for (;;) {
        try {
          taken += cutter.push(taken === 0 ? bytes : bytes.subarray(taken), visit);
        } catch (error) {
          // The messages before the bad frame are good: hand them out first.
          for (const message of ready.splice(0)) yield message;
          throw error;
        }
        for (let i = 0; i < ready.length; i++) yield ready[i]!;
        ready.length = 0;
        if (taken === bytes.length) break;
        // Only a shared pool runs out: the cutter pins nothing of its own.
        await cutter.waitForBuffer(acquireOptions);
      }
    }
    cutter.end(visit);
    for (const message of ready) yield message;
  } finally {
    cutter.close();
  }
}

/** A cutter on a pool of one buffer that holds a frame of `maxFrameLength` bytes. */
function cutterOfOwnPool(codec: FrameCodec, maxFrameLength: number): FrameCutter {
  if (!Number.isSafeInteger(maxFrameLength) || maxFrameLength < 0) {
    throw new RangeError(
      `Cannot decode frames: maxFrameLength must be a non-negative integer, received ${maxFrameLength}`,
    );
  }
  const payload = Math.min(maxFrameLength, codec.maxPayload);
  // Room for the codec's longest header, not just the one a writer puts on
  // this length: a varint padded with 0x80 bytes still decodes.
  const frameSize = codec.headerLength(codec.maxPayload) + payload + codec.trailerLength;
  if (frameSize > MAX_BUFFER_SIZE) {
    throw new RangeError(
      `Cannot decode frames: a maxFrameLength of ${maxFrameLength} bytes needs a ${frameSize}-byte buffer with its ${codec.name} framing, over the limit of ${MAX_BUFFER_SIZE} bytes`,
    );
  }
  const bufferSize = Math.max(frameSize, MIN_OWN_BUFFER);
  return new FrameCutter(new BufferPool({ bufferSize, bufferCount: 1 }), {
    codec,
    maxFrameLength: payload,
  });
}
