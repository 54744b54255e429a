// The frame codec under a NatsReceiver: one frame is one whole server op,
// its control line and, for MSG and HMSG, the payload and its "\r\n", so that
// a FrameCutter stages, moves and hands out NATS ops as it does any frame.
// The whole op is the cutter's "payload".
//
// Decoding a complete op also parses it, once, into where the receiver
// dispatches it from: a MSG's parts straight into the receiver's one
// NatsMessage, an INFO's or -ERR's text as offsets here, and `op` says which.
// The cutter visits each frame right after decoding it, so these always
// describe the op being visited. Nothing is allocated on the way: numbers
// and separators are found byte by byte, the argument offsets go into a
// typed array made once. Decode only: the client's side of the protocol is
// written by NatsPublisher.

import type { FrameBounds } from "../frame_bounds.ts";
import type { FrameCodec } from "../frame_codec.ts";
import { NatsProtocolError } from "./nats_errors.ts";
import type { NatsMessage } from "./nats_message.ts";
import { excerpt } from "./_nats_text.ts";

/** The kinds of op, in `NatsOpsCodec.op`. */
export const OP_MSG = 1;
export const OP_INFO = 2;
export const OP_PING = 3;
export const OP_PONG = 4;
export const OP_OK = 5;
export const OP_ERR = 6;

const CR = 0x0d;
const LF = 0x0a;
const SPACE = 0x20;
const TAB = 0x09;
/** ORed into an ASCII letter, makes it lower case. */
const LOWER = 0x20;
/** The shortest header block: "NATS/1.0\r\n\r\n". */
const MIN_HEADERS = 12;
const NATS_1_0 = [0x4e, 0x41, 0x54, 0x53, 0x2f, 0x31, 0x2e, 0x30]; // "NATS/1.0"

/** Decodes the ops a NATS server sends; see the file's comment. */
export class NatsOpsCodec implements FrameCodec {
  readonly name = "NATS server ops";
  /** The longest op: the longest control line and payload, each with its "\r\n". */
  readonly maxPayload: number;
  readonly trailerLength = 0;
  /** The longest control line accepted, in bytes, not counting its "\r\n". */
  readonly maxControlLine: number;
  /** The most bytes a MSG or HMSG may carry, headers included. */
  readonly payloadLimit: number;
  /** What the last complete op was: one of the OP_ constants. */
  op = 0;
  /** Where the last INFO's JSON, or -ERR's text, lies. */
  textStart = 0;
  textEnd = 0;
  /** Receives each MSG and HMSG. */
  readonly #message: NatsMessage;
  /** Start and end of each argument of a MSG or HMSG line: at most 5. */
  readonly #args = new Int32Array(10);

  constructor(message: NatsMessage, maxControlLine: number, payloadLimit: number) {
    this.#message = message;
    this.maxControlLine = maxControlLine;
    this.payloadLimit = payloadLimit;
    this.maxPayload = maxControlLine + 2 + payloadLimit + 2;
  }

  headerLength(_payloadLength: number): number {
    return 0;
  }

  encodeHeader(_target: Uint8Array, _offset: number, _payloadLength: number): number {
    throw decodeOnly();
  }

  encodeTrailer(_target: Uint8Array, _offset: number): void {
    throw decodeOnly();
  }

  encode(_payload: Uint8Array): Uint8Array {
    throw decodeOnly();
  }

  decode(
    bytes: Uint8Array,
    start: number,
    end: number,
    _maxFrameLength: number,
    out: FrameBounds,
    scanFrom: number = start,
  ): boolean {
    // The line's "\n" must come within maxControlLine + 2 bytes of its start.
    const lineLimit = start + this.maxControlLine + 2;
    const searchEnd = end < lineLimit ? end : lineLimit;
    let p = scanFrom > start ? scanFrom : start;
    while (p < searchEnd && bytes[p] !== LF) p++;
    if (p === searchEnd) {
      if (p === lineLimit) {
        throw this.#error(
          `a control line is over the maxControlLine of ${this.maxControlLine} bytes (no "\\r\\n" in its first ${
            p - start
          } bytes)`,
          bytes,
          start,
          p,
          p - start,
          this.maxControlLine,
        );
      }
      out.frameEnd = -1;
      out.scanned = p;
      return false;
    }
    if (p === start || bytes[p - 1] !== CR) {
      throw this.#error(
        'a control line holds a "\\n" without "\\r" before it',
        bytes,
        start,
        p + 1,
      );
    }
    const kind = this.#kind(bytes, start, p - 1);
    if (kind === OP_MSG) return this.#msg(bytes, start, p - 1, end, out);
    this.op = kind;
    out.payloadStart = start;
    out.payloadEnd = out.frameEnd = out.scanned = p + 1;
    return true;
  }

  /**
   * Which op the line `bytes[start, lineEnd)` is. A MSG or HMSG is left to
   * the caller; INFO and -ERR note where their text lies.
   */
  #kind(bytes: Uint8Array, start: number, lineEnd: number): number {
    const first = bytes[start]!;
    let at = -1;
    switch (first | LOWER) {
      case 0x6d: // m
        if (word(bytes, start + 1, lineEnd, 0x73, 0x67, -1)) return OP_MSG; // "sg"
        break;
      case 0x68: // h
        if (word(bytes, start + 1, lineEnd, 0x6d, 0x73, 0x67)) return OP_MSG; // "msg"
        break;
      case 0x70: // p
        if (word(bytes, start + 1, lineEnd, 0x69, 0x6e, 0x67)) at = OP_PING; // "ing"
        else if (word(bytes, start + 1, lineEnd, 0x6f, 0x6e, 0x67)) at = OP_PONG; // "ong"
        if (at > 0 && skipSpace(bytes, start + 4, lineEnd) === lineEnd) return at;
        break;
      case 0x2b: // +
        if (first === 0x2b && word(bytes, start + 1, lineEnd, 0x6f, 0x6b, -1)) {
          if (skipSpace(bytes, start + 3, lineEnd) === lineEnd) return OP_OK;
        }
        break;
      case 0x69: // i
        if (word(bytes, start + 1, lineEnd, 0x6e, 0x66, 0x6f)) { // "nfo"
          this.#text(bytes, start + 4, lineEnd, false);
          return OP_INFO;
        }
        break;
      case 0x2d: // -
        if (first === 0x2d && word(bytes, start + 1, lineEnd, 0x65, 0x72, 0x72)) { // "err"
          this.#text(bytes, start + 4, lineEnd, true);
          return OP_ERR;
        }
        break;
    }
    throw this.#error("unknown operation", bytes, start, lineEnd + 2);
  }

  /**
   * Notes the text after an op's name, `bytes[from, lineEnd)`, without the
   * spaces around it and, for a -ERR, its single quotes.
   */
  #text(bytes: Uint8Array, from: number, lineEnd: number, unquote: boolean): void {
    let start = skipSpace(bytes, from, lineEnd);
    let end = lineEnd;
    while (end > start && isSpace(bytes[end - 1]!)) end--;
    if (unquote && end - start >= 2 && bytes[start] === 0x27 && bytes[end - 1] === 0x27) {
      start++;
      end--;
    }
    this.textStart = start;
    this.textEnd = end;
  }

  /** Parses a MSG or HMSG line, then checks and hands out the whole op if it is there. */
  #msg(
    bytes: Uint8Array,
    start: number,
    lineEnd: number,
    end: number,
    out: FrameBounds,
  ): boolean {
    const headers = (bytes[start]! | LOWER) === 0x68;
    const args = this.#args;
    const most = headers ? 5 : 4;
    let count = 0;
    let i = start + (headers ? 4 : 3);
    for (;;) {
      i = skipSpace(bytes, i, lineEnd);
      if (i === lineEnd) break;
      if (count === most) break;
      args[2 * count] = i;
      while (i < lineEnd && !isSpace(bytes[i]!)) i++;
      args[2 * count + 1] = i;
      count++;
    }
    if (count < most - 1 || i < lineEnd) {
      const want = headers
        ? "4 or 5 arguments (subject, sid, [reply-to,] #header bytes, #total bytes)"
        : "3 or 4 arguments (subject, sid, [reply-to,] #bytes)";
      throw this.#error(
        `${headers ? "HMSG" : "MSG"} needs ${want}, received ${
          i < lineEnd ? `more than ${most}` : count
        }`,
        bytes,
        start,
        lineEnd + 2,
      );
    }
    const sid = digits(bytes, args[2]!, args[3]!);
    if (!(sid <= Number.MAX_SAFE_INTEGER)) {
      throw this.#error("the sid is not a whole number", bytes, start, lineEnd + 2);
    }
    const last = 2 * (count - 1);
    const total = digits(bytes, args[last]!, args[last + 1]!);
    if (Number.isNaN(total)) {
      throw this.#error("the byte count is not a whole number", bytes, start, lineEnd + 2);
    }
    const limit = this.payloadLimit;
    if (total > limit) {
      throw this.#error(
        `the message announces ${total} bytes, over the maxPayload of ${limit} bytes`,
        bytes,
        start,
        lineEnd + 2,
        total,
        limit,
      );
    }
    let headerBytes = 0;
    if (headers) {
      headerBytes = digits(bytes, args[last - 2]!, args[last - 1]!);
      if (!(headerBytes >= MIN_HEADERS && headerBytes <= total)) {
        throw this.#error(
          `the header byte count must be from ${MIN_HEADERS} (an empty "NATS/1.0" block) to the total byte count`,
          bytes,
          start,
          lineEnd + 2,
        );
      }
    }
    const body = lineEnd + 2;
    const frameEnd = body + total + 2;
    if (frameEnd > end) {
      out.payloadStart = start;
      out.payloadEnd = out.frameEnd = frameEnd;
      // The line's end is known: the next call finds it at once.
      out.scanned = lineEnd;
      return false;
    }
    if (bytes[frameEnd - 2] !== CR || bytes[frameEnd - 1] !== LF) {
      throw this.#error(
        `the ${total}-byte payload is not followed by "\\r\\n"`,
        bytes,
        start,
        lineEnd + 2,
      );
    }
    if (headers && !headerBlock(bytes, body, body + headerBytes)) {
      throw this.#error(
        'the header block does not start with "NATS/1.0" and end with a blank line',
        bytes,
        start,
        lineEnd + 2,
      );
    }
    const message = this.#message;
    message.bytes = bytes;
    message.sid = sid;
    message.subjectStart = args[0]!;
    message.subjectEnd = args[1]!;
    if (count === most) {
      message.replyStart = args[4]!;
      message.replyEnd = args[5]!;
    } else {
      message.replyStart = message.replyEnd = -1;
    }
    if (headers) {
      message.headersStart = body;
      message.headersEnd = message.payloadStart = body + headerBytes;
    } else {
      message.headersStart = message.headersEnd = -1;
      message.payloadStart = body;
    }
    message.payloadEnd = body + total;
    this.op = OP_MSG;
    out.payloadStart = start;
    out.payloadEnd = out.frameEnd = out.scanned = frameEnd;
    return true;
  }

  #error(
    what: string,
    bytes: Uint8Array,
    start: number,
    end: number,
    length: number = NaN,
    limit: number = NaN,
  ): NatsProtocolError {
    return new NatsProtocolError(
      `Cannot read NATS from the server: ${what}: ${excerpt(bytes, start, end)}`,
      length,
      limit,
    );
  }
}

/**
 * Whether `bytes[from, lineEnd)` starts with the lower-case letters `a`,
 * `b` and, unless it is -1, `c`, in either case, followed by a space, a tab
 * or the line's end.
 */
function word(bytes: Uint8Array, from: number, lineEnd: number, a: number, b: number, c: number) {
  const after = from + (c < 0 ? 2 : 3);
  if (after > lineEnd) return false;
  if ((bytes[from]! | LOWER) !== a || (bytes[from + 1]! | LOWER) !== b) return false;
  if (c >= 0 && (bytes[from + 2]! | LOWER) !== c) return false;
  return after === lineEnd || isSpace(bytes[after]!);
}

function isSpace(byte: number): boolean {
  return byte === SPACE || byte === TAB;
}

/** The first byte from `from` on that is not a space or tab, or `end`. */
function skipSpace(bytes: Uint8Array, from: number, end: number): number {
  while (from < end && isSpace(bytes[from]!)) from++;
  return from;
}

/** The decimal number in `bytes[from, to)`, or NaN if it is not all digits. */
function digits(bytes: Uint8Array, from: number, to: number): number {
  let value = 0;
  for (let i = from; i < to; i++) {
    const digit = bytes[i]! - 0x30;
    if (digit < 0 || digit > 9) return NaN;
    value = value * 10 + digit;
  }
  return value;
}

/** Whether `bytes[from, to)` starts with "NATS/1.0" and ends with "\r\n\r\n". */
function headerBlock(bytes: Uint8Array, from: number, to: number): boolean {
  for (let k = 0; k < NATS_1_0.length; k++) {
    if (bytes[from + k] !== NATS_1_0[k]) return false;
  }
  return bytes[to - 4] === CR && bytes[to - 3] === LF && bytes[to - 2] === CR &&
    bytes[to - 1] === LF;
}

function decodeOnly(): TypeError {
  return new TypeError("Cannot encode with the NATS server ops codec: it only decodes");
}
