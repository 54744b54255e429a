// Numbered messages for SharedWriter tests, placed in each of its ways:
// [w u32][seq u32][(seq + i) & 0xff ...], 8 to 47 bytes long (the same shape
// as writeNumbered, so checkMessages verifies them).
import type { SharedReservation, SharedWriter } from "../mod.ts";

/** How sharedNumbered places its messages. */
export type PlaceMode = "reserve" | "write" | "pairs";

function fill(bytes: Uint8Array, w: number, seq: number): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  view.setUint32(0, w);
  view.setUint32(4, seq);
  for (let i = 8; i < bytes.length; i++) bytes[i] = (seq + i) & 0xff;
}

/** The size of message `seq` of writer `w`. */
export function sizeOf(w: number, seq: number): number {
  return 8 + ((seq * 7 + w) % 40);
}

/**
 * Places `count` numbered messages of writer `w`. "reserve": reserve, fill,
 * commit. "write": copy a prepared message in with write(). "pairs": two
 * reservations open at once, committed newest first.
 */
export async function sharedNumbered(
  writer: SharedWriter,
  w: number,
  count: number,
  mode: PlaceMode,
): Promise<void> {
  const scratch = new Uint8Array(48);
  for (let seq = 0; seq < count; seq++) {
    const size = sizeOf(w, seq);
    if (mode === "write") {
      const message = scratch.subarray(0, size);
      fill(message, w, seq);
      await writer.write(message);
    } else if (mode === "pairs" && seq + 1 < count) {
      // Two open at once, committed newest first; a handle may not wait
      // while it holds one, so the second is only tried.
      const first: SharedReservation = await writer.reserve(size);
      fill(first.bytes, w, seq);
      const second = writer.tryReserve(sizeOf(w, seq + 1));
      if (second === null) first.commit();
      else {
        fill(second.bytes, w, seq + 1);
        second.commit();
        first.commit();
        seq++;
      }
    } else {
      const r = await writer.reserve(size);
      fill(r.bytes, w, seq);
      r.commit();
    }
    // Let the other side of the test (and timers) run now and then.
    if (seq % 64 === 63) await new Promise((resolve) => setTimeout(resolve, 0));
  }
}
