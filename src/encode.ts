/**
 * {@linkcode encode}: messages from any iterable, each framed into one
 * `Uint8Array` ready to write to a byte stream. The wire format of
 * `it-length-prefixed`'s `encode` by default. For the other direction see
 * {@linkcode decode}.
 *
 * @module
 */

import type { FrameCodec } from "./frame_codec.ts";
import { varintPrefix } from "./varint_prefix.ts";
import type { ByteList } from "./decode.ts";

/** Options for {@linkcode encode}. */
export interface EncodeOptions {
  /** How frames are marked. Defaults to {@linkcode varintPrefix}. */
  codec?: FrameCodec;
}

/**
 * Frames each message of `source` with a {@linkcode FrameCodec} and yields
 * the frame, header, payload and trailer in one new `Uint8Array`: one write
 * a message. With the default codec, {@linkcode varintPrefix}, the bytes
 * are what the npm package `it-length-prefixed` writes (it yields a
 * message's prefix and payload as two arrays; the stream is the same), and
 * {@linkcode decode} or `it-length-prefixed`'s `decode` read them back.
 *
 * Messages may be `Uint8Array`s or {@linkcode ByteList}s such as
 * `Uint8ArrayList`s. Each is copied once, into its frame, so the caller may
 * reuse its memory as soon as the frame is yielded. To write many messages
 * without an array each, frame them in place in pooled memory with a
 * {@linkcode Writer}.
 *
 * Leaving the loop early (`break`, `return`, an error) closes the source's
 * iterator, as `for await` does.
 *
 * @param source The messages.
 * @param options The codec; {@linkcode varintPrefix} unless given.
 * @returns The frames, one per message, in order.
 * @throws {RangeError} If a message cannot be framed: longer than the
 * codec's `maxPayload`, not the size of a {@linkcode fixedSize} codec, or,
 * for a {@linkcode delimiter} codec, containing the delimiter. The frames
 * before it have been yielded.
 *
 * @example Varint-prefixed frames, as it-length-prefixed writes them
 * ```ts
 * import { encode } from "@bab/bab";
 * import assert from "node:assert/strict";
 *
 * const messages = [new Uint8Array([7, 8, 9]), new Uint8Array(300)];
 * const frames: Uint8Array[] = [];
 * for await (const frame of encode(messages)) frames.push(frame);
 * assert.deepEqual([...frames[0]!], [3, 7, 8, 9]);
 * assert.deepEqual([...frames[1]!.subarray(0, 2)], [0xac, 0x02]); // 300 as a varint
 * assert.equal(frames[1]!.length, 302);
 * ```
 *
 * @example Lines, from an async source
 * ```ts
 * import { delimiter, encode } from "@bab/bab";
 * import assert from "node:assert/strict";
 *
 * async function* lines() {
 *   yield new TextEncoder().encode("hello");
 *   yield new TextEncoder().encode("world");
 * }
 * let text = "";
 * for await (const frame of encode(lines(), { codec: delimiter("\n") })) {
 *   text += new TextDecoder().decode(frame);
 * }
 * assert.equal(text, "hello\nworld\n");
 * ```
 */
export async function* encode(
  source: AsyncIterable<Uint8Array | ByteList> | Iterable<Uint8Array | ByteList>,
  options: EncodeOptions = {},
): AsyncGenerator<Uint8Array, void, undefined> {
  const codec = options.codec ?? varintPrefix();
  for await (const message of source) {
    yield codec.encode(message instanceof Uint8Array ? message : message.subarray());
  }
}
