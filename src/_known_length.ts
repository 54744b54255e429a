// Decoding a frame whose payload length is known before the payload is
// there: read from a header (length and varint prefixes) or fixed by the
// codec (fixed size). The length is checked against the caller's limit as
// soon as it is known, and the frame's bounds follow from it.

import { FrameError } from "./errors.ts";
import type { FrameBounds } from "./frame_bounds.ts";
import type { FrameCodec } from "./frame_codec.ts";

/**
 * Completes a decode once the header is read: the payload is `length` bytes
 * from `payloadStart`, and the frame is complete when they are all before
 * `end`. The bounds are known either way, so they are set either way. Only
 * for codecs without a trailer.
 */
export function finishKnownLength(
  payloadStart: number,
  length: number,
  end: number,
  out: FrameBounds,
): boolean {
  const frameEnd = payloadStart + length;
  out.frameEnd = frameEnd;
  out.payloadStart = payloadStart;
  out.payloadEnd = frameEnd;
  if (frameEnd > end) return false;
  out.scanned = frameEnd;
  return true;
}

/** The error for a header announcing a payload over `maxFrameLength` bytes. */
export function tooLong(codec: FrameCodec, length: number, maxFrameLength: number): FrameError {
  return new FrameError(
    `Cannot decode frame: the ${codec.name} announces a ${length}-byte payload, over the maxFrameLength of ${maxFrameLength} bytes`,
    length,
    maxFrameLength,
  );
}
