// Helpers for the send-side tests: reading a byte stream to its end and
// cutting it into frames with a codec's decoder.
import assert from "node:assert/strict";
import { FrameBounds, type FrameCodec } from "../mod.ts";

/** Reads `conn` until the peer closes it; returns every byte. */
export async function readAll(conn: Deno.Conn): Promise<Uint8Array> {
  return new Uint8Array(await new Response(conn.readable).arrayBuffer());
}

/** Cuts `bytes` into payloads with `codec`; the bytes must end on a frame boundary. */
export function parseFrames(codec: FrameCodec, bytes: Uint8Array): Uint8Array[] {
  const out = new FrameBounds();
  const frames: Uint8Array[] = [];
  let start = 0;
  while (start < bytes.length) {
    assert.ok(
      codec.decode(bytes, start, bytes.length, bytes.length, out),
      `a partial frame at byte ${start} of ${bytes.length}`,
    );
    frames.push(bytes.subarray(out.payloadStart, out.payloadEnd));
    start = out.frameEnd;
  }
  return frames;
}
