// The longest payload a frame cutter accepts: a frame must fit one of the
// pool's buffers, so the limit defaults to the longest payload that does,
// and a limit asked for may not be more.

import { FrameError } from "./errors.ts";
import { FrameBounds } from "./frame_bounds.ts";
import type { FrameCodec } from "./frame_codec.ts";
import { largestPayload } from "./largest_payload.ts";

/**
 * The `maxFrameLength` of a cutter with `codec` on a pool of `bufferSize`-
 * byte buffers: `requested`, or by default the longest payload whose frame
 * fits one buffer.
 *
 * @throws {RangeError} If no frame of the codec fits a buffer, or
 * `requested` is not an integer from 0 to the longest payload that does, or
 * is below the size of a fixed-size codec's frames.
 */
export function frameLimit(
  codec: FrameCodec,
  bufferSize: number,
  requested: number | undefined,
): number {
  const largest = largestPayload(codec, bufferSize);
  if (largest < 0) {
    throw new RangeError(
      `Cannot create frame cutter: not one ${codec.name} frame fits the pool's ${bufferSize}-byte buffers`,
    );
  }
  const maxFrameLength = requested ?? largest;
  if (
    !Number.isInteger(maxFrameLength) || maxFrameLength < 0 ||
    Math.min(maxFrameLength, codec.maxPayload) > largest
  ) {
    // Past the codec's own limit, a larger maxFrameLength changes nothing.
    const range = largest < codec.maxPayload
      ? `from 0 to ${largest} (the pool's ${bufferSize}-byte buffers less ${
        bufferSize - largest
      } bytes of ${codec.name} framing)`
      : `from 0 up`;
    throw new RangeError(
      `Cannot create frame cutter: maxFrameLength must be an integer ${range}, received ${maxFrameLength}`,
    );
  }
  try {
    // A codec whose frames are longer than the limit fails on every input.
    codec.decode(new Uint8Array(0), 0, 0, maxFrameLength, new FrameBounds());
  } catch (error) {
    if (!(error instanceof FrameError)) throw error;
    throw new RangeError(
      `Cannot create frame cutter: ${codec.name} frames carry ${error.frameLength}-byte payloads, over the maxFrameLength of ${maxFrameLength} bytes`,
    );
  }
  return maxFrameLength;
}
