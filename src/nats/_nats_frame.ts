// A NATS publish written into a writer's space: the control line and
// headers before the payload, the CRLF after it, the check that the writer
// framed nothing around that space, and the errors of a publish that does
// not fit. The publisher's paths and its reservations share them.

import type { Reservation } from "../reservation.ts";
import type { SharedReservation } from "../shared_reservation.ts";
import type { SharedWriter } from "../shared_writer.ts";
import type { Writer } from "../writer.ts";
import { WriterClaim } from "../writer_claim.ts";
import type { ReserveOptions } from "../writer_options.ts";
import { encodeInto } from "../_shared_memory.ts";
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

/**
 * Publishes `payload` (bytes, or text whose UTF-8 takes `length` bytes)
 * through `writer` (through its claim when `claimer`, the same Writer, is
 * not null) now, if there is room.
 */
export function publishNow(
  writer: Writer | SharedWriter,
  claimer: Writer | null,
  maxPayload: number,
  subject: NatsSubject,
  payload: Uint8Array | string,
  length: number,
  options: NatsPublishOptions | undefined,
): boolean {
  const frame = reservedFrame(subject, length, options, maxPayload, writer.pool.bufferSize);
  const space = claimer !== null
    ? claimer.tryClaim(frame)
    : (writer as SharedWriter).tryReserve(frame);
  if (space === null) return false;
  publishInto(space, frame, subject, options, payload, length);
  return true;
}

/** As {@linkcode publishNow}, waiting for room. */
export async function publishLater(
  writer: Writer | SharedWriter,
  claimer: Writer | null,
  maxPayload: number,
  subject: NatsSubject,
  payload: Uint8Array | string,
  length: number,
  options: (NatsPublishOptions & ReserveOptions) | undefined,
): Promise<void> {
  const frame = reservedFrame(subject, length, options, maxPayload, writer.pool.bufferSize);
  const space = claimer !== null
    ? await claimer.claim(frame, options)
    : await (writer as SharedWriter).reserve(frame, options);
  publishInto(space, frame, subject, options, payload, length);
}

/**
 * The claim's buffer, once it is known the writer framed nothing around the
 * frame (a codec's header or trailer makes the stride longer); else the
 * claim is taken back and the writer refused.
 */
export function unframed(claim: WriterClaim, frame: number): Uint8Array {
  if (claim.stride === frame) return claim.buffer;
  claim.cancel();
  throw framingError();
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

/**
 * Writes a whole publish of `payload` (bytes, or text whose UTF-8 takes
 * `length` bytes) into a Writer's claim or a SharedWriter's reservation of
 * `frame` bytes, and commits it.
 */
function publishInto(
  space: WriterClaim | SharedReservation,
  frame: number,
  subject: NatsSubject,
  options: NatsPublishOptions | undefined,
  payload: Uint8Array | string,
  length: number,
): void {
  const headers = options?.headers;
  const total = (headers === undefined ? 0 : headers.bytes.length) + length;
  const claim = space instanceof WriterClaim;
  const buffer = claim ? unframed(space, frame) : unframedBytes(space, frame);
  const at = fill(buffer, claim ? space.offset : 0, subject, options?.reply, headers, total);
  put(buffer, at, payload, length);
  space.commit();
}

/** Writes the payload (bytes, or text as UTF-8 of `length` bytes) at `at`, and the CRLF after it. */
export function put(
  buffer: Uint8Array,
  at: number,
  payload: Uint8Array | string,
  length: number,
): void {
  if (typeof payload === "string") encodeInto(payload, buffer.subarray(at, at + length));
  else buffer.set(payload, at);
  writeEnd(buffer, at + length);
}

/** Writes a reservation's frame around its payload: the NatsReservation over it, listed as open. */
export function frameReservation(
  inner: Reservation | SharedReservation,
  frame: number,
  subject: NatsSubject,
  length: number,
  options: NatsPublishOptions | undefined,
  open: OpenNatsReservations,
): NatsReservation {
  const bytes = unframedBytes(inner, frame);
  const headers = options?.headers;
  const total = (headers === undefined ? 0 : headers.bytes.length) + length;
  const at = fill(bytes, 0, subject, options?.reply, headers, total);
  writeEnd(bytes, at + length);
  const reservation = new NatsReservation(subject, inner, bytes, at, length, open);
  open.add(reservation);
  return reservation;
}

/**
 * A reservation's bytes, once it is known the writer framed nothing: the
 * reservation's payload is the whole frame. Else it is cancelled and the
 * writer refused.
 */
function unframedBytes(
  reservation: Reservation | SharedReservation,
  frame: number,
): Uint8Array {
  const framed = "_frameLength" in reservation
    ? reservation._frameLength
    : reservation._frameEnd - reservation._frameStart;
  if (framed === frame) return reservation.bytes;
  reservation.cancel();
  throw framingError();
}

function framingError(): TypeError {
  return new TypeError(
    "Cannot publish through a writer with a codec: the NATS protocol frames its messages; make the writer without one",
  );
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
