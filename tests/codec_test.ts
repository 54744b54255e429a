import assert from "node:assert/strict";
import {
  delimiter,
  fixedSize,
  FrameBounds,
  type FrameCodec,
  FrameError,
  largestPayload,
  lengthPrefix,
  varintPrefix,
} from "../mod.ts";
import { assertRangeError, prng } from "./_helpers.ts";

// -- Helpers --

/** Bytes a codec must never read: they sit outside the range it is given. */
const JUNK = 0x0a;

/** A payload of `length` bytes in which no byte is `avoid`. */
function payloadOf(length: number, seed = 1, avoid = -1): Uint8Array {
  const random = prng(seed);
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) {
    let b = random(256);
    if (b === avoid) b = (b + 1) & 0xff;
    bytes[i] = b;
  }
  return bytes;
}

/** A payload of `length` bytes from 0x20 to 0x7f: no CR, LF or 0xff. */
function printable(length: number, seed = 1): Uint8Array {
  return payloadOf(length, seed).map((b) => b & 0x7f | 0x20);
}

/** `frame` copied into a larger array at `offset`, with JUNK all around it. */
function embed(frame: Uint8Array, offset: number, after = 8): Uint8Array {
  const bytes = new Uint8Array(offset + frame.length + after).fill(JUNK);
  bytes.set(frame, offset);
  return bytes;
}

/** Asserts that `fn` throws a FrameError with these fields. */
function assertFrameError(
  fn: () => unknown,
  frameLength: number,
  maxFrameLength: number,
  pattern: RegExp,
): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof FrameError, `expected a FrameError, got ${String(error)}`);
    assert.equal(error.name, "FrameError");
    assert.ok(Object.is(error.frameLength, frameLength), `frameLength ${error.frameLength}`);
    assert.equal(error.maxFrameLength, maxFrameLength);
    assert.match(error.message, pattern);
    return true;
  });
}

/** Decodes `bytes[start, end)` into a fresh FrameBounds; returns [found, bounds]. */
function decode(
  codec: FrameCodec,
  bytes: Uint8Array,
  start: number,
  end: number,
  maxFrameLength = 1 << 20,
): [boolean, FrameBounds] {
  const out = new FrameBounds();
  const found = codec.decode(bytes, start, end, maxFrameLength, out);
  return [found, out];
}

/**
 * Encodes `payload`, places the frame at `offset` among junk and checks that
 * decoding returns the payload with the right bounds.
 */
function assertRoundTrip(codec: FrameCodec, payload: Uint8Array, offset: number): void {
  const frame = codec.encode(payload);
  const header = codec.headerLength(payload.length);
  assert.equal(frame.length, header + payload.length + codec.trailerLength);
  const bytes = embed(frame, offset);
  const [found, out] = decode(codec, bytes, offset, bytes.length, payload.length);
  assert.ok(found, `${codec.name}: ${payload.length}-byte payload not found`);
  assert.equal(out.payloadStart, offset + header);
  assert.equal(out.payloadEnd, offset + header + payload.length);
  assert.equal(out.frameEnd, offset + frame.length);
  assert.equal(out.scanned, out.frameEnd);
  assert.deepEqual(bytes.subarray(out.payloadStart, out.payloadEnd), payload);
}

// Junk (0x0a) must not be a delimiter here: `splitAtEveryOffset` relies on
// junk past `end` looking like a frame's continuation, not its end. The
// newline codec gets its own split test below.
const CODECS: readonly FrameCodec[] = [
  lengthPrefix(1),
  lengthPrefix(2),
  lengthPrefix(2, { littleEndian: true }),
  lengthPrefix(4),
  lengthPrefix(4, { littleEndian: true }),
  varintPrefix(),
  delimiter("\r\n"),
  delimiter(new Uint8Array([0xff])),
];

// -- Construction, names and limits --

Deno.test("codecs have names and limits", () => {
  const table: [FrameCodec, string, number, number][] = [
    [lengthPrefix(1), "u8 length prefix", 255, 0],
    [lengthPrefix(1, { littleEndian: true }), "u8 length prefix", 255, 0],
    [lengthPrefix(2), "u16be length prefix", 65535, 0],
    [lengthPrefix(2, { littleEndian: true }), "u16le length prefix", 65535, 0],
    [lengthPrefix(4), "u32be length prefix", 2 ** 32 - 1, 0],
    [lengthPrefix(4, { littleEndian: false }), "u32be length prefix", 2 ** 32 - 1, 0],
    [lengthPrefix(4, { littleEndian: true }), "u32le length prefix", 2 ** 32 - 1, 0],
    [varintPrefix(), "varint prefix", 2 ** 32 - 1, 0],
    [delimiter("\n"), "delimiter 0a", Number.MAX_SAFE_INTEGER, 1],
    [delimiter("\r\n"), "delimiter 0d0a", Number.MAX_SAFE_INTEGER, 2],
    [delimiter(new Uint8Array([0, 0xff, 0x10])), "delimiter 00ff10", Number.MAX_SAFE_INTEGER, 3],
    [fixedSize(32), "fixed 32", 32, 0],
  ];
  for (const [codec, name, maxPayload, trailerLength] of table) {
    assert.equal(codec.name, name);
    assert.equal(codec.maxPayload, maxPayload, name);
    assert.equal(codec.trailerLength, trailerLength, name);
  }
});

Deno.test("codec factories reject bad arguments with a RangeError", () => {
  for (const size of [0, 3, 8, 1.5, -2, NaN]) {
    assertRangeError(
      () => lengthPrefix(size as 1),
      /Cannot create length prefix codec/,
      /must be 1, 2 or 4 bytes/,
      new RegExp(`received ${size}`),
    );
  }
  for (const empty of ["", new Uint8Array(0)]) {
    assertRangeError(() => delimiter(empty), /Cannot create delimiter codec/, /at least 1 byte/);
  }
  for (const size of [0, -1, 1.5, NaN, Infinity, 2 ** 53]) {
    assertRangeError(
      () => fixedSize(size),
      /Cannot create fixed-size codec/,
      /positive integer/,
      new RegExp(`received ${size}`),
    );
  }
});

Deno.test("delimiter() copies its bytes", () => {
  const bytes = new Uint8Array([0x7c]);
  const codec = delimiter(bytes);
  bytes[0] = 0x21;
  assert.deepEqual([...codec.encode(new Uint8Array([1]))], [1, 0x7c]);
});

// -- Encoding --

Deno.test("lengthPrefix writes big- and little-endian lengths", () => {
  const cases: [FrameCodec, number, number[]][] = [
    [lengthPrefix(1), 0, [0x00]],
    [lengthPrefix(1), 0xfe, [0xfe]],
    [lengthPrefix(1, { littleEndian: true }), 0xfe, [0xfe]],
    [lengthPrefix(2), 0x0102, [0x01, 0x02]],
    [lengthPrefix(2, { littleEndian: true }), 0x0102, [0x02, 0x01]],
    [lengthPrefix(2), 0xfffe, [0xff, 0xfe]],
    [lengthPrefix(4), 0x01020304, [0x01, 0x02, 0x03, 0x04]],
    [lengthPrefix(4, { littleEndian: true }), 0x01020304, [0x04, 0x03, 0x02, 0x01]],
    [lengthPrefix(4), 0xfffffffe, [0xff, 0xff, 0xff, 0xfe]],
    [lengthPrefix(4, { littleEndian: true }), 0xfffffffe, [0xfe, 0xff, 0xff, 0xff]],
  ];
  for (const [codec, length, expected] of cases) {
    // Written at offset 3 of a junk-filled array: the bytes around stay.
    const target = new Uint8Array(3 + expected.length + 2).fill(JUNK);
    assert.equal(codec.encodeHeader(target, 3, length), expected.length);
    assert.equal(codec.headerLength(length), expected.length);
    assert.deepEqual([...target], [JUNK, JUNK, JUNK, ...expected, JUNK, JUNK], codec.name);

    // And the same bytes decode to the same length.
    const [found, out] = decode(codec, target, 3, 3 + expected.length, 2 ** 32 - 1);
    assert.equal(found, length === 0);
    assert.equal(out.frameEnd, 3 + expected.length + length, codec.name);
  }
});

Deno.test("varintPrefix writes LEB128 lengths", () => {
  const cases: [number, number[]][] = [
    [0, [0x00]],
    [1, [0x01]],
    [127, [0x7f]],
    [128, [0x80, 0x01]],
    [300, [0xac, 0x02]],
    [2 ** 14 - 1, [0xff, 0x7f]],
    [2 ** 14, [0x80, 0x80, 0x01]],
    [2 ** 21 - 1, [0xff, 0xff, 0x7f]],
    [2 ** 21, [0x80, 0x80, 0x80, 0x01]],
    [2 ** 28 - 1, [0xff, 0xff, 0xff, 0x7f]],
    [2 ** 28, [0x80, 0x80, 0x80, 0x80, 0x01]],
    [2 ** 31, [0x80, 0x80, 0x80, 0x80, 0x08]],
    [2 ** 32 - 1, [0xff, 0xff, 0xff, 0xff, 0x0f]],
  ];
  const codec = varintPrefix();
  for (const [length, expected] of cases) {
    const target = new Uint8Array(2 + expected.length + 2).fill(JUNK);
    assert.equal(codec.encodeHeader(target, 2, length), expected.length, `${length}`);
    assert.equal(codec.headerLength(length), expected.length, `${length}`);
    assert.deepEqual([...target], [JUNK, JUNK, ...expected, JUNK, JUNK], `${length}`);

    const [found, out] = decode(codec, target, 2, 2 + expected.length, 2 ** 32 - 1);
    assert.equal(found, length === 0);
    assert.equal(out.frameEnd, 2 + expected.length + length, `${length}`);
  }
});

Deno.test("delimiter and fixedSize encode no header, and the delimiter as trailer", () => {
  const crlf = delimiter("\r\n");
  const target = new Uint8Array(6).fill(JUNK);
  assert.equal(crlf.encodeHeader(target, 1, 3), 0);
  assert.equal(crlf.headerLength(3), 0);
  crlf.encodeTrailer(target, 2);
  assert.deepEqual([...target], [JUNK, JUNK, 0x0d, 0x0a, JUNK, JUNK]);
  assert.deepEqual([...crlf.encode(new TextEncoder().encode("hi"))], [0x68, 0x69, 0x0d, 0x0a]);

  const fixed = fixedSize(3);
  const untouched = new Uint8Array(6).fill(JUNK);
  assert.equal(fixed.encodeHeader(untouched, 1, 3), 0);
  assert.equal(fixed.headerLength(3), 0);
  fixed.encodeTrailer(untouched, 1);
  assert.deepEqual([...untouched], [JUNK, JUNK, JUNK, JUNK, JUNK, JUNK]);
  assert.deepEqual([...fixed.encode(new Uint8Array([4, 5, 6]))], [4, 5, 6]);
});

Deno.test("encodeHeader and headerLength reject lengths the codec cannot express", () => {
  const cases: [FrameCodec, number[], string][] = [
    [lengthPrefix(1), [256, -1, 1.5, NaN], "255"],
    [lengthPrefix(2, { littleEndian: true }), [65536, -1, 0.5], "65535"],
    [lengthPrefix(4), [2 ** 32, -1, 7.25, Infinity], "4294967295"],
    [varintPrefix(), [2 ** 32, -1, 3.5], "4294967295"],
    [delimiter("\n"), [-1, 2.5, Number.MAX_SAFE_INTEGER + 1, NaN], `${Number.MAX_SAFE_INTEGER}`],
  ];
  for (const [codec, lengths, limit] of cases) {
    for (const length of lengths) {
      for (
        const call of [
          () => codec.encodeHeader(new Uint8Array(8), 0, length),
          () => codec.headerLength(length),
        ]
      ) {
        assertRangeError(
          call,
          new RegExp(`Cannot encode payload length ${length} with ${codec.name}`),
          new RegExp(`integer from 0 to ${limit}$`),
        );
      }
    }
  }
  // Exactly the limit is fine.
  assert.equal(lengthPrefix(1).encodeHeader(new Uint8Array(1), 0, 255), 1);
  assert.equal(lengthPrefix(2).encodeHeader(new Uint8Array(2), 0, 65535), 2);
  assert.equal(lengthPrefix(4).encodeHeader(new Uint8Array(4), 0, 2 ** 32 - 1), 4);

  const fixed = fixedSize(32);
  for (const length of [31, 33, 0]) {
    assertRangeError(
      () => fixed.encodeHeader(new Uint8Array(8), 0, length),
      new RegExp(`Cannot encode payload length ${length} with fixed 32`),
      /exactly 32 bytes/,
    );
    assertRangeError(() => fixed.headerLength(length), /exactly 32 bytes/);
    assertRangeError(() => fixed.encode(new Uint8Array(length)), /exactly 32 bytes/);
  }
  assertRangeError(() => lengthPrefix(1).encode(new Uint8Array(256)), /from 0 to 255/);
});

Deno.test("delimiter encode() refuses a payload the delimiter would cut short", () => {
  const encoder = new TextEncoder();
  assertRangeError(
    () => delimiter("\n").encode(encoder.encode("a\nb")),
    /Cannot encode payload with delimiter 0a/,
    /occurs in the payload at byte 1/,
  );
  assertRangeError(
    () => delimiter("\r\n").encode(encoder.encode("ab\r\ncd")),
    /at byte 2/,
  );
  // The payload's tail and the delimiter would match early: "xa" + "aa".
  assertRangeError(() => delimiter("aa").encode(encoder.encode("xa")), /at byte 1/);
  // A partial delimiter that does not complete is fine.
  assert.deepEqual(
    [...delimiter("\r\n").encode(encoder.encode("a\r"))],
    [0x61, 0x0d, 0x0d, 0x0a],
  );
});

// -- Round trips --

Deno.test("every codec round-trips payloads of 0, 1, typical and maximum length", () => {
  const lengths = [0, 1, 2, 31, 32, 100, 127, 128, 255, 256, 300, 1000, 65535, 70000];
  for (const codec of CODECS) {
    for (const length of lengths) {
      if (length > codec.maxPayload) continue;
      // The single-byte 0xff delimiter must not occur in its payloads.
      const avoid = codec.trailerLength === 1 ? 0xff : 0x0d;
      for (const offset of [0, 5]) {
        assertRoundTrip(codec, payloadOf(length, length + 1, avoid), offset);
      }
    }
  }
  for (const size of [1, 32, 1000]) {
    assertRoundTrip(fixedSize(size), payloadOf(size, size), 0);
    assertRoundTrip(fixedSize(size), payloadOf(size, size), 7);
  }
});

Deno.test("u8 and u16 prefixes round-trip exactly their largest payload", () => {
  // Covered by the table above too; stated here so the limits cannot drift.
  assertRoundTrip(lengthPrefix(1), payloadOf(255), 1);
  assertRoundTrip(lengthPrefix(2), payloadOf(65535), 1);
  assertRoundTrip(lengthPrefix(2, { littleEndian: true }), payloadOf(65535), 1);
});

Deno.test("decode reads one frame at a time from a run of frames", () => {
  for (const codec of CODECS) {
    // Printable bytes: no delimiter of these codecs among them.
    const payloads = [0, 3, 1, 40, 0, 200].map((n) => printable(n, n + 7));
    const frames = payloads.map((p) => codec.encode(p));
    const bytes = embed(new Uint8Array(frames.flatMap((f) => [...f])), 4, 0);
    const out = new FrameBounds();
    const decoded: Uint8Array[] = [];
    let start = 4;
    while (codec.decode(bytes, start, bytes.length, 1000, out, start)) {
      decoded.push(bytes.slice(out.payloadStart, out.payloadEnd));
      start = out.frameEnd;
    }
    assert.equal(start, bytes.length, codec.name);
    assert.deepEqual(decoded, payloads, codec.name);
  }
});

// -- Split input --

/**
 * Decodes `frame` placed at `offset` with every shorter `end`, resuming each
 * search where the previous one left off, then with all of it. Junk follows
 * `end` so a codec that read past it would see a different frame.
 */
function splitAtEveryOffset(
  codec: FrameCodec,
  payload: Uint8Array,
  offset: number,
  knownEnd: (available: number) => number,
): void {
  const frame = codec.encode(payload);
  const header = codec.headerLength(payload.length);
  const out = new FrameBounds();
  let scanFrom = offset;
  for (let available = 0; available < frame.length; available++) {
    const bytes = embed(frame.subarray(0, available), offset, 300);
    const found = codec.decode(bytes, offset, offset + available, 1000, out, scanFrom);
    assert.equal(found, false, `${codec.name}: ${available} of ${frame.length} bytes`);
    assert.equal(out.frameEnd, knownEnd(available), `${codec.name}: ${available} bytes`);
    assert.ok(out.scanned >= scanFrom && out.scanned <= offset + available, `${codec.name}`);
    scanFrom = out.scanned;
  }
  const bytes = embed(frame, offset, 300);
  assert.ok(codec.decode(bytes, offset, offset + frame.length, 1000, out, scanFrom), codec.name);
  assert.equal(out.payloadStart, offset + header);
  assert.equal(out.payloadEnd, offset + header + payload.length);
  assert.equal(out.frameEnd, offset + frame.length);
  assert.deepEqual(bytes.subarray(out.payloadStart, out.payloadEnd), payload);
}

Deno.test("prefix codecs return false until the frame is complete, split anywhere", () => {
  for (const codec of CODECS) {
    if (codec.trailerLength > 0) continue;
    for (const length of [0, 1, 5, 130, 300]) {
      if (length > codec.maxPayload) continue;
      const header = codec.headerLength(length);
      for (const offset of [0, 9]) {
        splitAtEveryOffset(
          codec,
          payloadOf(length, length),
          offset,
          // The frame's end is known once the whole header is there.
          (available) => available < header ? -1 : offset + header + length,
        );
      }
    }
  }
});

Deno.test("delimiter codecs return false until the delimiter is complete, split anywhere", () => {
  const codecs = [
    delimiter("\n"),
    delimiter("\r\n"),
    delimiter(new Uint8Array([0xff])),
    delimiter("--end--"),
  ];
  for (const codec of codecs) {
    // Junk after `end` is 0x0a: for the newline codec it is the delimiter
    // itself, so reading past `end` would find a frame.
    for (const length of [0, 1, 5, 130, 300]) {
      const payload = printable(length, length);
      for (const offset of [0, 9]) splitAtEveryOffset(codec, payload, offset, () => -1);
    }
  }
});

Deno.test("fixedSize returns false until the frame is complete, split anywhere", () => {
  for (const size of [1, 4, 200]) {
    for (const offset of [0, 3]) {
      splitAtEveryOffset(fixedSize(size), payloadOf(size, size), offset, () => offset + size);
    }
  }
});

// -- Byte order and varints, decoded from hand-written bytes --

Deno.test("lengthPrefix decodes hand-written big- and little-endian lengths", () => {
  const cases: [FrameCodec, number[], number][] = [
    [lengthPrefix(1), [0xff], 255],
    [lengthPrefix(2), [0x01, 0x02], 0x0102],
    [lengthPrefix(2, { littleEndian: true }), [0x01, 0x02], 0x0201],
    [lengthPrefix(2), [0xff, 0xff], 65535],
    [lengthPrefix(4), [0x00, 0x01, 0x02, 0x03], 0x010203],
    [lengthPrefix(4, { littleEndian: true }), [0x03, 0x02, 0x01, 0x00], 0x010203],
    // Top bit set: must stay unsigned.
    [lengthPrefix(4), [0x80, 0x00, 0x00, 0x01], 0x80000001],
    [lengthPrefix(4, { littleEndian: true }), [0x01, 0x00, 0x00, 0x80], 0x80000001],
    [lengthPrefix(4), [0xff, 0xff, 0xff, 0xff], 2 ** 32 - 1],
  ];
  for (const [codec, header, length] of cases) {
    const bytes = embed(new Uint8Array(header), 2);
    const [found, out] = decode(codec, bytes, 2, 2 + header.length, 2 ** 32 - 1);
    assert.equal(found, false);
    assert.equal(out.frameEnd, 2 + header.length + length, codec.name);
  }
  // A complete little-endian frame, payload and all.
  const bytes = new Uint8Array([9, 0x03, 0x00, 7, 8, 9, 9]);
  const [found, out] = decode(lengthPrefix(2, { littleEndian: true }), bytes, 1, 7);
  assert.ok(found);
  assert.deepEqual([out.payloadStart, out.payloadEnd, out.frameEnd], [3, 6, 6]);
});

Deno.test("varintPrefix decodes hand-written lengths, padded ones included", () => {
  const cases: [number[], number][] = [
    [[0x00], 0],
    [[0x7f], 127],
    [[0x80, 0x01], 128],
    [[0xac, 0x02], 300],
    [[0xff, 0xff, 0xff, 0xff, 0x0f], 2 ** 32 - 1],
    [[0x80, 0x80, 0x80, 0x80, 0x08], 2 ** 31],
    // Padded with 0x80 bytes: longer than needed but still within 5 bytes.
    [[0x80, 0x00], 0],
    [[0x81, 0x80, 0x80, 0x80, 0x00], 1],
  ];
  const codec = varintPrefix();
  for (const [header, length] of cases) {
    const bytes = embed(new Uint8Array([...header, 0xee]), 3);
    const [found, out] = decode(codec, bytes, 3, 3 + header.length + 1, 2 ** 32 - 1);
    assert.equal(found, length <= 1, `${header}`);
    assert.equal(out.frameEnd, 3 + header.length + length, `${header}`);
    if (found) assert.equal(out.payloadStart, 3 + header.length);
  }
});

Deno.test("varintPrefix rejects a 5th byte that overflows or continues", () => {
  const codec = varintPrefix();
  const cases: [number[], RegExp][] = [
    // Six continuation bytes: thrown at the 5th, without waiting for the 6th.
    [[0xff, 0xff, 0xff, 0xff, 0xff], /5th byte 0xff continues past 5 bytes/],
    [[0x80, 0x80, 0x80, 0x80, 0x80], /5th byte 0x80 continues past 5 bytes/],
    [[0xff, 0xff, 0xff, 0xff, 0x10], /5th byte 0x10 sets bits beyond the 32/],
    [[0x80, 0x80, 0x80, 0x80, 0x7f], /5th byte 0x7f sets bits beyond the 32/],
  ];
  for (const [header, pattern] of cases) {
    const bytes = embed(new Uint8Array([...header, 0x01]), 1);
    for (const end of [6, 7]) {
      assertFrameError(() => decode(codec, bytes, 1, end, 1000), NaN, 1000, pattern);
    }
    assertFrameError(
      () => decode(codec, bytes, 1, 6, 1000),
      NaN,
      1000,
      /Cannot decode frame: malformed varint prefix/,
    );
    // With four of the bytes it still waits.
    const [found, out] = decode(codec, bytes, 1, 5, 1000);
    assert.equal(found, false);
    assert.equal(out.frameEnd, -1);
  }
});

// -- maxFrameLength --

Deno.test("prefix codecs accept exactly maxFrameLength and reject one more from the header alone", () => {
  const prefixes = CODECS.filter((codec) => codec.trailerLength === 0);
  for (const codec of prefixes) {
    for (const max of [0, 1, 200]) {
      const exact = codec.encode(payloadOf(max));
      const [found, out] = decode(codec, exact, 0, exact.length, max);
      assert.ok(found, codec.name);
      assert.equal(out.payloadEnd - out.payloadStart, max);

      // Only the header of the oversized frame is present.
      const header = new Uint8Array(8).fill(JUNK);
      const headerLength = codec.encodeHeader(header, 2, max + 1);
      assertFrameError(
        () => decode(codec, header, 2, 2 + headerLength, max),
        max + 1,
        max,
        new RegExp(
          `Cannot decode frame: the ${codec.name} announces a ${
            max + 1
          }-byte payload, over the maxFrameLength of ${max} bytes`,
        ),
      );
    }
  }
  // The largest 4-byte and varint lengths are rejected with their full value.
  const huge = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x0f]);
  assertFrameError(
    () => decode(lengthPrefix(4), huge, 0, 4, 2 ** 31),
    2 ** 32 - 1,
    2 ** 31,
    /4294967295-byte/,
  );
  assertFrameError(
    () => decode(varintPrefix(), huge, 0, 5, 2 ** 31),
    2 ** 32 - 1,
    2 ** 31,
    /4294967295-byte/,
  );
});

Deno.test("fixedSize rejects a size over maxFrameLength before any byte arrives", () => {
  const codec = fixedSize(32);
  assertFrameError(
    () => decode(codec, new Uint8Array(0), 0, 0, 31),
    32,
    31,
    /Cannot decode frame: fixed 32 frames carry 32-byte payloads, over the maxFrameLength of 31 bytes/,
  );
  const [found, out] = decode(codec, new Uint8Array(32), 0, 32, 32);
  assert.ok(found);
  assert.equal(out.frameEnd, 32);
});

Deno.test("delimiter accepts a payload of exactly maxFrameLength and no longer", () => {
  for (const text of ["\n", "\r\n", "--end--"]) {
    const codec = delimiter(text);
    const length = text.length;
    for (const max of [0, 1, 10, 200]) {
      // Exactly max payload bytes, then the delimiter, then junk.
      const payload = printable(max, max);
      const exact = embed(codec.encode(payload), 3, 50);
      const [found, out] = decode(codec, exact, 3, exact.length, max);
      assert.ok(found, `${codec.name} max ${max}`);
      assert.equal(out.payloadEnd - out.payloadStart, max);

      // One byte longer: still waiting until max + delimiter-length bytes are
      // there, then it throws however much more is buffered, even when the
      // delimiter comes soon after.
      const long = embed(codec.encode(new Uint8Array(max + 1).fill(0x61)), 3, 50);
      const window = max + length;
      for (let available = 0; available < window; available++) {
        assert.equal(decode(codec, long, 3, 3 + available, max)[0], false);
      }
      for (const end of [3 + window, long.length]) {
        assertFrameError(
          () => decode(codec, long, 3, end, max),
          window,
          max,
          new RegExp(
            `Cannot decode frame: no ${codec.name} in the ${window} bytes after the frame's start, so the payload is over the maxFrameLength of ${max} bytes`,
          ),
        );
      }
    }
  }
});

// -- Delimiter search --

Deno.test("delimiter finds a delimiter split across the chunk end", () => {
  const codec = delimiter("\r\n");
  const bytes = new TextEncoder().encode("xxabc\r\nyy");
  const out = new FrameBounds();
  // The chunk ends inside the delimiter: not a frame yet, and the "\r" is
  // left for the next search.
  assert.equal(codec.decode(bytes, 2, 6, 100, out), false);
  assert.equal(out.frameEnd, -1);
  assert.equal(out.scanned, 5);
  assert.equal(codec.decode(bytes, 2, 7, 100, out, out.scanned), true);
  assert.deepEqual([out.payloadStart, out.payloadEnd, out.frameEnd, out.scanned], [2, 5, 7, 7]);
});

Deno.test("delimiter skips partial matches, overlapping ones included", () => {
  const encoder = new TextEncoder();
  const cases: [string, string, number][] = [
    ["\r\n", "a\rb\r\r\nz", 4],
    ["aab", "xaaab", 2],
    ["abab", "ababab", 0],
    ["abac", "ababac", 2],
  ];
  for (const [delim, text, payloadEnd] of cases) {
    const bytes = encoder.encode(text);
    const [found, out] = decode(delimiter(delim), bytes, 0, bytes.length);
    assert.ok(found, `${delim} in ${text}`);
    assert.equal(out.payloadStart, 0);
    assert.equal(out.payloadEnd, payloadEnd, `${delim} in ${text}`);
    assert.equal(out.frameEnd, payloadEnd + delim.length);
  }
});

Deno.test("delimiter resumes at scanFrom instead of searching again", () => {
  const codec = delimiter("\n");
  const bytes = new TextEncoder().encode("ab\ncd\nef");
  const out = new FrameBounds();
  // The caller vouches that nothing before scanFrom ends the frame, so the
  // newline at 2 is not looked at.
  assert.ok(codec.decode(bytes, 0, bytes.length, 100, out, 4));
  assert.deepEqual([out.payloadStart, out.payloadEnd], [0, 5]);
  // A scanFrom below start counts as start.
  assert.ok(codec.decode(bytes, 3, bytes.length, 100, out, 0));
  assert.deepEqual([out.payloadStart, out.payloadEnd], [3, 5]);
  // A search past everything there is keeps its place.
  assert.equal(codec.decode(bytes, 6, 8, 100, out, 8), false);
  assert.equal(out.scanned, 8);
});

Deno.test("delimiter searches long runs without reading past end", () => {
  for (const delim of ["\n", "\r\n"]) {
    const codec = delimiter(delim);
    for (const length of [127, 128, 129, 300, 5000]) {
      // Junk 0x0a past `end` would be a newline delimiter if it were read.
      const payload = new Uint8Array(length).fill(0x61);
      const bytes = embed(codec.encode(payload), 1, 100);
      const frameEnd = 1 + length + delim.length;
      for (const end of [frameEnd - 1, frameEnd - delim.length, 1 + (length >> 1)]) {
        const [found, out] = decode(codec, bytes, 1, end, 10_000);
        assert.equal(found, false, `${codec.name} ${length} to ${end}`);
        assert.equal(out.scanned, end - delim.length + 1);
      }
      const [found, out] = decode(codec, bytes, 1, bytes.length, 10_000);
      assert.ok(found);
      assert.equal(out.payloadEnd, 1 + length);
      assert.equal(out.frameEnd, frameEnd);
    }
  }
});

Deno.test("delimiter finds a partial-match run in a long payload", () => {
  // Many "\r" without "\n" past the short scan: each is checked and passed.
  const codec = delimiter("\r\n");
  const text = "\r".repeat(400) + "x\r\n";
  const bytes = new TextEncoder().encode(text);
  const [found, out] = decode(codec, bytes, 0, bytes.length, 1000);
  assert.ok(found);
  assert.equal(out.payloadEnd, 401);
});

// -- The largest payload a buffer holds (issue 11, defect 6) --

/** The largest payload of `codec` whose frame is at most `size` bytes, by trying every length. */
function largestByTrying(codec: FrameCodec, size: number): number {
  let best = -1;
  for (let n = 0; n <= Math.min(size, codec.maxPayload); n++) {
    let frame: number;
    try {
      frame = codec.headerLength(n) + n + codec.trailerLength;
    } catch {
      continue; // a length the codec cannot frame (fixedSize)
    }
    if (frame <= size) best = n;
  }
  return best;
}

Deno.test("largestPayload is the longest payload whose frame fits, for every codec and buffer size", () => {
  const codecs = [
    ...CODECS,
    delimiter("\n"),
    delimiter(new Uint8Array([1, 2, 3, 4, 5])),
    fixedSize(1),
    fixedSize(17),
    fixedSize(300),
  ];
  for (const codec of codecs) {
    for (let size = 0; size <= 600; size++) {
      assert.equal(
        largestPayload(codec, size),
        largestByTrying(codec, size),
        `${codec.name} @${size}`,
      );
    }
    // Around the varint header steps and the u16 limit.
    for (const size of [16383, 16384, 16385, 16386, 65535, 65537, 65538, 65539, 2097154]) {
      const n = largestPayload(codec, size);
      const fits = (k: number) => {
        try {
          return codec.headerLength(k) + k + codec.trailerLength <= size;
        } catch {
          return false;
        }
      };
      assert.ok(n === -1 || fits(n), `${codec.name} @${size}: ${n} does not fit`);
      assert.ok(
        n === codec.maxPayload || !fits(n + 1),
        `${codec.name} @${size}: ${n + 1} fits too`,
      );
    }
  }
  assert.equal(largestPayload(varintPrefix(), 256), 254);
  assert.equal(largestPayload(varintPrefix(), 16386), 16383); // 16384 takes a 3-byte header
  assert.equal(largestPayload(lengthPrefix(2), 1 << 20), 65535);
  assert.equal(largestPayload(lengthPrefix(4), 3), -1);
  assert.equal(largestPayload(delimiter("\r\n"), 1), -1);
  assertRangeError(
    () => largestPayload(varintPrefix(), -1),
    /bufferSize must be a non-negative integer/,
  );
  assertRangeError(() => largestPayload(varintPrefix(), 1.5), /received 1.5/);
});
