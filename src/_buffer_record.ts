// The library's own record of one pooled buffer in this worker: its memory
// and this worker's references to it. A pool object makes one per buffer, on
// first use, and keeps it for good, so internal users (packets, writers,
// flushers, frame cutters) reach a buffer without allocating. Users never see
// it: each acquire hands them a fresh PooledBuffer that holds the record
// until released, so a handle kept too long cannot reach the next owner.

import type { BufferPool } from "./buffer_pool.ts";
import { Packet } from "./packet.ts";

/** One buffer as this worker sees it; reference counting without ownership checks. */
export class BufferRecord {
  /** The pool object that made this record. */
  readonly pool: BufferPool;
  /** The buffer's index in its pool; the same in every worker. */
  readonly index: number;
  /** The whole buffer's memory. */
  readonly _view: Uint8Array;
  /** References held in this worker: handles', packets', regions', writers', tokens'. */
  _refs = 0;
  /** Units of the shared count this worker holds (shared pools). */
  _units = 0;
  /** A DataView over the whole buffer, made on first use and kept: writers' claims hand it out. */
  #data: DataView | null = null;

  constructor(pool: BufferPool, index: number, view: Uint8Array) {
    this.pool = pool;
    this.index = index;
    this._view = view;
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

  /** Takes one more reference in this worker, for a packet, region or token. */
  retain(): void {
    this._refs++;
  }

  /**
   * Whether the one reference in this worker is the caller's and no other
   * worker holds the buffer: then its memory may be rewritten in place.
   */
  get alone(): boolean {
    return this._refs === 1 && this._units === 0;
  }

  /** Drops one of this worker's references; the last one recycles the buffer. */
  release(): void {
    if (--this._refs === 0) this.pool._recycle(this);
  }
}
