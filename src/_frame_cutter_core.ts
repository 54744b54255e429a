// Everything a FrameCutter does, behind its documented face in
// frame_cutter.ts: whether it is closed or in a visit, the checks each call
// makes, and how a call drives the staging buffer (_staging.ts) and the
// cutting loops (_cut_frames.ts). Generic over the face the visitors are
// given, so that this file does not import the face that imports it.

import { cutIntoPackets, cutIntoVisitor } from "./_cut_frames.ts";
import { Staging } from "./_staging.ts";
import type { AcquireOptions, BufferPool } from "./buffer_pool.ts";
import { ClosedError, ReleasedError } from "./errors.ts";
import type { FrameCodec } from "./frame_codec.ts";
import type { Packet } from "./packet.ts";

/** A visitor as the core calls it: `cutter` is the face it was given. */
type Visit<C> = (bytes: Uint8Array, start: number, end: number, cutter: C) => void;

/**
 * A frame cutter's machinery; the {@linkcode FrameCutter} a user holds
 * forwards each call to it, and is the `C` its visitors are called with.
 */
export class FrameCutterCore<C extends { readonly closed: boolean }> {
  /** Closed, ended, or broken by an error. */
  closed = false;
  /**
   * A visitor is running: the frame it was given is in the staging's
   * bounds, and the cutter's state must not change under it.
   */
  #visiting = false;
  /**
   * Ends every waitForBuffer in progress: close() must not leave one waiting
   * for a release. Made by the first wait; aborted once, by close().
   */
  #stopWaits: AbortController | null = null;
  /** The face, handed to each visitor call. */
  readonly #face: C;
  readonly #pool: BufferPool;
  readonly #allowPartial: boolean;
  /** The staging buffer and the unfinished frame in it. */
  readonly #staging: Staging;

  /** For `face`, whose options were checked: see the {@linkcode FrameCutter} constructor. */
  constructor(
    face: C,
    pool: BufferPool,
    codec: FrameCodec,
    maxFrameLength: number,
    allowPartial: boolean,
  ) {
    this.#face = face;
    this.#pool = pool;
    this.#allowPartial = allowPartial;
    this.#staging = new Staging(pool, codec, maxFrameLength);
  }

  // -- The calls of FrameCutter, documented there --

  get buffered(): number {
    return this.#staging.end - this.#staging.start;
  }

  get needsBuffer(): boolean {
    return this.#staging.needsBuffer;
  }

  push(chunk: Uint8Array, sink: Packet[] | Visit<C>): number {
    if (this.closed || this.#visiting) throw this.#stateError("push bytes into");
    const staging = this.#staging;
    const length = chunk.length;
    let taken = 0;
    try {
      while (taken < length) {
        if (staging.needsBuffer && (this.closed || !staging.next())) break;
        taken = staging.append(chunk, taken);
        this.#cut(sink);
      }
    } catch (error) {
      this.#abandon();
      throw error;
    }
    return taken;
  }

  writable(): Uint8Array | null {
    if (this.closed || this.#visiting) throw this.#stateError("read into");
    const staging = this.#staging;
    if (staging.needsBuffer && !staging.next()) return null;
    return staging.view.subarray(staging.end);
  }

  commit(length: number, sink: Packet[] | Visit<C>): void {
    if (this.closed || this.#visiting) throw this.#stateError("commit bytes to");
    if (length === 0) return;
    const staging = this.#staging;
    const room = staging.needsBuffer ? 0 : staging.size - staging.end;
    if (!Number.isInteger(length) || length < 0 || length > room) {
      throw new RangeError(
        `Cannot commit ${length} bytes: the staging memory from writable() has ${room} free`,
      );
    }
    staging.end += length;
    try {
      this.#cut(sink);
    } catch (error) {
      this.#abandon();
      throw error;
    }
  }

  async waitForBuffer(options?: AcquireOptions): Promise<void> {
    if (this.closed || this.#visiting) throw this.#stateError("wait for a buffer for");
    const staging = this.#staging;
    if (!staging.needsBuffer || staging.next()) return;
    // Packets pin the staging buffer and the pool has nothing free. Let go
    // of the buffer, so that releasing those packets hands it back here.
    staging.park();
    const stop = this.#stopWaits ??= new AbortController();
    const own = options?.signal;
    let fresh;
    try {
      fresh = await this.#pool._acquireRecord({
        signal: own === undefined ? stop.signal : AbortSignal.any([own, stop.signal]),
      });
    } catch (error) {
      // The caller's own reason first: a stream cancelled with one closes the cutter too.
      if (own?.aborted) throw own.reason;
      if (this.closed) throw this.#closedError("wait for a buffer for");
      throw error;
    }
    if (this.closed || !staging.needsBuffer) {
      fresh.release();
      if (this.closed) throw this.#closedError("wait for a buffer for");
      return;
    }
    staging.install(fresh);
  }

  end(sink: Packet[] | Visit<C>): void {
    if (this.closed || this.#visiting) throw this.#stateError("end");
    const staging = this.#staging;
    if (staging.end > staging.start) {
      // A frame set aside by a given-up wait needs a buffer to be a packet on.
      const buffer = this.#allowPartial ? staging.buffer ?? staging.restore() : null;
      if (buffer === null) {
        const error = staging.truncated(this.#allowPartial);
        this.close();
        throw error;
      }
      if (typeof sink !== "function") {
        sink.push(buffer.toPacket(staging.start, staging.end));
      } else {
        const bounds = staging.bounds;
        bounds.payloadStart = staging.start;
        bounds.payloadEnd = staging.end;
        this.#visiting = true;
        try {
          sink(staging.view, staging.start, staging.end, this.#face);
        } finally {
          this.#abandon();
        }
        return;
      }
    }
    this.close();
  }

  retain(): Packet {
    if (!this.#visiting) {
      throw new ReleasedError(
        "Cannot retain a frame: none is being visited; call retain() from the visitor, during the visit of the frame to keep",
      );
    }
    const bounds = this.#staging.bounds;
    return this.#staging.buffer!.toPacket(bounds.payloadStart, bounds.payloadEnd);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.#stopWaits?.abort();
    // The visiting loop lets go of the buffer once the visitor returns.
    if (!this.#visiting) this.#staging.drop();
  }

  // -- Cutting and stopping --

  /** Closes the cutter after an error, even one thrown by a visitor that had closed it. */
  #abandon(): void {
    this.#visiting = false;
    this.closed = true;
    this.#staging.drop();
  }

  /** Hands `sink` every complete frame staged, then notes how the unfinished one stands. */
  #cut(sink: Packet[] | Visit<C>): void {
    const staging = this.#staging;
    if (typeof sink !== "function") {
      staging.settle(cutIntoPackets(staging, sink));
      return;
    }
    this.#visiting = true;
    const start = cutIntoVisitor(staging, sink, this.#face, this);
    this.#visiting = false;
    // A visitor that closed the cutter left it the buffer until now.
    if (this.closed) staging.drop();
    else staging.settle(start);
  }

  #stateError(action: string): Error {
    if (this.#visiting) {
      return new TypeError(
        `Cannot ${action} the frame cutter during a visit: a visitor may only retain() or close() it`,
      );
    }
    return this.#closedError(action);
  }

  #closedError(action: string): ClosedError {
    return new ClosedError(
      `Cannot ${action} the frame cutter: it was closed (by close(), end() or a framing error)`,
    );
  }
}
