// What a worker keeps in a SharedWriter's block about the claims it holds
// open, so that if it dies another worker can settle them: one bit per
// record in use, and per record the claim's buffer, offset and lengths.
// Only the owner writes them (plain stores: nobody reads them while it
// lives); a reclaim reads them once the owner is gone, and takes over a
// switch the dead worker held.

import {
  cursorSeq,
  dropSwitch,
  E_INDEX,
  E_SEQ,
  install,
  O_FRAME,
  O_OFFSET,
  O_PAYLOAD,
  O_SEQ,
  OPEN_MAX,
  openBitsWord,
  openRecordWord,
  ringWord,
  slotOfSeq,
  SW_CURSOR,
  SW_SWITCHER,
} from "./_shared_writer_block.ts";

/** Whether worker `worker` has a free record. */
export function hasFreeRecord(sw: Int32Array, worker: number): boolean {
  return sw[openBitsWord(sw, worker)] !== -1;
}

/** The error for a worker with every record in use. */
export function tooManyOpen(): RangeError {
  return new RangeError(
    `Cannot reserve: this worker holds ${OPEN_MAX} open reservations of the shared writer, the most it may; commit or cancel one first`,
  );
}

/** Records an open claim of worker `worker`; returns the record's number. A free one must exist. */
export function remember(
  sw: Int32Array,
  worker: number,
  seq: number,
  offset: number,
  frame: number,
  payload: number,
): number {
  const bitsWord = openBitsWord(sw, worker);
  const bits = sw[bitsWord]!;
  // The lowest clear bit.
  const record = 31 - Math.clz32(~bits & (bits + 1));
  const word = openRecordWord(sw, worker, record);
  sw[word + O_SEQ] = seq;
  sw[word + O_OFFSET] = offset;
  sw[word + O_FRAME] = frame;
  sw[word + O_PAYLOAD] = payload;
  sw[bitsWord] = bits | (1 << record);
  return record;
}

/** Drops record `record` of worker `worker`: its claim was settled. */
export function forget(sw: Int32Array, worker: number, record: number): void {
  const bitsWord = openBitsWord(sw, worker);
  sw[bitsWord] = sw[bitsWord]! & ~(1 << record);
}

/**
 * Takes every record of a dead worker, calling `settle(seq, offset, frame,
 * payload)` for each, and clears them.
 *
 * @returns How many there were.
 */
export function takeRecords(
  sw: Int32Array,
  worker: number,
  settle: (seq: number, offset: number, frame: number, payload: number) => void,
): number {
  let bits = Atomics.exchange(sw, openBitsWord(sw, worker), 0);
  let count = 0;
  while (bits !== 0) {
    const record = 31 - Math.clz32(bits);
    bits &= ~(1 << record);
    const word = openRecordWord(sw, worker, record);
    settle(sw[word + O_SEQ]!, sw[word + O_OFFSET]!, sw[word + O_FRAME]!, sw[word + O_PAYLOAD]!);
    count++;
  }
  return count;
}

/** Counts a handle opened (+1) or closed (-1) in worker `worker`. */
export function countHandle(sw: Int32Array, worker: number, delta: number): void {
  Atomics.add(sw, openBitsWord(sw, worker) + 1, delta);
}

/** Takes the count of a dead worker's handles. */
export function takeHandles(sw: Int32Array, worker: number): number {
  return Atomics.exchange(sw, openBitsWord(sw, worker) + 1, 0);
}

/**
 * Takes the switch from the dead worker slot + 1 `dead`, if it held it: a
 * buffer it installed but did not open yet is opened (its token is the
 * writer's already); otherwise the switch is dropped, for a waiter to take.
 */
export function takeOverSwitch(
  sw: Int32Array,
  pool: Int32Array,
  headerOf: (index: number) => number,
  dead: number,
): void {
  if (Atomics.load(sw, SW_SWITCHER) !== dead) return;
  if (Atomics.load(sw, SW_CURSOR) < 0) {
    const next = cursorSeq(sw) + 1;
    const word = ringWord(slotOfSeq(sw, next));
    if (Atomics.load(sw, word + E_SEQ) === next) {
      const index = sw[word + E_INDEX]!;
      install(sw, pool, headerOf(index), index, next);
      return;
    }
  }
  dropSwitch(sw, dead);
}
