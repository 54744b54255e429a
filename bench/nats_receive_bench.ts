// The NATS receive side: NatsReceiver against a hand-written parser of the
// same protocol. Run: deno bench -A bench/nats_receive_bench.ts
//
// Input: 500,000 `MSG` ops with 32-byte payloads, as nats-server sends them
// ("MSG bench.ticks 1 32\r\n" + payload + "\r\n", 56 bytes each), built
// once as 64 KiB chunks cut with no regard for op boundaries, as a socket
// delivers them. msgs/s = 500,000 / time per iteration.
//
// Every consumer adds up each message's sid and payload length, from
// offsets: no strings, no views. The baseline is what a careful user writes
// without bab: it parses each chunk in place (indexOf for the line's end,
// spaces and digits found byte by byte, no strings, nothing allocated per
// message) and copies only an op cut off by a chunk's end. NatsReceiver.push
// copies every chunk into pool staging memory first; NatsReceiver.read reads
// into it instead, as it does from a socket.
import assert from "node:assert/strict";
import { BufferPool, type ByteSource } from "../mod.ts";
import { NatsReceiver, type NatsServerHandlers } from "../nats.ts";

const N = 500_000;
const CHUNK = 64 * 1024;
const PAYLOAD = 32;

/** The ops as 64 KiB chunks. */
function chunks(): Uint8Array[] {
  const one = new TextEncoder().encode(
    `MSG bench.ticks 1 ${PAYLOAD}\r\n${"p".repeat(PAYLOAD)}\r\n`,
  );
  const all = new Uint8Array(one.length * N);
  for (let i = 0; i < N; i++) all.set(one, i * one.length);
  const out: Uint8Array[] = [];
  for (let at = 0; at < all.length; at += CHUNK) out.push(all.slice(at, at + CHUNK));
  return out;
}

const input = chunks();
/** What the consumers add up; zeroed before each timed part so it stays a small integer. */
let sink = 0;
let count = 0;

const LF = 0x0a;
const SPACE = 0x20;

/**
 * A hand-written parser of MSG ops: parses each chunk in place, keeping only
 * an unfinished op, copied to the front of its own buffer.
 */
class HandParser {
  #rest = new Uint8Array(CHUNK * 2);
  #restLength = 0;

  push(chunk: Uint8Array): void {
    let bytes = chunk;
    let end = chunk.length;
    if (this.#restLength > 0) {
      // Join the unfinished op with the new chunk: the only copy.
      const need = this.#restLength + chunk.length;
      if (need > this.#rest.length) {
        const grown = new Uint8Array(need * 2);
        grown.set(this.#rest.subarray(0, this.#restLength));
        this.#rest = grown;
      }
      this.#rest.set(chunk, this.#restLength);
      bytes = this.#rest;
      end = need;
    }
    const at = this.#parse(bytes, end);
    const left = end - at;
    if (bytes === this.#rest) this.#rest.copyWithin(0, at, end);
    else this.#rest.set(chunk.subarray(at, end));
    this.#restLength = left;
  }

  /** Handles every whole op in `bytes[0, end)`; returns where the unfinished one starts. */
  #parse(bytes: Uint8Array, end: number): number {
    let at = 0;
    while (at < end) {
      const lf = bytes.indexOf(LF, at);
      if (lf < 0 || lf >= end) return at;
      // "MSG <subject> <sid> <size>\r\n": the subject, then two numbers.
      let i = at + 4;
      while (bytes[i] !== SPACE) i++;
      let sid = 0;
      for (i++; bytes[i] !== SPACE; i++) sid = sid * 10 + bytes[i]! - 0x30;
      let size = 0;
      for (i++; i < lf - 1; i++) size = size * 10 + bytes[i]! - 0x30;
      const payloadStart = lf + 1;
      const next = payloadStart + size + 2;
      if (next > end) return at;
      sink += sid + size;
      count++;
      at = next;
    }
    return at;
  }
}

const handlers: NatsServerHandlers = {
  message(message) {
    sink += message.sid + message.payloadEnd - message.payloadStart;
    count++;
  },
  info() {},
  ping() {},
  pong() {},
  ok() {},
  error() {},
};

/** A ByteSource over the chunks: one chunk (or what fits) per read. */
function source(): ByteSource {
  let i = 0;
  let at = 0;
  return {
    read(p: Uint8Array): Promise<number | null> {
      if (i === input.length) return Promise.resolve(null);
      const chunk = input[i]!;
      const n = Math.min(p.length, chunk.length - at);
      p.set(chunk.subarray(at, at + n));
      at += n;
      if (at === chunk.length) {
        i++;
        at = 0;
      }
      return Promise.resolve(n);
    },
  };
}

const pool = new BufferPool({ bufferSize: 64 * 1024 + 4100, bufferCount: 2 });

Deno.bench({
  name: "hand-written MSG parser, in place",
  group: "nats-receive-32B",
  baseline: true,
  fn(b) {
    sink = count = 0;
    const parser = new HandParser();
    b.start();
    for (const chunk of input) parser.push(chunk);
    b.end();
    assert.equal(count, N);
    assert.equal(sink, N * (1 + PAYLOAD));
  },
});

Deno.bench({
  name: "NatsReceiver.push",
  group: "nats-receive-32B",
  fn(b) {
    sink = count = 0;
    const receiver = new NatsReceiver(pool, handlers);
    b.start();
    for (const chunk of input) receiver.push(chunk);
    receiver.end();
    b.end();
    assert.equal(count, N);
    assert.equal(sink, N * (1 + PAYLOAD));
    assert.equal(pool.stats().inUse, 0);
  },
});

Deno.bench({
  name: "NatsReceiver.read (into pool memory)",
  group: "nats-receive-32B",
  async fn(b) {
    sink = count = 0;
    const receiver = new NatsReceiver(pool, handlers);
    const from = source();
    b.start();
    await receiver.read(from);
    b.end();
    assert.equal(count, N);
    assert.equal(sink, N * (1 + PAYLOAD));
    assert.equal(pool.stats().inUse, 0);
  },
});
