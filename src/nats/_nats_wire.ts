// The bytes of a NATS publish, written in place into pooled memory: the
// control line (`PUB <subject> [reply] <#bytes>\r\n`, or `HPUB` with the
// header length before the total), its lengths in decimal digits without a
// string, and the filler a cancelled publish is rewritten with. Plain
// functions of a Uint8Array and offsets, so that every writer's path and
// the reservations share them.

const SPACE = 0x20;
const CR = 0x0d;
const LF = 0x0a;
const ZERO = 0x30;
const P = 0x50;
const U = 0x55;
const B = 0x42;
const H = 0x48;

/**
 * Digits of `n`, an integer from 0 to 2^31 - 1. Comparisons, not a
 * logarithm: a length is usually small and this is on every message's path.
 */
function decimalLength(n: number): number {
  if (n < 10) return 1;
  if (n < 100) return 2;
  if (n < 1000) return 3;
  if (n < 10000) return 4;
  if (n < 100000) return 5;
  if (n < 1000000) return 6;
  if (n < 10000000) return 7;
  if (n < 100000000) return 8;
  return n < 1000000000 ? 9 : 10;
}

/**
 * Bytes of the control line of a publish to a subject of `subject` bytes,
 * a reply subject of `reply` bytes (0 for none), with `headers` bytes of
 * header block (0 for a `PUB`) and `total` bytes of headers and payload.
 */
export function controlLength(
  subject: number,
  reply: number,
  headers: number,
  total: number,
): number {
  const base = subject + (reply === 0 ? 0 : reply + 1) + decimalLength(total) + 7;
  return headers === 0 ? base : base + decimalLength(headers) + 2;
}

/**
 * Writes a publish's control line at `at`, CRLF included; returns where the
 * header block (or the payload) goes. `headers` is 0 for a `PUB`.
 */
export function writeControl(
  buffer: Uint8Array,
  at: number,
  subject: Uint8Array,
  reply: Uint8Array | undefined,
  headers: number,
  total: number,
): number {
  if (headers !== 0) buffer[at++] = H;
  buffer[at] = P;
  buffer[at + 1] = U;
  buffer[at + 2] = B;
  buffer[at + 3] = SPACE;
  at = copy(subject, buffer, at + 4);
  buffer[at++] = SPACE;
  if (reply !== undefined) {
    at = copy(reply, buffer, at);
    buffer[at++] = SPACE;
  }
  if (headers !== 0) {
    at = writeDecimal(buffer, at, headers);
    buffer[at++] = SPACE;
  }
  at = writeDecimal(buffer, at, total);
  buffer[at] = CR;
  buffer[at + 1] = LF;
  return at + 2;
}

/** Writes the CRLF that ends a publish at `at`. */
export function writeEnd(buffer: Uint8Array, at: number): void {
  buffer[at] = CR;
  buffer[at + 1] = LF;
}

/** Writes `n`'s decimal digits at `at`; returns where they end. */
function writeDecimal(buffer: Uint8Array, at: number, n: number): number {
  const end = at + decimalLength(n);
  let i = end;
  do {
    const tenth = (n / 10) | 0;
    buffer[--i] = ZERO + n - tenth * 10;
    n = tenth;
  } while (n !== 0);
  return end;
}

/**
 * Copies `bytes` to `buffer` at `at`; returns where they end. A loop for a
 * short subject: below a few dozen bytes it is faster than `set`, whose
 * call checks more than a copy between two plain views needs.
 */
function copy(bytes: Uint8Array, buffer: Uint8Array, at: number): number {
  const length = bytes.length;
  if (length > 32) buffer.set(bytes, at);
  else for (let i = 0; i < length; i++) buffer[at + i] = bytes[i]!;
  return at + length;
}

/** The subscription id a cancelled publish unsubscribes: one that no bab connection uses. */
const VOID_SID = 0x5f; // "_"

/** The longest line of filler: well under any `max_control_line` a server is likely set to. */
const VOID_LINE = 512;

/**
 * Rewrites `length` bytes from `start` (at least 9, one `UNSUB _\r\n`; the
 * smallest publish, `PUB a 0\r\n\r\n`, takes 11) as
 * lines of `UNSUB _`, padded with spaces, of at most 512 bytes each:
 * unsubscribing a subscription id that was never used, which a server takes
 * and does nothing with. What a cancelled publish sends instead, since its
 * place in the stream cannot be taken back.
 */
export function writeVoid(buffer: Uint8Array, start: number, length: number): void {
  const lines = Math.ceil(length / VOID_LINE);
  const short = Math.floor(length / lines);
  const long = length - short * lines;
  let at = start;
  for (let line = 0; line < lines; line++) {
    const end = at + short + (line < long ? 1 : 0);
    buffer[at] = U;
    buffer[at + 1] = 0x4e; // N
    buffer[at + 2] = 0x53; // S
    buffer[at + 3] = U;
    buffer[at + 4] = B;
    buffer[at + 5] = SPACE;
    buffer[at + 6] = VOID_SID;
    buffer.fill(SPACE, at + 7, end - 2);
    writeEnd(buffer, end - 2);
    at = end;
  }
}
