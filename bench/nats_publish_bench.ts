// NATS publishing, encoding only: 32-byte payloads to one subject, encoded
// as `PUB bench.subject 32\r\n<payload>\r\n` into memory that a socket write
// would send, with no socket. Run: deno bench -A bench/nats_publish_bench.ts
//
// - bab: NatsPublisher.tryPublish through a Writer (manual flush every
//   1,000 messages), the flusher's regions read and released in this
//   thread; the same through a SharedWriter, and the reserve-and-fill path.
// - hand-written: the ceiling, a competent encoder that writes the same
//   frames into one 64 KiB Uint8Array with the subject's bytes cached and
//   the length written as digits, "sending" the array when it is full.
// - nats.js: the npm client's own publish (npm:nats@2.29.3's
//   ProtocolHandler.publish: a control-line string encoded per message, the
//   pieces queued and concatenated once per 32 KiB or microtask), with its
//   transport replaced by one that counts bytes.
//
// Every case sends the same messages per iteration, so the per-iteration
// times compare per message; `deno bench` prints each case's ratio to the
// hand-written baseline. Every bab iteration ends once the consumer has
// released every byte it flushed, and checks (outside the timing) that the
// pool holds only the writer's current buffer.
import assert from "node:assert/strict";
import { BufferPool, type FlushRegion, SharedWriter, WriteFlusher, Writer } from "../mod.ts";
import { NatsPublisher, NatsSubject } from "../nats.ts";
// @ts-types="npm:nats@2.29.3/lib/nats-base-client/protocol.d.ts"
import { ProtocolHandler } from "npm:nats@2.29.3/lib/nats-base-client/protocol.js";

/** Messages per iteration: 560,000 bytes of frames, about nine 64 KiB buffers. */
const N = 10_000;
const SIZE = 32;
const FLUSH_EVERY = 1000;
const SUBJECT = "bench.subject";
/** `PUB bench.subject 32\r\n`, the payload, CRLF. */
const FRAME = 4 + SUBJECT.length + 1 + 2 + 2 + SIZE + 2;

const payload = new Uint8Array(SIZE);
for (let i = 0; i < SIZE; i++) payload[i] = i;
let sink = 0;

// -- bab --

/** A pool, a flusher, a writer and its publisher, and a reader of the flusher. */
class Rig {
  readonly pool: BufferPool;
  readonly flusher: WriteFlusher;
  readonly writer: Writer | SharedWriter;
  readonly publisher: NatsPublisher;
  readonly reader: ReadableStreamDefaultReader<FlushRegion[]>;
  readonly subject = new NatsSubject(SUBJECT);
  flushed = 0;
  released = 0;

  constructor(shared: boolean) {
    this.pool = new BufferPool({ bufferSize: 64 * 1024, bufferCount: 64, shared });
    this.flusher = new WriteFlusher(this.pool);
    this.reader = this.flusher.readable.getReader();
    this.writer = shared
      ? new SharedWriter(this.pool, this.flusher, { flush: "manual" })
      : new Writer(this.pool, this.flusher, { flush: "manual" });
    this.publisher = new NatsPublisher(this.writer);
  }

  /** Reads and releases regions until every flushed byte came back. */
  async drain(): Promise<void> {
    while (this.released < this.flushed) {
      const result = await this.reader.read();
      if (result.done) throw new Error("the flusher ended while bytes were outstanding");
      for (const region of result.value) {
        this.released += region.length;
        region.release();
      }
    }
  }

  check(): void {
    assert.equal(this.released, this.flushed, "bytes flushed but never delivered");
    assert.ok(this.pool.stats().inUse <= 1, "buffers not back in the pool");
  }
}

/** tryPublish, manual flush every FLUSH_EVERY messages; no room means drain and retry. */
async function tryPublishLoop(rig: Rig): Promise<void> {
  const { publisher, subject } = rig;
  let since = 0;
  for (let i = 0; i < N; i++) {
    payload[0] = i;
    if (!publisher.tryPublish(subject, payload)) {
      rig.flushed += since * FRAME;
      since = 0;
      await rig.drain();
      i--;
      continue;
    }
    since++;
    if (i % FLUSH_EVERY === FLUSH_EVERY - 1) publisher.flush();
  }
  publisher.flush();
  rig.flushed += since * FRAME;
  await rig.drain();
}

/** tryReserve, payload.set, commit: the zero-copy path, one reservation object per message. */
async function tryReserveLoop(rig: Rig): Promise<void> {
  const { publisher, subject } = rig;
  let since = 0;
  for (let i = 0; i < N; i++) {
    payload[0] = i;
    const reservation = publisher.tryReserve(subject, SIZE);
    if (reservation === null) {
      rig.flushed += since * FRAME;
      since = 0;
      await rig.drain();
      i--;
      continue;
    }
    reservation.payload.set(payload);
    reservation.commit();
    since++;
    if (i % FLUSH_EVERY === FLUSH_EVERY - 1) publisher.flush();
  }
  publisher.flush();
  rig.flushed += since * FRAME;
  await rig.drain();
}

const writerRig = new Rig(false);
const sharedRig = new Rig(true);
const reserveRig = new Rig(false);

// -- hand-written --

/** The ceiling: frames written into one array with cached subject bytes, sent when full. */
class HandEncoder {
  readonly out = new Uint8Array(64 * 1024);
  readonly prefix = new TextEncoder().encode(`PUB ${SUBJECT} `);
  at = 0;
  sent = 0;

  publish(data: Uint8Array): void {
    const prefix = this.prefix;
    const length = data.length;
    const digits = length < 10 ? 1 : length < 100 ? 2 : length < 1000 ? 3 : String(length).length;
    const frame = prefix.length + digits + 4 + length;
    if (this.at + frame > this.out.length) this.send();
    const out = this.out;
    let at = this.at;
    for (let i = 0; i < prefix.length; i++) out[at + i] = prefix[i]!;
    at += prefix.length + digits;
    let n = length;
    for (let i = at - 1; i >= at - digits; i--) {
      out[i] = 48 + n % 10;
      n = (n / 10) | 0;
    }
    out[at] = 13;
    out[at + 1] = 10;
    out.set(data, at + 2);
    at += 2 + length;
    out[at] = 13;
    out[at + 1] = 10;
    this.at = at + 2;
  }

  send(): void {
    sink ^= this.out[this.at - 1]!;
    this.sent += this.at;
    this.at = 0;
  }
}

const hand = new HandEncoder();

// -- nats.js --

/** The npm client's protocol handler, its transport swapped for a byte counter. */
function npmHandler(): { handler: ProtocolHandler; sent: () => number } {
  let sent = 0;
  const handler = new ProtocolHandler({ servers: "127.0.0.1:4222" }, { publish() {} });
  const state = handler as unknown as {
    infoReceived: boolean;
    connected: boolean;
    transport: { send(bytes: Uint8Array): void };
  };
  state.infoReceived = true;
  state.connected = true;
  state.transport = {
    send(bytes: Uint8Array) {
      sent += bytes.length;
      sink ^= bytes[bytes.length - 1]!;
    },
  };
  return { handler, sent: () => sent };
}

const npm = npmHandler();

// -- the group --

const group = "nats-publish-32B";

Deno.bench({
  name: "hand-written encoder, cached subject bytes",
  group,
  baseline: true,
  fn() {
    for (let i = 0; i < N; i++) {
      payload[0] = i;
      hand.publish(payload);
    }
    hand.send();
  },
});

Deno.bench({
  name: "bab NatsPublisher.tryPublish, Writer",
  group,
  async fn(b) {
    b.start();
    await tryPublishLoop(writerRig);
    b.end();
    writerRig.check();
  },
});

Deno.bench({
  name: "bab NatsPublisher.tryPublish, SharedWriter",
  group,
  async fn(b) {
    b.start();
    await tryPublishLoop(sharedRig);
    b.end();
    sharedRig.check();
  },
});

Deno.bench({
  name: "bab NatsPublisher.tryReserve + commit, Writer",
  group,
  async fn(b) {
    b.start();
    await tryReserveLoop(reserveRig);
    b.end();
    reserveRig.check();
  },
});

Deno.bench({
  name: "nats.js 2.29.3 publish (its encoding, no socket)",
  group,
  async fn() {
    const before = npm.sent();
    for (let i = 0; i < N; i++) {
      payload[0] = i;
      npm.handler.publish(SUBJECT, payload);
    }
    await Promise.resolve(); // its microtask flush sends the rest
    assert.equal(npm.sent() - before, N * FRAME);
  },
});

globalThis.addEventListener("unload", () => {
  if (sink === 0.5) console.log(sink, hand.sent);
});
