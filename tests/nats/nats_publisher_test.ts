// The publish side of NATS: the bytes NatsPublisher writes are the protocol's
// PUB/HPUB frames exactly (checked against frames written out here by hand,
// and against a real nats-server), they batch into one flusher region, they
// wait for room and abort cleanly on tiny pools, every refusal comes before
// a byte is written, a cancelled reservation sends nothing the server
// rejects, and tryPublish and tryPublishString allocate nothing per message.
import assert from "node:assert/strict";
import {
  BufferPool,
  ClosedError,
  type FlushRegion,
  lengthPrefix,
  ReleasedError,
  SharedWriter,
  WriteFlusher,
  Writer,
} from "../../mod.ts";
import {
  MAX_NATS_SUBJECT_LENGTH,
  NatsHeaders,
  NatsPublisher,
  type NatsPublishOptions,
  NatsSubject,
} from "../../nats.ts";
import { assertAllFree, concat, Tracked } from "../_helpers.ts";
import { type NatsServer, natsTest, startNatsServer } from "./_nats_server.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

type Kind = "Writer" | "SharedWriter";
const KINDS: Kind[] = ["Writer", "SharedWriter"];

/** A pool, a flusher, a writer of `kind` and a publisher on it. */
class Rig {
  readonly pool: BufferPool;
  readonly flusher: WriteFlusher;
  readonly writer: Writer | SharedWriter;
  readonly publisher: NatsPublisher;

  constructor(
    kind: Kind,
    bufferSize = 64 * 1024,
    bufferCount = 16,
    maxPayload?: number,
  ) {
    this.pool = new BufferPool({ bufferSize, bufferCount, shared: kind === "SharedWriter" });
    this.flusher = new WriteFlusher(this.pool);
    this.writer = kind === "Writer"
      ? new Writer(this.pool, this.flusher)
      : new SharedWriter(this.pool, this.flusher);
    this.publisher = new NatsPublisher(
      this.writer,
      maxPayload === undefined ? {} : { maxPayload },
    );
  }

  /** Closes writer and flusher; returns every byte sent, and checks every buffer is back. */
  async wire(): Promise<Uint8Array> {
    this.writer.close();
    this.flusher.close();
    const bytes = new Uint8Array(await new Response(this.flusher.bytes()).arrayBuffer());
    assertAllFree(this.pool);
    return bytes;
  }
}

/** One publish as the protocol spells it, written out here from its definition. */
function frame(subject: string, payload: Uint8Array, reply?: string, headers?: string): Uint8Array {
  const to = reply === undefined ? subject : `${subject} ${reply}`;
  if (headers === undefined) {
    return concat([
      encoder.encode(`PUB ${to} ${payload.length}\r\n`),
      payload,
      encoder.encode("\r\n"),
    ]);
  }
  const block = encoder.encode(headers);
  return concat([
    encoder.encode(`HPUB ${to} ${block.length} ${block.length + payload.length}\r\n`),
    block,
    payload,
    encoder.encode("\r\n"),
  ]);
}

/** A payload of `n` bytes with CR LF at its start and in its middle, so that no parser may look for them. */
function payloadOf(n: number): Uint8Array {
  const bytes = new Uint8Array(n);
  for (let i = 0; i < n; i++) bytes[i] = (i * 31 + 7) & 0xff;
  if (n >= 2) bytes.set([13, 10], 0);
  if (n >= 6) bytes.set([13, 10], n >> 1);
  return bytes;
}

function assertBytes(actual: Uint8Array, expected: Uint8Array): void {
  if (actual.length === expected.length && actual.every((b, i) => b === expected[i])) return;
  // Latin-1 text, so that a mismatch prints readably, CRLF included.
  const show = (b: Uint8Array) => JSON.stringify(String.fromCharCode(...b.subarray(0, 400)));
  assert.fail(`wire bytes differ:\n  actual   ${show(actual)}\n  expected ${show(expected)}`);
}

// Digit boundaries, and the longest ASCII text copied by a loop (64) on either side.
const SIZES = [0, 1, 2, 9, 10, 11, 63, 64, 65, 99, 100, 101, 999, 1000, 9999, 10000];
const HEADERS = "NATS/1.0\r\nTrace: t-1\r\nTag: a\r\nTag: b\r\n\r\n";
const headers = new NatsHeaders([["Trace", "t-1"], ["Tag", "a"], ["Tag", "b"]]);
const subject = new NatsSubject("orders.eu.created");
const reply = new NatsSubject("_INBOX.abc.1");

for (const kind of KINDS) {
  Deno.test(`${kind}: PUB and HPUB bytes are the wire format, with and without reply, across digit boundaries, by every way to publish`, async () => {
    const rig = new Rig(kind, 64 * 1024, 32);
    const p = rig.publisher;
    const expected: Uint8Array[] = [];
    const variants: [NatsPublishOptions | undefined, string | undefined, string | undefined][] = [
      [undefined, undefined, undefined],
      [{ reply }, reply.text, undefined],
      [{ headers }, undefined, HEADERS],
      [{ reply, headers }, reply.text, HEADERS],
    ];
    for (const size of SIZES) {
      const payload = payloadOf(size);
      const text = "é".repeat(size >> 1) + "x".repeat(size & 1); // `size` bytes of UTF-8
      const ascii = String.fromCharCode(...Array.from({ length: size }, (_, i) => (i * 7) & 0x7f));
      for (const [options, replyText, headerText] of variants) {
        assert.ok(p.tryPublish(subject, payload, options));
        await p.publish(subject, payload, options);
        assert.ok(p.tryPublishString(subject, text, options));
        await p.publishString(subject, text, options);
        assert.ok(p.tryPublishString(subject, ascii, options));
        await p.publishString(subject, ascii, options);
        const reservation = p.tryReserve(subject, size, options)!;
        assert.equal(reservation.length, size);
        reservation.payload.set(payload);
        reservation.commit();
        const later = await p.reserve(subject, size, options);
        later.payload.set(payload);
        later.commit();
        const asBytes = frame(subject.text, payload, replyText, headerText);
        const asText = frame(subject.text, encoder.encode(text), replyText, headerText);
        const asAscii = frame(subject.text, encoder.encode(ascii), replyText, headerText);
        expected.push(asBytes, asBytes, asText, asText, asAscii, asAscii, asBytes, asBytes);
      }
    }
    assertBytes(await rig.wire(), concat(expected));
  });

  Deno.test(`${kind}: a payload holding CR LF, and UTF-8 subjects, go through as they are`, async () => {
    const rig = new Rig(kind);
    const utf8 = new NatsSubject("prix.café");
    rig.publisher.tryPublishString(new NatsSubject("a"), "line\r\nPUB b 1\r\nx\r\n");
    rig.publisher.tryPublish(utf8, new Uint8Array([13, 10]));
    assertBytes(
      await rig.wire(),
      concat([
        encoder.encode("PUB a 18\r\nline\r\nPUB b 1\r\nx\r\n\r\n"),
        encoder.encode("PUB prix.café 2\r\n\r\n\r\n"),
      ]),
    );
  });
}

Deno.test("Writer: a tick's publishes reach the flusher as one region of one buffer", async () => {
  const pool = new BufferPool({ bufferSize: 64 * 1024, bufferCount: 4 });
  const flusher = new WriteFlusher(pool);
  const writer = new Writer(pool, flusher); // flushes at the end of the microtask
  const publisher = new NatsPublisher(writer);
  const payload = payloadOf(32);
  const count = 1000;
  for (let i = 0; i < count; i++) assert.ok(publisher.tryPublish(subject, payload));
  const one = frame(subject.text, payload);
  const reader = flusher.readable.getReader();
  const { value: batch } = await reader.read();
  assert.equal(batch!.length, 1, "one region for the whole tick");
  const region = batch![0]!;
  assert.equal(region.length, count * one.length);
  assertBytes(region.bytes.subarray(0, one.length), one);
  assertBytes(region.bytes.subarray(region.length - one.length), one);
  region.release();
  writer.close();
  flusher.close();
  assert.equal((await reader.read()).done, true);
  assertAllFree(pool);
});

Deno.test("SharedWriter: two handles publish into the same buffers, each in its own order", async () => {
  const pool = new BufferPool({ bufferSize: 4096, bufferCount: 8, shared: true });
  const flusher = new WriteFlusher(pool);
  const writer = new SharedWriter(pool, flusher);
  const there = BufferPool.attach(pool.handle);
  const other = SharedWriter.attach(there, writer.handle);
  const handles = [new NatsPublisher(writer), new NatsPublisher(other)];
  const subjects = [new NatsSubject("from.a"), new NatsSubject("from.b")];
  const expected: Uint8Array[] = [];
  for (let i = 0; i < 200; i++) {
    const h = i % 2;
    const payload = encoder.encode(`message ${i}`);
    if (i % 3 === 0) await handles[h]!.publish(subjects[h]!, payload);
    else {
      const r = await handles[h]!.reserve(subjects[h]!, payload.length);
      r.payload.set(payload);
      r.commit();
    }
    expected.push(frame(subjects[h]!.text, payload));
  }
  other.close();
  writer.close();
  flusher.close();
  assertBytes(new Uint8Array(await new Response(flusher.bytes()).arrayBuffer()), concat(expected));
  there.detach();
  assertAllFree(pool);
});

for (const kind of KINDS) {
  for (const bufferCount of [1, 2]) {
    Deno.test(`${kind}, ${bufferCount} buffer(s) of 64 bytes: publish waits for the reader, an aborted publish leaves nothing`, async () => {
      const pool = new BufferPool({ bufferSize: 64, bufferCount, shared: kind === "SharedWriter" });
      const flusher = new WriteFlusher(pool);
      const writer = kind === "Writer"
        ? new Writer(pool, flusher)
        : new SharedWriter(pool, flusher);
      const publisher = new NatsPublisher(writer);
      const s = new NatsSubject("t");
      const payload = payloadOf(20); // a 31-byte frame: two to a buffer
      const sent: Uint8Array[] = [];
      while (publisher.tryPublish(s, payload)) sent.push(frame("t", payload));
      assert.equal(sent.length, 2 * bufferCount);

      const waitingPromise = publisher.publish(s, payload);
      const waiting = new Tracked(waitingPromise);
      const controller = new AbortController();
      const aborted = publisher.publish(s, payloadOf(5), { signal: controller.signal });
      const reservingPromise = publisher.reserve(s, 1);
      controller.abort(new Error("gave up"));
      await assert.rejects(aborted, /gave up/);
      await Promise.resolve();
      assert.equal(waiting.state.kind, "pending");

      // Read until both waiting calls got room; a read still pending then gets the next batch.
      const reader = flusher.readable.getReader();
      const received: Uint8Array[] = [];
      const keep = (regions: FlushRegion[]) => {
        for (const region of regions) {
          received.push(region.bytes.slice());
          region.release();
        }
      };
      const placed = Promise.all([waitingPromise, reservingPromise]);
      let read = reader.read();
      for (;;) {
        const result = await Promise.race([read, placed.then(() => null)]);
        if (result === null) break;
        keep(result.value!);
        read = reader.read();
      }
      sent.push(frame("t", payload));
      const reservation = await reservingPromise;
      reservation.payload[0] = 0x21;
      reservation.commit();
      sent.push(frame("t", new Uint8Array([0x21])));
      writer.close();
      flusher.close();
      for (let result = await read; !result.done; result = await reader.read()) keep(result.value);
      assertBytes(concat(received), concat(sent));
      assertAllFree(pool);
    });
  }
}

for (const kind of KINDS) {
  Deno.test(`${kind}: over maxPayload or the buffer size, a publish is refused before a byte is written`, async () => {
    const rig = new Rig(kind, 256, 4, 100);
    const p = rig.publisher;
    const s = new NatsSubject("s");
    assert.throws(
      () => p.tryPublish(s, new Uint8Array(101)),
      (e: Error) =>
        e instanceof RangeError && /101 bytes/.test(e.message) && /at most 100/.test(e.message),
    );
    const block = headers.bytes.length; // counts towards max_payload
    assert.throws(
      () => p.tryPublish(s, new Uint8Array(101 - block), { headers }),
      new RegExp(`101 bytes \\(${block} of headers, ${101 - block} of payload\\).*at most 100`),
    );
    assert.throws(() => p.tryPublishString(s, "x".repeat(101)), RangeError);
    assert.throws(() => p.tryReserve(s, 101), RangeError);
    await assert.rejects(p.publish(s, new Uint8Array(101)), RangeError);
    await assert.rejects(p.publishString(s, "é".repeat(51)), RangeError);
    await assert.rejects(p.reserve(s, 101), RangeError);
    assert.throws(() => p.tryReserve(s, -1), /not an integer/);
    assert.throws(() => p.tryReserve(s, 1.5), /not an integer/);

    const big = new Rig(kind, 64, 2, 1000);
    assert.throws(
      () => big.publisher.tryPublish(s, new Uint8Array(60)),
      /takes 72, and the pool's buffers hold 64/,
    );
    await assert.rejects(big.publisher.reserve(s, 60), /buffers hold 64/);
    assert.equal((await big.wire()).length, 0);

    // The writer is untouched: the next publish goes first.
    assert.ok(p.tryPublish(s, new Uint8Array(100)));
    assertBytes(await rig.wire(), frame("s", new Uint8Array(100)));
  });

  Deno.test(`${kind}: a wildcard subject or reply is refused, and nothing is written`, async () => {
    const rig = new Rig(kind);
    const p = rig.publisher;
    for (const text of ["a.*", "a.>", "*", ">", "*.b"]) {
      const wild = new NatsSubject(text);
      assert.throws(() => p.tryPublish(wild, new Uint8Array(1)), /wildcard/);
      assert.throws(() => p.tryPublishString(subject, "x", { reply: wild }), /reply to/);
      assert.throws(() => p.tryReserve(wild, 1), TypeError);
      await assert.rejects(p.publish(subject, new Uint8Array(1), { reply: wild }), TypeError);
    }
    assert.equal((await rig.wire()).length, 0);
  });

  Deno.test(`${kind}: a writer with a codec is refused when the publisher is made`, async () => {
    const pool = new BufferPool({
      bufferSize: 256,
      bufferCount: 2,
      shared: kind === "SharedWriter",
    });
    const flusher = new WriteFlusher(pool);
    const writer = kind === "Writer"
      ? new Writer(pool, flusher, { codec: lengthPrefix(2) })
      : new SharedWriter(pool, flusher, { codec: lengthPrefix(2) });
    assert.throws(() => new NatsPublisher(writer), /writer with a codec/);
    writer.close();
    flusher.close();
    const wire = new Uint8Array(await new Response(flusher.bytes()).arrayBuffer());
    assert.equal(wire.length, 0);
    assertAllFree(pool);
  });
}

Deno.test("NatsPublisher refuses what is not a writer, and a maxPayload out of range", () => {
  const pool = new BufferPool({ bufferSize: 64, bufferCount: 1 });
  const flusher = new WriteFlusher(pool);
  const writer = new Writer(pool, flusher);
  assert.throws(() => new NatsPublisher({} as Writer), /pass a Writer or a SharedWriter/);
  for (const maxPayload of [-1, 1.5, NaN, 2 ** 31]) {
    assert.throws(() => new NatsPublisher(writer, { maxPayload }), RangeError);
  }
  assert.equal(new NatsPublisher(writer).maxPayload, 1024 * 1024);
  assert.equal(new NatsPublisher(writer).writer, writer);
  writer.close();
  flusher.close();
  assertAllFree(pool);
});

Deno.test("A closed writer's publisher throws ClosedError; an open claim is a TypeError", async () => {
  const pool = new BufferPool({ bufferSize: 256, bufferCount: 2 });
  const flusher = new WriteFlusher(pool);
  const writer = new Writer(pool, flusher);
  const p = new NatsPublisher(writer);
  const claim = writer.tryClaim(4)!;
  assert.throws(() => p.tryPublish(subject, new Uint8Array(1)), /claim is still open/);
  claim.cancel();
  writer.close();
  assert.throws(() => p.tryPublish(subject, new Uint8Array(1)), ClosedError);
  await assert.rejects(p.publishString(subject, "x"), ClosedError);
  assert.throws(() => p.tryReserve(subject, 1), ClosedError);
  flusher.close();
  assertAllFree(pool);
});

Deno.test("NatsSubject: what is valid, what is a wildcard, and why the rest is not", () => {
  const valid: [string, boolean][] = [
    ["a", false],
    ["orders.eu.created", false],
    ["a*.b>", false],
    ["_INBOX.x-y_z", false],
    ["prix.café", false],
    ["emoji.😀", false],
    ["*", true],
    [">", true],
    ["a.*.c", true],
    ["a.b.>", true],
  ];
  for (const [text, wildcard] of valid) {
    const s = new NatsSubject(text);
    assert.equal(s.text, text);
    assert.equal(s.wildcard, wildcard, text);
    assertBytes(s.bytes, encoder.encode(text));
    assert.equal(String(s), text);
  }
  const invalid: [string, RegExp][] = [
    ["", /it is empty/],
    [".a", /token 1 is empty \(at index 0\)/],
    ["a.", /token 2 is empty \(at index 2\)/],
    ["a..b", /token 2 is empty \(at index 2\)/],
    ["a b", /whitespace \(U\+0020\) at index 1/],
    ["a\tb", /whitespace \(U\+0009\) at index 1/],
    ["a\r\nb", /whitespace \(U\+000D\) at index 1/],
    ["a\u0000", /a control character \(U\+0000\) at index 1/],
    ["a\u007f", /a control character \(U\+007F\) at index 1/],
    ["a.>.b", /">" is token 2, not the last/],
    [">.a", /">" is token 1, not the last/],
    ["a.\ud800", /a lone surrogate at index 2/],
    ["a\udc00b", /a lone surrogate at index 1/],
  ];
  for (const [text, message] of invalid) {
    assert.throws(
      () => new NatsSubject(text),
      (e: Error) => e instanceof TypeError && message.test(e.message),
      text,
    );
  }
  assert.equal(new NatsSubject("a".repeat(MAX_NATS_SUBJECT_LENGTH)).bytes.length, 1024);
  assert.throws(() => new NatsSubject("a".repeat(1025)), /takes 1025 bytes; the limit is 1024/);
  // The limit is on UTF-8 bytes, not characters: 513 two-byte characters are 1,026 bytes.
  assert.throws(() => new NatsSubject("é".repeat(513)), RangeError);
  assert.equal(NatsSubject.literal("a.b").wildcard, false);
  assert.throws(
    () => NatsSubject.literal("a.*"),
    /publish to NATS subject "a\.\*": it has a wildcard/,
  );
});

Deno.test("NatsHeaders: the NATS/1.0 block from pairs, records and Headers; bad names and values refused", () => {
  const text = (h: NatsHeaders) => decoder.decode(h.bytes);
  assert.equal(text(new NatsHeaders([])), "NATS/1.0\r\n\r\n");
  assert.equal(
    text(new NatsHeaders({ A: "1", "Nats-Msg-Id": "x y" })),
    "NATS/1.0\r\nA: 1\r\nNats-Msg-Id: x y\r\n\r\n",
  );
  assert.equal(text(new NatsHeaders([["K", "1"], ["K", "2"]])), "NATS/1.0\r\nK: 1\r\nK: 2\r\n\r\n");
  assert.equal(text(new NatsHeaders(new Map([["K", "é"]]))), "NATS/1.0\r\nK: é\r\n\r\n");
  assert.equal(text(new NatsHeaders(new Headers({ K: "v" }))), "NATS/1.0\r\nk: v\r\n\r\n");
  assert.equal(text(new NatsHeaders({ K: "" })), "NATS/1.0\r\nK: \r\n\r\n");
  const badNames: [string, RegExp][] = [
    ["", /name: it is empty/],
    ["A:B", /":" at index 1/],
    ["A B", /whitespace \(U\+0020\) at index 1/],
    ["A\u0001", /a control character \(U\+0001\) at index 1/],
    ["Ké", /a non-ASCII character at index 1/],
  ];
  for (const [name, message] of badNames) {
    assert.throws(
      () => new NatsHeaders({ [name]: "v" }),
      (e: Error) => e instanceof TypeError && message.test(e.message),
      name,
    );
  }
  assert.throws(
    () => new NatsHeaders({ K: "a\r\nB: c" }),
    /value for "K": a line break \(CR\) at index 1/,
  );
  assert.throws(() => new NatsHeaders([["K", "a\nb"]]), /a line break \(LF\) at index 1/);
  assert.throws(() => new NatsHeaders({ K: "\ud800" }), /a lone surrogate at index 0/);
});

for (const kind of KINDS) {
  Deno.test(`${kind}: a reservation is filled in place; settled, it refuses to be used again`, async () => {
    const rig = new Rig(kind);
    const p = rig.publisher;
    const r = p.tryReserve(subject, 3, { reply })!;
    assert.equal(r.subject, subject);
    assert.equal(r.open, true);
    assert.equal(r.length, 3);
    assert.equal(r.payload.length, 3);
    r.payload.set([1, 2, 3]);
    r.commit();
    assert.equal(r.open, false);
    assert.throws(() => r.payload, ReleasedError);
    assert.throws(() => r.commit(), ReleasedError);
    assert.throws(() => r.cancel(), ReleasedError);
    {
      using disposed = p.tryReserve(subject, 2)!;
      disposed.payload.fill(9);
    } // cancelled here, as the newest: a Writer takes it back
    const last = p.tryReserve(subject, 1)!;
    last.cancel();
    assert.throws(() => last.cancel(), ReleasedError);
    const sent = [frame(subject.text, new Uint8Array([1, 2, 3]), reply.text)];
    // A Writer takes the newest back; a SharedWriter cannot, and sends filler instead.
    if (kind === "SharedWriter") {
      sent.push(voidOf(frame(subject.text, new Uint8Array(2)).length));
      sent.push(voidOf(frame(subject.text, new Uint8Array(1)).length));
    }
    assertBytes(await rig.wire(), concat(sent));
  });

  Deno.test(`${kind}: a cancelled reservation is rewritten as UNSUB lines of exactly its size`, async () => {
    const rig = new Rig(kind);
    const p = rig.publisher;
    const expected: Uint8Array[] = [];
    for (const size of [0, 1, 9, 100, 497, 498, 1000, 5000]) {
      const r = p.tryReserve(subject, size, { headers })!;
      r.payload.fill(0x41);
      p.tryPublishString(subject, "after"); // so that a Writer cannot take it back
      r.cancel();
      expected.push(voidOf(frame(subject.text, new Uint8Array(size), undefined, HEADERS).length));
      expected.push(frame(subject.text, encoder.encode("after")));
    }
    assertBytes(await rig.wire(), concat(expected));
  });
}

/** `length` bytes of `UNSUB _` lines, spaces padding each, as even as can be, none over 512. */
function voidOf(length: number): Uint8Array {
  const lines = Math.ceil(length / 512);
  const parts: string[] = [];
  for (let i = 0; i < lines; i++) {
    const size = Math.floor(length / lines) + (i < length % lines ? 1 : 0);
    parts.push(`UNSUB _${" ".repeat(size - 9)}\r\n`);
  }
  return encoder.encode(parts.join(""));
}

for (const kind of KINDS) {
  Deno.test(`${kind}: the publisher's close cancels its open reservations the NATS way, then closes the writer`, async () => {
    const rig = new Rig(kind);
    const p = rig.publisher;
    const s = new NatsSubject("s");
    const older = p.tryReserve(s, 3)!;
    assert.ok(p.tryPublishString(s, "x"));
    const newest = p.tryReserve(s, 4)!;
    const settled = p.tryReserve(s, 1)!;
    settled.payload[0] = 0x79;
    settled.commit();
    const last = p.tryReserve(s, 2)!;
    p.close();
    assert.equal(rig.writer.closed, true);
    for (const r of [older, newest, last]) assert.equal(r.open, false);
    p.close(); // again: nothing more to do
    // A Writer takes the newest back; everything else is filler of its exact size.
    assertBytes(
      await rig.wire(),
      concat([
        voidOf(frame("s", new Uint8Array(3)).length),
        frame("s", encoder.encode("x")),
        voidOf(frame("s", new Uint8Array(4)).length),
        frame("s", new Uint8Array([0x79])),
        kind === "Writer" ? new Uint8Array(0) : voidOf(frame("s", new Uint8Array(2)).length),
      ]),
    );
  });
}

Deno.test("SharedWriter: what the handle a publisher wraps cancels itself (the writer's close) is UNSUB lines, not zeros", async () => {
  const rig = new Rig("SharedWriter");
  const p = rig.publisher;
  const s = new NatsSubject("s");
  // The SharedReservation under the NATS one, left open: closing the writer
  // (not the publisher) cancels it at the handle's level.
  p.tryReserve(s, 5)!;
  assert.ok(p.tryPublishString(s, "after"));
  assertBytes(
    await rig.wire(),
    concat([voidOf(frame("s", new Uint8Array(5)).length), frame("s", encoder.encode("after"))]),
  );
});

Deno.test("SharedWriter: a dead worker's open reservation, reclaimed from a handle a publisher wraps, is UNSUB lines: the messages after it still frame", async () => {
  const pool = new BufferPool({ bufferSize: 4096, bufferCount: 4, shared: true });
  const flusher = new WriteFlusher(pool);
  const writer = new SharedWriter(pool, flusher);
  const publisher = new NatsPublisher(writer);
  // The "worker" that dies: a pool object and a handle of its own, in this thread.
  const doomedPool = BufferPool.attach(pool.handle);
  const doomed = new NatsPublisher(SharedWriter.attach(doomedPool, writer.handle));
  const s = new NatsSubject("s");
  assert.ok(publisher.tryPublishString(s, "before"));
  const open = doomed.tryReserve(s, 20, { headers })!;
  open.payload.fill(0x41);
  assert.ok(doomed.tryPublishString(s, "doomed's"));
  assert.ok(publisher.tryPublishString(s, "after"));
  // It dies with the reservation open; a live handle settles what it left.
  assert.equal(writer.reclaim(doomedPool.workerId), 1);
  pool.reclaim(doomedPool.workerId);
  publisher.close();
  flusher.close();
  const wire = new Uint8Array(await new Response(flusher.bytes()).arrayBuffer());
  assert.ok(!wire.includes(0), "zeros reached the wire");
  assertBytes(
    wire,
    concat([
      frame("s", encoder.encode("before")),
      voidOf(frame("s", new Uint8Array(20), undefined, HEADERS).length),
      frame("s", encoder.encode("doomed's")),
      frame("s", encoder.encode("after")),
    ]),
  );
  assertAllFree(pool);
});

Deno.test("Writer: cancelling the newest reservation sends nothing, in its buffer or one the writer left", async () => {
  const rig = new Rig("Writer", 128, 4);
  const p = rig.publisher;
  const s = new NatsSubject("s");
  const first = p.tryReserve(s, 4)!;
  first.payload.set([1, 2, 3, 4]);
  first.cancel(); // the newest: taken back
  const second = p.tryReserve(s, 4)!;
  const third = p.tryReserve(s, 4)!;
  second.cancel(); // the third follows it: filler
  third.payload.set([5, 6, 7, 8]);
  third.commit();
  const fourth = p.tryReserve(s, 50)!; // 61 bytes: the buffer holds 128
  assert.ok(p.tryPublish(s, new Uint8Array(90))); // does not fit after it: the next buffer
  fourth.cancel(); // still the newest, with nothing after it in its buffer: taken back
  assertBytes(
    await rig.wire(),
    concat([
      voidOf(frame("s", new Uint8Array(4)).length),
      frame("s", new Uint8Array([5, 6, 7, 8])),
      frame("s", new Uint8Array(90)),
    ]),
  );
});

// -- Against a real nats-server --

/** Reads a connection as text (the tests' payloads are ASCII) until `done` says so. */
class Peer {
  readonly conn: Deno.Conn;
  text = "";
  readonly #buffer = new Uint8Array(64 * 1024);

  constructor(conn: Deno.Conn) {
    this.conn = conn;
  }

  static async connect(server: NatsServer, connect: object): Promise<Peer> {
    const peer = new Peer(await Deno.connect({ hostname: server.hostname, port: server.port }));
    await peer.until((text) => text.includes("\r\n")); // INFO
    peer.text = "";
    await peer.send(`CONNECT ${JSON.stringify({ protocol: 1, headers: true, ...connect })}\r\n`);
    return peer;
  }

  async send(text: string): Promise<void> {
    const bytes = encoder.encode(text);
    for (let at = 0; at < bytes.length;) at += await this.conn.write(bytes.subarray(at));
  }

  async until(done: (text: string) => boolean): Promise<string> {
    while (!done(this.text)) {
      const n = await this.conn.read(this.#buffer);
      if (n === null) {
        throw new Error(`the server closed the connection after ${JSON.stringify(this.text)}`);
      }
      this.text += decoder.decode(this.#buffer.subarray(0, n));
    }
    return this.text;
  }

  /** Sends PING and reads until its PONG, or an error. */
  async sync(): Promise<string> {
    await this.send("PING\r\n");
    return await this.until((t) => t.includes("PONG\r\n") || t.includes("-ERR"));
  }
}

interface Received {
  subject: string;
  reply: string | undefined;
  headers: string | undefined;
  payload: string;
}

/** The MSG and HMSG a subscriber received, parsed from the protocol's definition. */
function messages(text: string): Received[] {
  const out: Received[] = [];
  let at = 0;
  while (at < text.length) {
    const eol = text.indexOf("\r\n", at);
    const line = text.slice(at, eol).split(" ");
    at = eol + 2;
    if (line[0] === "MSG" || line[0] === "HMSG") {
      const headed = line[0] === "HMSG";
      const n = line.length - (headed ? 5 : 4); // a reply subject is there when n is 1
      const total = Number(line[line.length - 1]);
      const headerLength = headed ? Number(line[line.length - 2]) : 0;
      out.push({
        subject: line[1]!,
        reply: n === 1 ? line[3] : undefined,
        headers: headed ? text.slice(at, at + headerLength) : undefined,
        payload: text.slice(at + headerLength, at + total),
      });
      assert.equal(text.slice(at + total, at + total + 2), "\r\n");
      at += total + 2;
    } else {
      assert.ok(["PONG", "PING", "+OK"].includes(line[0]!), `unexpected ${line.join(" ")}`);
    }
  }
  return out;
}

const PERMISSIONS = `authorization {
  users = [
    { user: "pub", password: "pw", permissions: { publish: { allow: ["orders.>"] }, subscribe: { allow: [">"] } } }
  ]
}`;

for (const kind of KINDS) {
  natsTest(
    `${kind}: piped to a real nats-server, publishes arrive exactly and cancelled ones send nothing it rejects`,
    async () => {
      // Publishing is allowed on orders.> only: the filler needs no permission at all.
      await using server = await startNatsServer({ config: PERMISSIONS });
      const login = { user: "pub", pass: "pw" };
      const subscriber = await Peer.connect(server, { ...login, verbose: false });
      await subscriber.send("SUB > 1\r\n");
      await subscriber.sync();
      subscriber.text = "";

      const publisherPeer = await Peer.connect(server, { ...login, verbose: true });
      const rig = new Rig(kind, 16 * 1024, 8);
      const piped = rig.flusher.pipeTo(publisherPeer.conn);
      const p = rig.publisher;
      const inbox = new NatsSubject("orders.inbox.1");
      const expected: Received[] = [];
      let commands = 1; // CONNECT's +OK
      let n = 0;
      for (const size of [0, 1, 5, 100, 497, 498, 600, 2000, 5000]) {
        const options: NatsPublishOptions = n % 2 === 0 ? {} : { reply: inbox, headers };
        const cancelled = await p.reserve(subject, size, options);
        cancelled.payload.fill(0x58);
        const payload = `message ${n++} ${"\r\n".repeat(n % 3)}`;
        await p.publishString(subject, payload, options);
        cancelled.cancel();
        const length =
          frame(subject.text, new Uint8Array(size), options.reply?.text, options.headers && HEADERS)
            .length;
        commands += Math.ceil(length / 512) + 1;
        expected.push({
          subject: subject.text,
          reply: options.reply?.text,
          headers: options.headers && HEADERS,
          payload,
        });
      }
      const taken = p.tryReserve(subject, 10)!; // the newest: a Writer sends nothing for it
      taken.cancel();
      if (kind === "SharedWriter") commands += 1;
      // Left open, a message after it: the publisher's close cancels it, not the writer's zeros.
      p.tryReserve(subject, 600, { headers })!.payload.fill(0x58);
      await p.publishString(subject, "last");
      commands +=
        Math.ceil(frame(subject.text, new Uint8Array(600), undefined, HEADERS).length / 512) +
        1;
      expected.push({
        subject: subject.text,
        reply: undefined,
        headers: undefined,
        payload: "last",
      });
      p.close();
      rig.flusher.close();
      await piped;
      assertAllFree(rig.pool);

      const replies = await publisherPeer.sync();
      assert.ok(!replies.includes("-ERR"), replies);
      assert.equal(replies.split("+OK\r\n").length - 1, commands);
      assert.deepEqual(messages(await subscriber.sync()), expected);
      publisherPeer.conn.close();
      subscriber.conn.close();
    },
  );
}

natsTest(
  "A real nats-server rejects what cancel avoids: zeros, and a publish without permission",
  async () => {
    await using server = await startNatsServer({ config: PERMISSIONS });
    const peer = await Peer.connect(server, { user: "pub", pass: "pw", verbose: true });
    await peer.send("PUB _BAB.VOID 0\r\n\r\n");
    assert.match(await peer.sync(), /-ERR 'Permissions Violation for Publish to "_BAB.VOID"'/);
    peer.conn.close();
    const zeros = await Peer.connect(server, { user: "pub", pass: "pw", verbose: true });
    await zeros.conn.write(new Uint8Array(16));
    assert.match(await zeros.sync(), /-ERR 'Unknown Protocol Operation'/);
    zeros.conn.close();
  },
);

for (const kind of KINDS) {
  for (const method of ["tryPublish", "tryPublishString"] as const) {
    Deno.test(`${kind}: ${method} allocates nothing per message`, async () => {
      const gc = (globalThis as { gc?: () => void }).gc;
      assert.ok(gc !== undefined, "run with --v8-flags=--expose-gc");
      const pool = new BufferPool({ bufferSize: 64 * 1024, bufferCount: 4 });
      const flusher = new WriteFlusher(pool);
      const writer = kind === "Writer"
        ? new Writer(pool, flusher, { flush: "manual" })
        : new SharedWriter(pool, flusher, { flush: "manual" });
      const reader = flusher.readable.getReader();
      const publisher = new NatsPublisher(writer);
      const s = new NatsSubject("bench.subject");
      const payload = new Uint8Array(32);
      const text = "a payload of 32 characters, here";
      // Rounds of 800 publishes (about 40 KB), each measured from a
      // collected heap: small enough that no scavenge runs within a round,
      // so an object or a string per message (16 bytes at least) would show
      // as 12.8 KB or more.
      const ROUNDS = 250;
      const PER_ROUND = 800;
      const growth: number[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        writer.flush();
        while (pool.stats().inUse > 1) {
          for (const region of (await reader.read()).value!) region.release();
        }
        gc();
        const before = Deno.memoryUsage().heapUsed;
        for (let i = 0; i < PER_ROUND; i++) {
          payload[0] = i;
          const placed = method === "tryPublish"
            ? publisher.tryPublish(s, payload)
            : publisher.tryPublishString(s, text);
          if (!placed) throw new Error("no room: the pool should hold a round");
        }
        growth.push(Deno.memoryUsage().heapUsed - before);
      }
      growth.sort((a, b) => a - b);
      const median = growth[ROUNDS >> 1]!;
      assert.ok(
        median < 2048,
        `heap grew ${median} bytes per ${PER_ROUND} publishes (median of ${ROUNDS} rounds)`,
      );
      writer.close();
      flusher.close();
      for (let result = await reader.read(); !result.done; result = await reader.read()) {
        for (const region of result.value) region.release();
      }
      assertAllFree(pool);
    });
  }
}
