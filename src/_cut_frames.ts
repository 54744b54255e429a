// A frame cutter's two cutting loops: every complete frame in the staged
// bytes goes to the sink, packets into an array or a visitor called in
// place. One loop per kind of sink, so that each stays small and its calls
// monomorphic. A length prefix is read inline, one load per frame; the
// codec's own decode takes over at the first frame that is unfinished or
// too long, to say so in its own way.

import { prefixedFrameEnd } from "./_length_prefix.ts";
import type { Staging } from "./_staging.ts";
import type { Packet } from "./packet.ts";

/**
 * Appends a packet to `sink` for each complete frame staged in `staging`.
 * @returns Where the unfinished frame starts: for `staging.settle`.
 */
export function cutIntoPackets(staging: Staging, sink: Packet[]): number {
  const codec = staging.codec;
  const view = staging.view;
  const bounds = staging.bounds;
  const max = staging.maxFrameLength;
  const buffer = staging.buffer!;
  const end = staging.end;
  let start = staging.start;
  let scan = staging.scan;
  const prefix = staging.prefixSize;
  if (prefix !== 0) {
    const data = buffer._dataView;
    const little = staging.prefixLittleEndian;
    for (;;) {
      const payloadEnd = prefixedFrameEnd(data, start, end, prefix, little, max);
      if (payloadEnd < 0) break;
      sink.push(buffer.toPacket(start + prefix, payloadEnd));
      start = scan = payloadEnd;
    }
  }
  while (start < end && codec.decode(view, start, end, max, bounds, scan)) {
    sink.push(buffer.toPacket(bounds.payloadStart, bounds.payloadEnd));
    start = scan = bounds.frameEnd;
  }
  return start;
}

/**
 * Calls `visit` with each complete frame staged in `staging`, in place,
 * until they run out or the visitor closes `cutter`. During each call
 * `staging.bounds` holds the frame's payload, for the cutter's `retain`.
 * @returns Where the unfinished frame starts: for `staging.settle`, unless
 * the cutter was closed.
 */
export function cutIntoVisitor<C extends { readonly closed: boolean }>(
  staging: Staging,
  visit: (bytes: Uint8Array, start: number, end: number, cutter: C) => void,
  cutter: C,
): number {
  const codec = staging.codec;
  const view = staging.view;
  const bounds = staging.bounds;
  const max = staging.maxFrameLength;
  const end = staging.end;
  let start = staging.start;
  let scan = staging.scan;
  const prefix = staging.prefixSize;
  if (prefix !== 0) {
    const data = staging.buffer!._dataView;
    const little = staging.prefixLittleEndian;
    for (;;) {
      const payloadEnd = prefixedFrameEnd(data, start, end, prefix, little, max);
      if (payloadEnd < 0) break;
      bounds.payloadStart = start + prefix;
      bounds.payloadEnd = payloadEnd;
      visit(view, start + prefix, payloadEnd, cutter);
      start = scan = payloadEnd;
      if (cutter.closed) return start;
    }
  }
  while (start < end && codec.decode(view, start, end, max, bounds, scan)) {
    visit(view, bounds.payloadStart, bounds.payloadEnd, cutter);
    start = scan = bounds.frameEnd;
    if (cutter.closed) break;
  }
  return start;
}
