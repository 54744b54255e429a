// A frame cutter's cutting loops: every complete frame in the staged bytes
// goes to the sink, packets into an array or a visitor called in place.
// One set of loops per kind of sink, so that each stays small and its calls
// monomorphic. A length prefix is read inline, one load per frame; the
// codec's own decode takes over at the first frame that is unfinished or
// too long, to say so in its own way.
//
// Each loop is a function of its own that returns right after it: code
// after a hot loop, in the same function, first runs once the loop is
// optimized, and V8 would otherwise leave the optimized loop on every
// chunk for want of feedback on it.

import { prefixedFrameEnd } from "./_length_prefix.ts";
import type { Staging } from "./_staging.ts";
import type { Packet } from "./packet.ts";

/**
 * Appends a packet to `sink` for each complete frame staged in `staging`.
 * @returns Where the unfinished frame starts: for `staging.settle`.
 */
export function cutIntoPackets(staging: Staging, sink: Packet[]): number {
  const from = staging.start;
  const start = staging.prefixSize === 0 ? from : prefixedIntoPackets(staging, from, sink);
  return decodedIntoPackets(staging, start, start === from ? staging.scan : start, sink);
}

/** Whether a cutter was closed: a plain field, read once per frame. */
export interface CutterState {
  readonly closed: boolean;
}

/**
 * Calls `visit` with each complete frame staged in `staging`, in place,
 * with `cutter` as its last argument, until they run out or `state` says
 * the cutter closed (the visitor may close it). During each call
 * `staging.bounds` holds the frame's payload, for the cutter's `retain`.
 * @returns Where the unfinished frame starts: for `staging.settle`, unless
 * the cutter was closed.
 */
export function cutIntoVisitor<C>(
  staging: Staging,
  visit: (bytes: Uint8Array, start: number, end: number, cutter: C) => void,
  cutter: C,
  state: CutterState,
): number {
  const from = staging.start;
  const start = staging.prefixSize === 0
    ? from
    : prefixedIntoVisitor(staging, from, visit, cutter, state);
  if (state.closed) return start;
  return decodedIntoVisitor(
    staging,
    start,
    start === from ? staging.scan : start,
    visit,
    cutter,
    state,
  );
}

/** The inline length-prefix loop of {@linkcode cutIntoPackets}. */
function prefixedIntoPackets(staging: Staging, start: number, sink: Packet[]): number {
  const buffer = staging.buffer!;
  const data = buffer._dataView;
  const end = staging.end;
  const prefix = staging.prefixSize;
  const little = staging.prefixLittleEndian;
  const max = staging.maxFrameLength;
  for (;;) {
    const payloadEnd = prefixedFrameEnd(data, start, end, prefix, little, max);
    if (payloadEnd < 0) return start;
    sink.push(buffer.toPacket(start + prefix, payloadEnd));
    start = payloadEnd;
  }
}

/** The codec's loop of {@linkcode cutIntoPackets}, resuming a search at `scan`. */
function decodedIntoPackets(staging: Staging, start: number, scan: number, sink: Packet[]): number {
  const codec = staging.codec;
  const view = staging.view;
  const bounds = staging.bounds;
  const max = staging.maxFrameLength;
  const buffer = staging.buffer!;
  const end = staging.end;
  while (start < end && codec.decode(view, start, end, max, bounds, scan)) {
    sink.push(buffer.toPacket(bounds.payloadStart, bounds.payloadEnd));
    start = scan = bounds.frameEnd;
  }
  return start;
}

/** The inline length-prefix loop of {@linkcode cutIntoVisitor}. */
function prefixedIntoVisitor<C>(
  staging: Staging,
  start: number,
  visit: (bytes: Uint8Array, start: number, end: number, cutter: C) => void,
  cutter: C,
  state: CutterState,
): number {
  const view = staging.view;
  const data = staging.buffer!._dataView;
  const bounds = staging.bounds;
  const end = staging.end;
  const prefix = staging.prefixSize;
  const little = staging.prefixLittleEndian;
  const max = staging.maxFrameLength;
  for (;;) {
    const payloadEnd = prefixedFrameEnd(data, start, end, prefix, little, max);
    if (payloadEnd < 0) return start;
    // Where retain() finds the frame being visited.
    bounds.payloadStart = start + prefix;
    bounds.payloadEnd = payloadEnd;
    visit(view, start + prefix, payloadEnd, cutter);
    start = payloadEnd;
    if (state.closed) return start;
  }
}

/** The codec's loop of {@linkcode cutIntoVisitor}, resuming a search at `scan`. */
function decodedIntoVisitor<C>(
  staging: Staging,
  start: number,
  scan: number,
  visit: (bytes: Uint8Array, start: number, end: number, cutter: C) => void,
  cutter: C,
  state: CutterState,
): number {
  const codec = staging.codec;
  const view = staging.view;
  const bounds = staging.bounds;
  const max = staging.maxFrameLength;
  const end = staging.end;
  while (start < end && codec.decode(view, start, end, max, bounds, scan)) {
    visit(view, bounds.payloadStart, bounds.payloadEnd, cutter);
    start = scan = bounds.frameEnd;
    if (state.closed) break;
  }
  return start;
}
