// Helpers for the send-side tests: numbered messages to write and check,
// reading a flusher or a byte stream to its end, and cutting frames out.
import assert from "node:assert/strict";
import {
  type FlushRegion,
  FrameBounds,
  type FrameCodec,
  type WriteFlusher,
  type Writer,
} from "../mod.ts";

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

/** Reads regions' bytes and releases them: one batch, or (with `all`) to the stream's end. */
export async function readBytes(
  reader: ReadableStreamDefaultReader<FlushRegion[]>,
  all = true,
): Promise<number[]> {
  const bytes: number[] = [];
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return bytes;
    for (const region of value) {
      // No spread: a region can hold more bytes than a call takes arguments.
      for (const byte of region.bytes) bytes.push(byte);
      region.release();
    }
    if (!all) return bytes;
  }
}

/** Closes the writer and the flusher and reads every byte still to come, releasing it. */
export async function finish(
  writer: Writer,
  flusher: WriteFlusher,
  reader: ReadableStreamDefaultReader<FlushRegion[]>,
): Promise<number[]> {
  writer.close();
  flusher.close();
  return await readBytes(reader);
}

/** How a numbered writer lets other work run: every `every` messages, `pause()`. */
export interface Pacing {
  every: number;
  pause(): Promise<unknown>;
}

/** Lets timers and other tasks run, as a real producer doing I/O would. */
export const YIELD_TO_TASKS: Pacing = {
  every: 64,
  pause: () => new Promise((resolve) => setTimeout(resolve, 0)),
};

/**
 * Writes `count` numbered messages of writer `w`:
 * [w u32][seq u32][(seq + i) & 0xff ...], 8 to 47 bytes long so that they
 * straddle buffer boundaries. {@link checkMessages} verifies them.
 */
export async function writeNumbered(
  writer: Writer,
  w: number,
  count: number,
  pacing: Pacing,
): Promise<void> {
  for (let seq = 0; seq < count; seq++) {
    const size = 8 + ((seq * 7 + w) % 40);
    const r = await writer.reserve(size);
    const view = new DataView(r.bytes.buffer, r.bytes.byteOffset, size);
    view.setUint32(0, w);
    view.setUint32(4, seq);
    for (let i = 8; i < size; i++) r.bytes[i] = (seq + i) & 0xff;
    r.commit();
    if (seq % pacing.every === 0) await pacing.pause();
  }
}

/** Checks the messages of {@link writeNumbered}: each exactly once, in per-writer order. */
export function checkMessages(frames: Uint8Array[], writers: number, perWriter: number): void {
  const next = new Array<number>(writers).fill(0);
  for (const frame of frames) {
    const view = new DataView(frame.buffer, frame.byteOffset, frame.length);
    const w = view.getUint32(0);
    const seq = view.getUint32(4);
    assert.equal(seq, next[w], `writer ${w}: message ${seq} out of order or repeated`);
    next[w]!++;
    assert.equal(frame.length, 8 + ((seq * 7 + w) % 40));
    for (let i = 8; i < frame.length; i++) assert.equal(frame[i], (seq + i) & 0xff);
  }
  assert.deepEqual(next, new Array(writers).fill(perWriter), "every message arrived");
}
