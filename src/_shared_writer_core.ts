// The working parts of a SharedWriter in one worker, behind its documented
// face (shared_writer.ts): placing messages through the block's cursor,
// switching buffers, settling reservations, publishing, waiting, and
// settling what a dead worker left. The protocol's steps themselves live in
// _shared_writer_block.ts; this class keeps this worker's side of them.

import type { BufferPool } from "./buffer_pool.ts";
import type { Packet } from "./packet.ts";
import type { ClosedError } from "./errors.ts";
import type { BufferRecord } from "./_buffer_record.ts";
import type { ReserveOptions } from "./writer_options.ts";
import type { WriteFlusher } from "./write_flusher.ts";
import { SharedReservation } from "./shared_reservation.ts";
import type { SharedReservationOwner } from "./_shared_link.ts";
import type { SharedWriterHandle } from "./shared_writer_options.ts";
import type { WriterConfig } from "./_writer_config.ts";
import { utf8Length } from "./_writer_framing.ts";
import { MessageLayout } from "./_message_layout.ts";
import { encodeInto, isSharedArrayBuffer } from "./_shared_memory.ts";
import { TurnWaiters } from "./_shared_writer_waits.ts";
import {
  claim,
  claimSwitch,
  commitRowWord,
  dropSwitch,
  E_INDEX,
  install,
  nextSeq,
  notifyAll,
  offsetOf,
  ringSlots,
  ringWord,
  seal,
  sealForGood,
  seqOf,
  slotOf,
  slotOfSeq,
  SW_CLOSED,
  SW_CURSOR,
  SW_DELIVER,
  SW_HANDLES,
  SW_ID,
  SW_LOCK,
  SW_WORKERS,
  switchEnds,
} from "./_shared_writer_block.ts";
import { commit, useRow } from "./_shared_commit_counts.ts";
import {
  countHandle,
  forget,
  hasFreeRecord,
  remember,
  takeHandles,
  takeOverSwitch,
  takeRecords,
  tooManyOpen,
} from "./_shared_reservations.ts";
import { SharedPublisher } from "./_shared_publisher.ts";
import { F_CLOSED } from "./_flush_list.ts";
import {
  checkReclaimable,
  closedError,
  droppedError,
  waitWhileOpenError,
  whyClosed,
} from "./_shared_writer_errors.ts";

/** One worker's side of a shared writer. */
export class SharedWriterCore implements SharedReservationOwner<SharedReservation> {
  /** The id carried by this writer's {@linkcode FlushRegion}s. */
  readonly id: number;
  /** This worker's pool object. */
  readonly pool: BufferPool;
  readonly #sw: Int32Array;
  readonly #control: Int32Array;
  readonly #flusher: WriteFlusher | null;
  readonly #publisher: SharedPublisher;
  readonly #waiters: TurnWaiters;
  readonly #shared: boolean;
  readonly #size: number;
  /** How it lays messages out; the NATS publisher sets its filler. */
  readonly layout: MessageLayout;
  readonly #microtask: boolean;
  readonly #flushBytes: number;
  /** This worker's pool slot + 1: who holds the switch or the publisher's lock. */
  readonly #me: number;
  /** This worker's pool slot when claims are recorded for a reclaim (shared pools), else -1. */
  readonly #worker: number;
  /** Int32 index of this worker's row of commit counts in the block. */
  readonly #row: number;
  #closed = false;
  #scheduled = false;
  #unflushed = 0;
  /** The record of the last claim placed by a write, to drop once it is committed. */
  #record = -1;
  /** The buffer, cursor and frame of the last {@link tryPlace}. */
  placed: Uint8Array = new Uint8Array(0);
  #placedCursor = 0;
  #placedFrame = 0;
  /** Per ring slot, the buffer's record last seen there, so placing allocates nothing. */
  readonly #buffers: (BufferRecord | null)[];
  /** This handle's open reservations, oldest first. */
  #oldest: SharedReservation | null = null;
  #newest: SharedReservation | null = null;
  /** This worker's switch to the next buffer, while it runs; a closed handle drops it, for another to take. */
  #switching: AbortController | null = null;

  readonly #flushTask = () => {
    this.#scheduled = false;
    this.#unflushed = 0;
    this.#publisher.publish();
  };

  constructor(
    pool: BufferPool,
    config: WriterConfig,
    sw: Int32Array,
  ) {
    const control = config.control;
    Atomics.add(sw, SW_HANDLES, 1);
    this.id = sw[SW_ID]!;
    this.pool = pool;
    this.#sw = sw;
    this.#buffers = new Array<BufferRecord | null>(ringSlots(sw)).fill(null);
    this.#control = control;
    this.#flusher = config.flusher;
    this.#shared = pool.shared;
    this.#size = pool.bufferSize;
    this.layout = new MessageLayout(config.codec, pool.bufferSize);
    this.#microtask = config.microtask;
    this.#flushBytes = config.flushBytes;
    this.#me = pool.shared ? pool.workerId + 1 : 1;
    this.#worker = pool.shared ? pool.workerId : -1;
    this.#row = commitRowWord(sw, Math.max(this.#worker, 0));
    if (pool.shared) useRow(sw, this.#worker);
    this.#publisher = new SharedPublisher(sw, pool, control, config.flusher, this.#me);
    this.#waiters = new TurnWaiters(sw, pool.shared);
    if (this.#worker >= 0) countHandle(sw, this.#worker, 1);
    config.flusher?._register(this);
  }

  get handle(): SharedWriterHandle {
    const block = this.#sw.buffer;
    const control = this.#control.buffer;
    if (!isSharedArrayBuffer(block) || !isSharedArrayBuffer(control)) {
      throw new TypeError(
        "Cannot get the handle of a shared writer of a one-worker pool: make the pool with shared: true",
      );
    }
    return { block, control };
  }
  /** Whether this handle was closed, or the writer ended. */
  get closed(): boolean {
    return this.#closed || Atomics.load(this.#sw, SW_CLOSED) !== 0;
  }
  tryReserve(length: number): SharedReservation | null {
    const frame = this.layout.frameOf(length);
    const cursor = this.#claim(frame);
    return cursor === -1 ? null : this.#reservation(cursor, frame, length);
  }
  async reserve(length: number, options?: ReserveOptions): Promise<SharedReservation> {
    options?.signal?.throwIfAborted(); // as Writer.reserve: an aborted call claims nothing
    const frame = this.layout.frameOf(length);
    for (;;) {
      const cursor = this.#claim(frame);
      if (cursor !== -1) return this.#reservation(cursor, frame, length);
      await this.#waitTurn(options?.signal);
    }
  }
  /** A frame placed for `length` bytes, to fill in `placed` and settle at once, with no object
   * made: the payload's offset there, or -1 when the next buffer must be waited for. */
  tryPlace(length: number, frame = this.layout.frameOf(length)): number {
    const cursor = this.#claim(frame);
    if (cursor === -1) return -1;
    const buffer = this.#bufferOf(slotOf(this.#sw, cursor));
    this.placed = buffer._view;
    this.#placedCursor = cursor;
    this.#placedFrame = frame;
    return this.#place(buffer, cursor, frame, length);
  }
  settlePlaced(): void {
    this.#settle(this.#placedCursor, this.#placedFrame, this.#record);
  }
  tryWrite(bytes: Uint8Array): boolean {
    const payload = this.tryPlace(bytes.length);
    if (payload === -1) return false;
    this.placed.set(bytes, payload);
    this.settlePlaced();
    return true;
  }
  async write(bytes: Uint8Array, options?: ReserveOptions): Promise<void> {
    options?.signal?.throwIfAborted();
    while (!this.tryWrite(bytes)) await this.#waitTurn(options?.signal);
  }
  tryWriteString(text: string): boolean {
    const length = utf8Length(text);
    const payload = this.tryPlace(length, this.layout.stringFrameOf(text, length));
    if (payload === -1) return false;
    encodeInto(text, this.placed.subarray(payload, payload + length));
    this.settlePlaced();
    return true;
  }
  async writeString(text: string, options?: ReserveOptions): Promise<void> {
    options?.signal?.throwIfAborted();
    while (!this.tryWriteString(text)) await this.#waitTurn(options?.signal);
  }
  flush(): void {
    this.#unflushed = 0;
    const publisher = this.#publisher;
    publisher.publish();
    if (publisher.dropped) {
      publisher.dropped = false;
      throw droppedError(this.#control);
    }
  }
  close(): void {
    if (this.#closed) return;
    for (let open = this.#newest; open !== null; open = this.#newest) {
      this._cancel(open);
      open._closed = whyClosed(this.#control);
    }
    this.#closed = true;
    this.#switching?.abort();
    this.#waiters.wake();
    const sw = this.#sw;
    if (this.#worker >= 0) countHandle(sw, this.#worker, -1);
    if (Atomics.sub(sw, SW_HANDLES, 1) === 1) this.#finish();
    this.#publisher.publish();
    this.#flusher?._unregister(this);
  }
  reclaim(workerId: number): number {
    const sw = this.#sw;
    checkReclaimable(workerId, sw[SW_WORKERS]!, this.#worker);
    const settled = takeRecords(sw, workerId, this.#settleDead);
    Atomics.compareExchange(sw, SW_LOCK, workerId + 1, 0);
    takeOverSwitch(sw, this.pool._words, (index) => this.pool._headerOf(index), workerId + 1);
    const handles = takeHandles(sw, workerId);
    if (handles > 0 && Atomics.sub(sw, SW_HANDLES, handles) === handles) this.#finish();
    this.#publisher.publish();
    notifyAll(sw);
    this.#waiters.wake();
    return settled;
  }
  // -- Settling, called by reservations --

  /** @ignore */
  _commit(reservation: SharedReservation): void {
    this.#unlink(reservation);
    this.#settle(reservation._cursor, reservation._frameLength, reservation._record);
  }
  /** @ignore */
  _commitToPacket(reservation: SharedReservation): Packet {
    // This worker's reference first: the commit may make the buffer whole,
    // and the flusher may let go of it at once.
    const buffer = reservation._buffer;
    buffer.share();
    const start = reservation._payloadStart;
    const packet = buffer.toPacket(start, start + reservation.length);
    buffer.release();
    this._commit(reservation);
    return packet;
  }

  /** @ignore */
  _cancel(reservation: SharedReservation): void {
    this.layout.zero(
      reservation._buffer,
      reservation._frameStart,
      reservation._frameLength,
      reservation.length,
    );
    this._commit(reservation);
  }
  // -- Placing --

  /** Claims `frame` bytes: the cursor before the claim, or -1 if the next buffer must be waited for. */
  #claim(frame: number): number {
    if (this.#closed || this.#control[F_CLOSED] !== 0) throw this.#closedError();
    if (this.#worker >= 0 && !hasFreeRecord(this.#sw, this.#worker)) throw tooManyOpen();
    const sw = this.#sw;
    for (;;) {
      const cursor = claim(sw, frame, this.#size, this.#shared);
      if (cursor !== -1) return cursor;
      if (!this.#turnOver(frame)) return -1;
    }
  }
  /**
   * No room for `frame`: seals the buffer if it is still the full one, and
   * switches to the next if no other worker is at it. Whether to claim again.
   */
  #turnOver(frame: number): boolean {
    const sw = this.#sw;
    if (Atomics.load(sw, SW_CLOSED) !== 0 || Atomics.load(this.#control, F_CLOSED) !== 0) {
      throw this.#closedError();
    }
    const cursor = Atomics.load(sw, SW_CURSOR);
    if (cursor >= 0) {
      if (offsetOf(this.#sw, cursor) + frame <= this.#size) return true;
      // Sealed and marked: it goes to the flusher once whole.
      if (seal(sw, this.#shared) !== -1) this.#publisher.publishSoon();
    }
    if (this.#switching !== null) return false;
    if (!claimSwitch(sw, this.#me)) return switchEnds(sw);
    let next = nextSeq(sw);
    if (next === -2) {
      // The ring's oldest buffer may be whole, its publish not yet run.
      this.#publisher.publish();
      next = nextSeq(sw);
    }
    if (next === -1) {
      dropSwitch(sw, this.#me);
      return true;
    }
    const buffer = next === -2 ? null : this.pool._tryAcquireRecord();
    if (buffer !== null) {
      this.#install(buffer, next);
      return true;
    }
    // The switch goes on without the caller, which may give up waiting.
    this.#switching = new AbortController();
    this.#switchLater(this.#switching.signal).finally(() => {
      this.#switching = null;
      this.#waiters.wake();
    });
    return false;
  }
  /** Switches to the next buffer once the pool (or the ring) has room; never rejects. */
  async #switchLater(signal: AbortSignal): Promise<void> {
    const sw = this.#sw;
    try {
      for (;;) {
        // Read before nextSeq looks: a mark that moves in between wakes the wait.
        const delivered = Atomics.load(sw, SW_DELIVER);
        const next = nextSeq(sw);
        if (next === -1) break;
        if (next === -2) {
          await this.#publisher.waitDelivered(delivered);
          continue;
        }
        const buffer = await this.pool._acquireRecord({ signal });
        this.#install(buffer, next);
        return;
      }
    } catch {
      // The pool was detached here, or the handle closed: another worker may switch.
    }
    dropSwitch(sw, this.#me);
  }

  #install(buffer: BufferRecord, seq: number): void {
    // The flusher's token becomes the buffer's only hold: every worker
    // writes into it, none owns it.
    this.pool._lend(buffer);
    buffer.release();
    const sw = this.#sw;
    install(sw, this.pool._words, this.pool._headerOf(buffer.index), buffer.index, seq);
    this.#buffers[slotOfSeq(this.#sw, seq)] = buffer;
    // Closed meanwhile, or the flusher ended (no claim could reach it): nobody else will seal it.
    const closed = Atomics.load(sw, SW_CLOSED) !== 0 || Atomics.load(this.#control, F_CLOSED) !== 0;
    if (closed) this.#finish();
    this.#waiters.wake();
    // The sealed buffer before it may be whole already, unless a publish
    // delivered it (then every buffer before this one went).
    if (closed) this.#publisher.publish();
    else if (Atomics.load(sw, SW_DELIVER) !== seq) this.#publisher.publishSoon();
  }

  #bufferOf(slot: number): BufferRecord {
    const index = this.#sw[ringWord(slot) + E_INDEX]!;
    const buffer = this.#buffers[slot]!;
    if (buffer !== null && buffer.index === index) return buffer;
    return this.#buffers[slot] = this.pool._recordOf(index);
  }
  /** Writes the frame's header (and trailer) for a claim; returns where the payload goes. */
  #place(buffer: BufferRecord, cursor: number, frame: number, length: number): number {
    const start = offsetOf(this.#sw, cursor);
    if (this.#worker >= 0) {
      this.#record = remember(
        this.#sw,
        this.#worker,
        seqOf(this.#sw, cursor),
        start,
        frame,
        length,
      );
    }
    return this.layout.frame(buffer, start, length);
  }

  #reservation(cursor: number, frame: number, length: number): SharedReservation {
    const slot = slotOf(this.#sw, cursor);
    const buffer = this.#bufferOf(slot);
    const payload = this.#place(buffer, cursor, frame, length);
    const reservation = new SharedReservation(
      this,
      buffer,
      cursor,
      offsetOf(this.#sw, cursor),
      frame,
      payload,
      length,
      this.#worker >= 0 ? this.#record : -1,
    );
    reservation._prev = this.#newest;
    if (this.#newest === null) this.#oldest = reservation;
    else this.#newest._next = reservation;
    this.#newest = reservation;
    return reservation;
  }
  /** Counts a placed frame as committed, and flushes as the cadence says. */
  #settle(cursor: number, frame: number, record: number): void {
    if (this.#worker >= 0) forget(this.#sw, this.#worker, record);
    if (commit(this.#sw, this.#row, slotOf(this.#sw, cursor), frame, this.#shared)) {
      // Sealed: this commit may have made the buffer whole.
      this.#publisher.publishSoon();
    } else if (this.#microtask && !this.#scheduled) {
      this.#scheduled = true;
      queueMicrotask(this.#flushTask);
    }
    if ((this.#unflushed += frame) >= this.#flushBytes) {
      this.#unflushed = 0;
      this.#publisher.publish();
    }
  }
  /** Zeroes and commits one open claim a dead worker left. */
  readonly #settleDead = (seq: number, offset: number, frame: number, payload: number): void => {
    const slot = slotOfSeq(this.#sw, seq);
    this.layout.zero(this.#bufferOf(slot), offset, frame, payload);
    commit(this.#sw, this.#row, slot, frame, true);
  };

  #unlink(reservation: SharedReservation): void {
    const prev = reservation._prev;
    const next = reservation._next;
    if (prev === null) this.#oldest = next;
    else prev._next = next;
    if (next === null) this.#newest = prev;
    else next._prev = prev;
    reservation._prev = reservation._next = null;
    reservation._owner = null;
  }
  /** Seals the buffer for good: the last handle closed. */
  #finish(): void {
    sealForGood(this.#sw, this.#shared);
    this.#waiters.wake();
  }

  // -- Waiting --

  /** Waits until the next buffer is in, or the writer closed. */
  #waitTurn(signal: AbortSignal | undefined): Promise<void> {
    if (this.#closed) return Promise.reject(this.#closedError());
    if (this.#newest !== null) return Promise.reject(waitWhileOpenError());
    return this.#waiters.wait(signal, this.#switching !== null);
  }

  #closedError(): ClosedError {
    return closedError(this.#control, this.#closed);
  }
}
