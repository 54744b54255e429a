// A NATS publish written into a writer's space: the control line and
// headers before the payload, the CRLF after it, and the errors of a
// publish that does not fit. The publisher's paths and its reservations
// share them.

import type { Reservation } from "../reservation.ts";
import type { SharedReservation } from "../shared_reservation.ts";
import type { SharedWriter } from "../shared_writer.ts";
import type { Writer } from "../writer.ts";
import type { ReserveOptions } from "../writer_options.ts";
import { encodeInto } from "../_shared_memory.ts";
import type { FramePlacer } from "../_frame_placer.ts";
import type { NatsHeaders } from "./nats_headers.ts";
import type { NatsPublishOptions } from "./nats_publisher_options.ts";
import { NatsReservation } from "./nats_reservation.ts";
import type { NatsSubject } from "./nats_subject.ts";
import type { OpenNatsReservations } from "./_nats_open.ts";
import { wildcardError } from "./_nats_checks.ts";
import { controlLength, writeControl, writeEnd } from "./_nats_wire.ts";

/**
 * The frame length of a publish of `total` bytes of headers and payload,
 * after every check.
 *
 * @throws {TypeError} If the subject or reply has a wildcard.
 * @throws {RangeError} If `total` exceeds `maxPayload`, or the frame `bufferSize`.
 */
export function frameLength(
  subject: NatsSubject,
  reply: NatsSubject | undefined,
  headerLength: number,
  total: number,
  maxPayload: number,
  bufferSize: number,
): number {
  if (subject.wildcard) throw wildcardError(subject.text, "publish to");
  if (reply !== undefined && reply.wildcard) throw wildcardError(reply.text, "reply to");
  if (total > maxPayload) throw tooLarge(headerLength, total, maxPayload);
  const frame = controlLength(
    subject.bytes.length,
    reply === undefined ? 0 : reply.bytes.length,
    headerLength,
    total,
  ) + total + 2;
  if (frame > bufferSize) throw tooLong(frame, total, bufferSize);
  return frame;
}

/**
 * The frame length of a publish of `length` bytes of payload with `options`.
 *
 * @throws {RangeError} If `length` is not an integer from 0 up; as {@linkcode frameLength}.
 */
export function reservedFrame(
  subject: NatsSubject,
  length: number,
  options: NatsPublishOptions | undefined,
  maxPayload: number,
  bufferSize: number,
): number {
  if (length >>> 0 !== length) {
    throw new RangeError(`Cannot reserve ${length} bytes of payload: not an integer from 0 up`);
  }
  const headers = options?.headers;
  const headerLength = headers === undefined ? 0 : headers.bytes.length;
  return frameLength(
    subject,
    options?.reply,
    headerLength,
    headerLength + length,
    maxPayload,
    bufferSize,
  );
}

/** The longest ASCII payload copied by a loop rather than by `encodeInto` on a view. */
const ASCII_LOOP_MAX = 64;

/** Where a publisher writes: its writer, and how it places a message with nothing made. */
export interface PublishTarget {
  readonly writer: Writer | SharedWriter;
  /** The writer when it is a Writer: published to through its claim. */
  readonly claimer: Writer | null;
  /** The SharedWriter's placer otherwise. */
  readonly placer: FramePlacer | null;
  readonly maxPayload: number;
  /** The pool's buffer size: the largest frame. */
  readonly bufferSize: number;
}

/**
 * Publishes `payload` (bytes, or text whose UTF-8 takes `length` bytes)
 * through `target` now, if there is room; makes nothing.
 */
export function publishNow(
  target: PublishTarget,
  subject: NatsSubject,
  payload: Uint8Array | string,
  length: number,
  options: NatsPublishOptions | undefined,
): boolean {
  const frame = reservedFrame(subject, length, options, target.maxPayload, target.bufferSize);
  const claimer = target.claimer;
  if (claimer !== null) {
    const claim = claimer.tryClaim(frame);
    if (claim === null) return false;
    writePublish(claim.buffer, claim.offset, subject, options, payload, length);
    claim.commit();
    return true;
  }
  const placer = target.placer!;
  const at = placer.tryPlace(frame);
  if (at === -1) return false;
  writePublish(placer.placed, at, subject, options, payload, length);
  placer.settlePlaced();
  return true;
}

/** As {@linkcode publishNow}, waiting for room. */
export async function publishLater(
  target: PublishTarget,
  subject: NatsSubject,
  payload: Uint8Array | string,
  length: number,
  options: (NatsPublishOptions & ReserveOptions) | undefined,
): Promise<void> {
  const frame = reservedFrame(subject, length, options, target.maxPayload, target.bufferSize);
  if (target.claimer !== null) {
    const claim = await target.claimer.claim(frame, options);
    writePublish(claim.buffer, claim.offset, subject, options, payload, length);
    claim.commit();
    return;
  }
  const reservation = await (target.writer as SharedWriter).reserve(frame, options);
  writePublish(reservation.bytes, 0, subject, options, payload, length);
  reservation.commit();
}

/** Writes the control line and headers at `at`; returns where the payload goes. */
export function fill(
  buffer: Uint8Array,
  at: number,
  subject: NatsSubject,
  reply: NatsSubject | undefined,
  headers: NatsHeaders | undefined,
  total: number,
): number {
  if (headers === undefined) return writeControl(buffer, at, subject.bytes, reply?.bytes, 0, total);
  const block = headers.bytes;
  at = writeControl(buffer, at, subject.bytes, reply?.bytes, block.length, total);
  buffer.set(block, at);
  return at + block.length;
}

/** Writes a whole publish of `payload` (bytes, or text of `length` bytes of UTF-8) at `at`. */
function writePublish(
  buffer: Uint8Array,
  at: number,
  subject: NatsSubject,
  options: NatsPublishOptions | undefined,
  payload: Uint8Array | string,
  length: number,
): void {
  const headers = options?.headers;
  const total = (headers === undefined ? 0 : headers.bytes.length) + length;
  put(buffer, fill(buffer, at, subject, options?.reply, headers, total), payload, length);
}

/** Writes the payload (bytes, or text as UTF-8 of `length` bytes) at `at`, and the CRLF after it. */
export function put(
  buffer: Uint8Array,
  at: number,
  payload: Uint8Array | string,
  length: number,
): void {
  if (typeof payload !== "string") buffer.set(payload, at);
  else if (length === payload.length && length <= ASCII_LOOP_MAX) {
    // ASCII: a loop makes no view, and beats one for short text.
    for (let i = 0; i < length; i++) buffer[at + i] = payload.charCodeAt(i);
  } else encodeInto(payload, buffer.subarray(at, at + length));
  writeEnd(buffer, at + length);
}

/** Writes a reservation's frame around its payload: the NatsReservation over it, listed as open. */
export function frameReservation(
  inner: Reservation | SharedReservation,
  subject: NatsSubject,
  length: number,
  options: NatsPublishOptions | undefined,
  open: OpenNatsReservations,
): NatsReservation {
  const bytes = inner.bytes;
  const headers = options?.headers;
  const total = (headers === undefined ? 0 : headers.bytes.length) + length;
  const at = fill(bytes, 0, subject, options?.reply, headers, total);
  writeEnd(bytes, at + length);
  const reservation = new NatsReservation(subject, inner, bytes, at, length, open);
  open.add(reservation);
  return reservation;
}

function tooLarge(headerLength: number, total: number, maxPayload: number): RangeError {
  return new RangeError(
    `Cannot publish ${total} bytes (${headerLength} of headers, ${
      total - headerLength
    } of payload): the server takes at most ${maxPayload} (max_payload)`,
  );
}

export function tooLong(frame: number, total: number, bufferSize: number): RangeError {
  return new RangeError(
    `Cannot publish ${total} bytes: with its control line the message takes ${frame}, and the pool's buffers hold ${bufferSize}`,
  );
}
