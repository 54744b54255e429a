/**
 * {@linkcode PacketBytesStream}: packets in, plain bytes out, for the
 * standard streams that take `Uint8Array`s (`TextDecoderStream`,
 * `CompressionStream`, a file or socket's `writable`).
 *
 * @module
 */

import { ReleasedError } from "./errors.ts";
import { Packet } from "./packet.ts";

/**
 * A transform stream that copies each {@linkcode Packet}'s bytes into a
 * fresh `Uint8Array` (on its own `ArrayBuffer`, even when the pool is
 * shared) and releases the packet at once, so that what comes out holds no
 * pool memory and may be kept, transferred or handed to any byte consumer.
 *
 * Every packet written while the stream is open belongs to it from then
 * on: when the readable side is cancelled or the writable side aborted
 * (also by a failed pipe on either side), each packet still waiting in the
 * writable side's queue is released too, even though its write rejects. A
 * write to a stream that has already ended is refused and leaves the
 * packet with the caller (its `released` is still `false`).
 *
 * For a {@linkcode Framer}, the `output: "bytes"` option does the same
 * copy without a stage of its own.
 *
 * @example Decoding frames as text
 * ```ts
 * import { BufferPool, delimiter, Framer, PacketBytesStream } from "@bab/bab";
 * import assert from "node:assert/strict";
 *
 * const pool = new BufferPool({ bufferSize: 64, bufferCount: 2 });
 * const input = ReadableStream.from([new TextEncoder().encode("hello\nworld\n")]);
 * const text = input
 *   .pipeThrough(new Framer(pool, { codec: delimiter("\n") }))
 *   .pipeThrough(new PacketBytesStream())
 *   .pipeThrough(new TextDecoderStream());
 * const parts: string[] = [];
 * for await (const part of text) parts.push(part);
 * assert.equal(parts.join(""), "helloworld");
 * assert.equal(pool.stats().inUse, 0);
 * ```
 */
export class PacketBytesStream extends TransformStream<Packet, Uint8Array<ArrayBuffer>> {
  /** Makes the stream. */
  constructor() {
    // Packets the writable side has queued but not yet handed to
    // `transform`, oldest first. A WritableStream drops its queue without a
    // word when it is aborted; the queuing strategy's `size` is the one
    // hook that sees each chunk as it enters that queue, so it records them
    // here, and `cancel` releases what is left.
    let queued: unknown[] = [];
    let head = 0;
    let ended = false;
    function releaseQueued(): void {
      ended = true;
      for (let i = head; i < queued.length; i++) {
        const packet = queued[i];
        if (packet instanceof Packet && !packet.released) packet.release();
      }
      queued = [];
      head = 0;
    }
    super({
      transform(packet, controller) {
        queued[head] = undefined;
        head++;
        if (head === queued.length) {
          queued.length = 0;
          head = 0;
        }
        // A bad chunk errors both sides, which calls no `cancel`: release here.
        if (!(packet instanceof Packet)) {
          releaseQueued();
          throw new TypeError(
            `Cannot copy a packet's bytes: PacketBytesStream takes Packets, got ${
              describe(packet)
            }`,
          );
        }
        if (packet.released) {
          releaseQueued();
          throw new ReleasedError(
            "Cannot copy a packet's bytes: it was already released",
          );
        }
        const copy = packet.bytes.slice();
        packet.release();
        controller.enqueue(copy);
      },
      flush() {
        ended = true;
      },
      cancel: releaseQueued,
    }, {
      highWaterMark: 1,
      size(packet) {
        if (!ended) queued.push(packet);
        return 1;
      },
    });
  }
}

/** What a chunk that is not a packet is, for the error message. */
function describe(chunk: unknown): string {
  if (chunk === null) return "null";
  if (typeof chunk !== "object") return typeof chunk;
  return chunk.constructor?.name ?? "an object";
}
