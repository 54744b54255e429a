// A buffer as this worker sees it (its record), and the hybrid reference
// counts that decide when a buffer is free, both sides of them.
//
// A pool object makes one record per buffer, on first use, and keeps it for
// good, so internal users (packets, writers, flushers, frame cutters) reach a
// buffer without allocating. Users never see it: each acquire hands them a
// fresh PooledBuffer that holds the record until released, so that a handle
// kept too long cannot reach the next owner.
//
// The counts. Each worker counts its own references to a buffer in a plain
// field of its record: cloning a packet touches no Atomics. A buffer that
// only one worker holds has no shared count at all: its header's H_OWNER
// names that worker (slot + 1). Once references leave the worker (a
// SendPacket, a flusher's token), the header's H_SHARED_REFS counts units:
// one per worker that holds local references, plus one per reference in
// flight. A worker keeps at most one unit, and while it does its holder bit
// is set, so that reclaiming a dead worker knows what it held from one bit.
// The last unit to go frees the buffer, in the worker that dropped it.
//
//   moveOut   local references leave (send, lend): the count gains them, and
//             the worker's own unit leaves with the last of them
//   takeIn    references arrive (receive, claim): the first becomes the
//             worker's unit, the rest are subtracted at once
//   release   the last local reference goes: the worker's unit goes too
//   detach    what a leaving worker holds becomes plain units, no holder bit
//   reclaim   another worker takes back what a dead one held (reclaimHeld)
//
// Each exported step function touches one word that another worker may
// touch at the same time, so that tests/explorer/ref_count_model.ts runs
// these very functions one step at a time under many interleavings. The
// record's methods fuse them; the model repeats their branches from the same
// steps, in the same order.

import {
  dataByteOf,
  H_OWNER,
  H_SHARED_REFS,
  headerWord,
  holderBit,
  holderWord,
  type Layout,
} from "./_layout.ts";
import type { BufferLink, PoolLink } from "./_buffer_link.ts";
import { Packet } from "./packet.ts";
import type { SendPacket } from "./send_packet.ts";
import { isSharedArrayBuffer } from "./_shared_memory.ts";

/** The pool object as its records see it: where freed buffers go, and how sends are made. */
export interface RecordPool extends PoolLink {
  /** The last reference anywhere to `record`'s buffer went: it is free in this worker. */
  _recycle(record: BufferRecord): void;
  /** Makes a SendPacket of a region of `record`'s buffer, moving one reference into it. */
  _send(record: BufferRecord, offset: number, length: number): SendPacket;
}

// -- Steps: one shared word each --

/**
 * Names the worker that holds the buffer at `header` alone (slot + 1), or
 * 0 for nobody alone. A plain store: only the holder writes it, and others
 * read it only once that worker is gone.
 */
export function setOwner(words: Int32Array, header: number, owner: number): void {
  words[header + H_OWNER] = owner;
}

/** The worker (slot + 1) holding the buffer at `header` alone; 0 if none. */
export function ownerOf(words: Int32Array, header: number): number {
  return words[header + H_OWNER]!;
}

/** Sets or clears one holder bit: `bit` of Int32 word `word`. */
export function setHolder(words: Int32Array, word: number, bit: number, holds: boolean): void {
  if (holds) Atomics.or(words, word, bit);
  else Atomics.and(words, word, ~bit);
}

/** Clears one holder bit and returns whether it was set. */
export function dropHolder(words: Int32Array, word: number, bit: number): boolean {
  return (Atomics.and(words, word, ~bit) & bit) !== 0;
}

/** Starts the shared count of a buffer held by one worker until now, which nobody else reads yet. */
export function startShared(words: Int32Array, header: number, units: number): void {
  Atomics.store(words, header + H_SHARED_REFS, units);
}

/** Adds units to a shared count. */
export function addShared(words: Int32Array, header: number, units: number): void {
  Atomics.add(words, header + H_SHARED_REFS, units);
}

/** Subtracts units from a shared count; returns the count before. */
export function subShared(words: Int32Array, header: number, units: number): number {
  return Atomics.sub(words, header + H_SHARED_REFS, units);
}

// -- The reclaimer's side --

/**
 * Takes back what dead worker `worker` held: the buffers it had alone, and
 * its unit of the others', whose holder bits it clears.
 *
 * @returns The buffers that came free, in no chain.
 */
export function reclaimHeld(words: Int32Array, layout: Layout, worker: number): number[] {
  const owner = worker + 1;
  const freed: number[] = [];
  for (let index = 0; index < layout.bufferCount; index++) {
    const header = headerWord(layout, index);
    if (ownerOf(words, header) === owner) {
      setOwner(words, header, 0);
      freed.push(index);
      continue;
    }
    if (
      dropHolder(words, holderWord(layout, worker, index), holderBit(index)) &&
      subShared(words, header, 1) === 1
    ) {
      freed.push(index);
    }
  }
  return freed;
}

// -- The holding worker's side --

/**
 * One pool object's records, made on first use and kept, and what they
 * share: the block's words, the worker's id, whether it is still attached.
 */
export class WorkerRecords {
  readonly words: Int32Array;
  readonly layout: Layout;
  /** Whether the pool is shared, so that references can leave the worker. */
  readonly shared: boolean;
  /** The worker's slot number. */
  readonly worker: number;
  /** False once the pool object detached: its holder bits and owner mark are gone. */
  attached = true;
  readonly #pool: RecordPool;
  readonly #block: ArrayBuffer | SharedArrayBuffer;
  readonly #table: (BufferRecord | undefined)[];

  constructor(
    pool: RecordPool,
    block: ArrayBuffer | SharedArrayBuffer,
    words: Int32Array,
    layout: Layout,
    worker: number,
  ) {
    this.words = words;
    this.layout = layout;
    this.shared = isSharedArrayBuffer(block);
    this.worker = worker;
    this.#pool = pool;
    this.#block = block;
    this.#table = new Array(layout.bufferCount);
  }

  /** The record of buffer `index`. */
  get(index: number): BufferRecord {
    let record = this.#table[index];
    if (record === undefined) {
      const layout = this.layout;
      const view = new Uint8Array(this.#block, dataByteOf(layout, index), layout.bufferSize);
      record = this.#table[index] = new BufferRecord(this.#pool, this, index, view);
    }
    return record;
  }

  /**
   * The pool object detaches: what its records still hold becomes plain
   * units of the shared counts, so that nothing is marked as the slot's
   * when the slot's next owner may be reclaimed one day.
   */
  detach(): void {
    if (this.shared) {
      for (const record of this.#table) record?.detach();
    }
    this.attached = false;
  }
}

/** One buffer as this worker sees it; reference counting without ownership checks. */
export class BufferRecord implements BufferLink {
  /** The pool object that made this record. */
  readonly pool: RecordPool;
  /** The buffer's index in its pool; the same in every worker. */
  readonly index: number;
  /** The whole buffer's memory. */
  readonly _view: Uint8Array;
  readonly #records: WorkerRecords;
  /** Int32 index of the buffer's header. */
  readonly #header: number;
  /** References held in this worker: handles', packets', regions', writers', tokens'. */
  #refs = 0;
  /** Units of the shared count this worker holds: 0 or 1. */
  #units = 0;
  /** A DataView over the whole buffer, made on first use and kept: writers' claims hand it out. */
  #data: DataView | null = null;

  constructor(pool: RecordPool, records: WorkerRecords, index: number, view: Uint8Array) {
    this.pool = pool;
    this.index = index;
    this._view = view;
    this.#records = records;
    this.#header = headerWord(records.layout, index);
  }

  /** The buffer's DataView, made once per buffer on first use. */
  get _dataView(): DataView {
    const view = this._view;
    return this.#data ??= new DataView(view.buffer, view.byteOffset, view.byteLength);
  }

  /**
   * Takes a reference for a new packet on bytes `[begin, end)`. Unchecked:
   * callers hold a reference of their own and computed the range.
   */
  toPacket(begin: number, end: number): Packet {
    this.retain();
    return new Packet(this, begin, end - begin);
  }

  /** Takes the first reference to this free buffer, for whoever acquires it. */
  acquire(): void {
    this.#refs = 1;
  }

  /** Takes one more reference in this worker, for a packet, region or token. */
  retain(): void {
    this.#refs++;
  }

  /**
   * Whether the one reference in this worker is the caller's and no other
   * worker holds the buffer: then its memory may be rewritten in place.
   */
  get alone(): boolean {
    return this.#refs === 1 && this.#units === 0;
  }

  /** Drops one of this worker's references; the last one anywhere recycles the buffer. */
  release(): void {
    if (--this.#refs !== 0) return;
    if (this.#units !== 0 && !this.#dropUnit()) return;
    this.pool._recycle(this);
  }

  /** Makes a SendPacket of bytes `[offset, offset + length)`, moving one reference into it. */
  send(offset: number, length: number): SendPacket {
    return this.pool._send(this, offset, length);
  }

  /**
   * Moves `n` of this worker's references into flight: the shared count
   * gains the travelling units, and this worker's own unit leaves with them
   * when no local reference remains.
   */
  moveOut(n: number): void {
    const words = this.#records.words;
    const header = this.#header;
    if (this.#units === 0) {
      // Held alone until now, so nobody else reads the count yet.
      setOwner(words, header, 0);
      if (this.#refs === n) {
        startShared(words, header, n);
      } else {
        startShared(words, header, n + 1);
        this.#units = 1;
        this.#hold(true);
      }
    } else if (this.#refs === n) {
      const delta = n - this.#units;
      if (delta !== 0) addShared(words, header, delta);
      this.#units = 0;
      this.#hold(false);
    } else {
      addShared(words, header, n);
    }
    this.#refs -= n;
  }

  /**
   * Takes over `n` references that travelled here, each a unit of the shared
   * count. The worker keeps one unit at most: the rest go at once, so that a
   * reclaim knows what a worker held from one bit.
   */
  takeIn(n: number): void {
    this.#refs += n;
    if (this.#units === 0) {
      this.#units = 1;
      this.#hold(true);
      n--;
    }
    if (n !== 0) subShared(this.#records.words, this.#header, n);
  }

  /**
   * Takes a reference in this worker to a buffer that others hold and keep
   * alive meanwhile (a shared writer's buffer, held by its flusher's token):
   * a unit of the shared count, unless this worker holds one already.
   */
  share(): void {
    if (!this.#records.shared || this.#units !== 0) this.#refs++;
    else {
      addShared(this.#records.words, this.#header, 1);
      this.takeIn(1);
    }
  }

  /** Adds a reference that {@link claimLent} takes over later, perhaps in another worker. */
  lend(): void {
    this.#refs++;
    if (this.#records.shared) this.moveOut(1);
  }

  /** Takes over a reference lent with {@link lend}. */
  claimLent(): void {
    // In a pool of one worker the lent reference never left this record.
    if (this.#records.shared) this.takeIn(1);
  }

  /** See {@link WorkerRecords.detach}. */
  detach(): void {
    if (this.#refs === 0) return;
    if (this.#units === 0) {
      const words = this.#records.words;
      setOwner(words, this.#header, 0);
      startShared(words, this.#header, 1);
      this.#units = 1;
    } else {
      this.#hold(false);
    }
  }

  /** The last local reference went: gives up this worker's unit; true if it was the last anywhere. */
  #dropUnit(): boolean {
    const units = this.#units;
    this.#units = 0;
    this.#hold(false);
    const records = this.#records;
    if (subShared(records.words, this.#header, units) !== units) return false;
    // The last unit anywhere: the buffer is this worker's alone now.
    if (records.attached) setOwner(records.words, this.#header, records.worker + 1);
    return true;
  }

  /** Sets or clears this worker's holder bit, while it is attached. */
  #hold(holds: boolean): void {
    const records = this.#records;
    if (!records.attached) return;
    const { words, layout, worker } = records;
    setHolder(words, holderWord(layout, worker, this.index), holderBit(this.index), holds);
  }
}
