// A writer's one claim, and what opening, committing or cancelling it does
// to the buffer it is in: its owner, as _open_reservations.ts is its
// reservations'. The claim is always the newest thing placed, so the space
// it leaves unused is taken back, never zeroed. The writer's fast path
// opens a one-message claim itself, inline (see _writer_core.ts); a run, a
// codec other than a length prefix, or a call that waited opens it here.

import type { ClosedError } from "./errors.ts";
import type { FrameCodec } from "./frame_codec.ts";
import { WriterClaim } from "./writer_claim.ts";
import type { Chunk } from "./_chunk.ts";
import type { CloseReason } from "./_close_reason.ts";
import type { CommitListener } from "./_open_reservations.ts";
import { frameAround, type InlinePrefix, writePrefix } from "./_writer_framing.ts";
import type { ClaimOwner } from "./_writer_link.ts";

/** What the claim tells its writer. */
export interface ClaimListener extends CommitListener {
  /** The claim was settled: the calls queued behind it may go. */
  claimSettled(): void;
}

/** The claim of one writer: its owner, from one message or run to the next. */
export class OpenClaim implements ClaimOwner<WriterClaim> {
  /** The one claim this writer hands out, again and again. */
  readonly claim: WriterClaim = new WriterClaim(this);
  readonly #writer: ClaimListener;
  readonly #reason: CloseReason;
  readonly #codec: FrameCodec | null;
  readonly #size: number;
  readonly #prefix: InlinePrefix;

  /** For a writer with `codec`, buffers of `size` bytes and `prefix`, its inline length prefix. */
  constructor(
    writer: ClaimListener,
    reason: CloseReason,
    codec: FrameCodec | null,
    size: number,
    prefix: InlinePrefix,
  ) {
    this.#writer = writer;
    this.#reason = reason;
    this.#codec = codec;
    this.#size = size;
    this.#prefix = prefix;
  }

  /**
   * Opens the claim on a run of up to `count` messages of `length` bytes
   * (`frame` framed) in `chunk`, as many as it has room for: at least one.
   */
  open(chunk: Chunk, length: number, frame: number, count: number): WriterClaim {
    const claim = this.claim;
    const start = chunk.reserved;
    const n = Math.min(count, Math.floor((this.#size - start) / frame));
    const last = start + n * frame;
    claim._frameStart = start;
    claim._length = length;
    claim._count = n;
    claim._stride = frame;
    chunk.reserved = last;
    const prefix = this.#prefix.size;
    if (prefix >= 0) {
      claim._offset = start + prefix;
      const little = this.#prefix.littleEndian;
      for (let at = start; at < last; at += frame) {
        writePrefix(chunk.data, at, prefix, little, length);
      }
    } else {
      // No inline prefix means a codec: every frame of the run has the same header and trailer.
      const codec = this.#codec!;
      claim._offset = frameAround(codec, chunk.view, start, length);
      for (let at = start + frame; at < last; at += frame) {
        frameAround(codec, chunk.view, at, length);
      }
    }
    claim._chunk = chunk;
    return claim;
  }

  /** @ignore Commits the claim's first `count` messages, then lets the calls behind it go. */
  _commitClaim(claim: WriterClaim, count: number): void {
    const chunk = claim._chunk!;
    claim._chunk = null;
    // Messages of a run left out: the claim is the newest, so they are taken back.
    if (count !== claim._count) chunk.reserved = claim._frameStart + count * claim._stride;
    // Nothing was placed after the claim: its frame ends the buffer's reserved space.
    if (chunk.open === 0) {
      chunk.committed = chunk.reserved;
      this.#writer.committed(chunk.reserved - claim._frameStart);
    }
    this.#writer.claimSettled();
  }

  /** @ignore Takes back the claim's space: nothing was placed after it. */
  _cancelClaim(claim: WriterClaim): void {
    claim._chunk!.reserved = claim._frameStart;
    claim._chunk = null;
    this.#writer.claimSettled();
  }

  /** The writer closes: the claim, if open, is taken back and fails from now on. */
  takeBack(): void {
    const claim = this.claim;
    if (claim._chunk === null) return;
    claim._chunk.reserved = claim._frameStart;
    claim._chunk = null;
    claim._closed = true;
  }

  /** The writer's buffers are gone: the claim, if open, fails from now on. */
  drop(): void {
    const claim = this.claim;
    if (claim._chunk === null) return;
    claim._chunk = null;
    claim._closed = true;
  }

  /** @ignore The error for `action` on the claim of the closed writer, saying why it closed. */
  _closedError(action: string, more = ""): ClosedError {
    return this.#reason._closedError(action, more);
  }
}
