// The encode side the codecs share: the check that a payload length is one
// the codec can express, and a whole frame made in a new array for
// `FrameCodec.encode`, which frames through the codec's own in-place methods.

import type { FrameCodec } from "./frame_codec.ts";

/** Throws a RangeError unless `payloadLength` is an integer from 0 to the codec's `maxPayload`. */
export function checkPayloadLength(codec: FrameCodec, payloadLength: number): void {
  if (!Number.isInteger(payloadLength) || payloadLength < 0 || payloadLength > codec.maxPayload) {
    throw new RangeError(
      `Cannot encode payload length ${payloadLength} with ${codec.name}: it must be an integer from 0 to ${codec.maxPayload}`,
    );
  }
}

/** Header, payload and trailer of `payload`'s frame, in a new array. */
export function encodeFrame(codec: FrameCodec, payload: Uint8Array): Uint8Array {
  const length = payload.length;
  const header = codec.headerLength(length);
  const frame = new Uint8Array(header + length + codec.trailerLength);
  codec.encodeHeader(frame, 0, length);
  frame.set(payload, header);
  codec.encodeTrailer(frame, header + length);
  return frame;
}
