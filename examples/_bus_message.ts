// The bus's message, shared by the demo and bench/e2e.ts so that the
// library and the hand-written bus do exactly the same work per message:
//
//   [producer u32][seq u32][check u32][filler: 32-bit words from check]
//
// Everything is derived from (producer, seq, size), so any changed, lost,
// repeated or reordered byte is caught. Both sides work on (DataView,
// offset) four bytes at a time: no view and no object per message.

import type { WriterClaim } from "../mod.ts";

/** Bytes before the filler. */
export const HEADER = 12;

/** Added to each filler word to get the next: odd, so words do not repeat soon. */
const STEP = 0x61c88647;

/** A cheap hash of a message's identity and length, as a signed 32-bit word. */
export function check(producer: number, seq: number, size: number): number {
  return Math.imul((Math.imul(producer, 0x9e3779b9) + seq) | 0, 0x85ebca6b) ^ size;
}

/**
 * Writes message `seq` of `producer`, `size` bytes, at `offset` of `view`.
 * A size that is not a multiple of 4 ends with the filler word's low bytes.
 */
export function fill(
  view: DataView,
  offset: number,
  size: number,
  producer: number,
  seq: number,
): void {
  let word = check(producer, seq, size);
  view.setInt32(offset, producer);
  view.setInt32(offset + 4, seq);
  view.setInt32(offset + 8, word);
  const end = offset + size;
  const whole = end - ((end - offset) & 3);
  let i = offset + HEADER;
  for (; i < whole; i += 4) {
    word = (word + STEP) | 0;
    view.setInt32(i, word, true);
  }
  word = (word + STEP) | 0;
  for (; i < end; i++, word >>>= 8) view.setUint8(i, word & 0xff);
}

/**
 * Fills every message of a run claimed with `writer.tryClaim(size, count)`
 * (message `first`, `first + 1`, ... of `producer`) and commits the run.
 *
 * @returns How many messages the run held.
 */
export function fillRun(run: WriterClaim, producer: number, first: number): number {
  const view = run.dataView;
  const stride = run.stride;
  const size = run.length;
  const count = run.count;
  const offset = run.offset;
  for (let i = 0; i < count; i++) fill(view, offset + i * stride, size, producer, first + i);
  run.commit();
  return count;
}

/**
 * What is wrong with the message of `size` bytes at `offset` of `view`, or
 * `undefined` if it is intact: its header matches its size and its filler
 * its header.
 */
export function damage(view: DataView, offset: number, size: number): string | undefined {
  if (size < HEADER) return `a message of ${size} bytes is shorter than its ${HEADER}-byte header`;
  const producer = view.getInt32(offset);
  const seq = view.getInt32(offset + 4);
  let word = view.getInt32(offset + 8);
  if (word !== check(producer, seq, size)) {
    return `producer ${producer} message ${seq}: header checksum mismatch`;
  }
  const end = offset + size;
  const whole = end - ((end - offset) & 3);
  let i = offset + HEADER;
  for (; i < whole; i += 4) {
    word = (word + STEP) | 0;
    if (view.getInt32(i, true) !== word) return changed(producer, seq, i - offset);
  }
  word = (word + STEP) | 0;
  for (; i < end; i++, word >>>= 8) {
    if (view.getUint8(i) !== (word & 0xff)) return changed(producer, seq, i - offset);
  }
  return undefined;
}

function changed(producer: number, seq: number, at: number): string {
  return `producer ${producer} message ${seq}: bytes from ${at} changed`;
}

/**
 * Checks every message a bus receives: each one intact, and in order per
 * producer (seq 0, 1, 2, ...). Records the first thing wrong in `failure`
 * and keeps counting; allocates only to describe a failure.
 */
export class MessageChecker {
  /** Messages checked. */
  received = 0;
  /** Their bytes (payloads, without framing). */
  bytes = 0;
  /** The first thing found wrong, if any. */
  failure: string | undefined = undefined;
  /** The seq expected next from each producer. */
  readonly next: Int32Array;

  constructor(producers: number) {
    this.next = new Int32Array(producers);
  }

  /** Checks the message of `size` bytes at `offset` of `view`. */
  check(view: DataView, offset: number, size: number): void {
    this.received++;
    this.bytes += size;
    const wrong = damage(view, offset, size);
    if (wrong !== undefined) {
      this.failure ??= wrong;
      return;
    }
    const producer = view.getInt32(offset);
    const seq = view.getInt32(offset + 4);
    if (producer < 0 || producer >= this.next.length) {
      this.failure ??= `a message from producer ${producer}, of ${this.next.length}`;
    } else if (seq !== this.next[producer]) {
      this.failure ??= `producer ${producer}: message ${seq} arrived, expected ${
        this.next[producer]
      }`;
    } else this.next[producer] = seq + 1;
  }

  /** Messages received in all, from the producers' seqs: must equal `received` when all is well. */
  get inOrder(): number {
    let sum = 0;
    for (const n of this.next) sum += n;
    return sum;
  }
}
