// Smoke test of the bundled library on Node: `node tools/node_smoke.mjs dist/bab.js`
// (the bundle comes from `deno bundle`, see the node:smoke task). Plain
// JavaScript that Node runs as is. Each check exercises one part through its
// public API; any failure names the check and exits non-zero.
import assert from "node:assert/strict";
import path from "node:path";
import process from "node:process";
import { pathToFileURL } from "node:url";

const MIN_NODE = 20;
/** A check that has not finished by then is taken as hung. */
const TIMEOUT_MS = 30_000;
/** How long the process may linger after the last check before that counts as a leak. */
const EXIT_GRACE_MS = 5_000;

const bundle = process.argv[2];
if (bundle === undefined) {
  console.error("Usage: node tools/node_smoke.mjs <bundle.js>");
  process.exit(2);
}
const major = Number(process.versions.node.split(".")[0]);
if (major < MIN_NODE) {
  console.error(`bab needs Node ${MIN_NODE} or later; this is Node ${process.versions.node}`);
  process.exit(1);
}

const bab = await import(pathToFileURL(path.resolve(bundle)).href);
const encoder = new TextEncoder();

async function poolAcquireRelease() {
  const pool = new bab.BufferPool({ bufferSize: 256, bufferCount: 8, batchSize: 2 });
  const first = pool.tryAcquire();
  assert.ok(first !== null, "tryAcquire on a fresh pool gives a buffer");
  assert.equal(first.bytes.length, 256);
  first.bytes[0] = 7;
  const second = await pool.acquire();
  assert.equal(pool.stats().inUse, 2);
  first.release();
  second.release();
  const stats = pool.stats();
  assert.equal(stats.inUse, 0);
  assert.equal(stats.free, 8);
  assert.equal(stats.bufferCount, 8);
  assert.throws(() => first.release(), bab.ReleasedError, "a second release throws");
}

function packets() {
  const pool = new bab.BufferPool({ bufferSize: 64, bufferCount: 2 });
  const buffer = pool.tryAcquire();
  buffer.bytes.set(encoder.encode("hello, node"));
  const packet = buffer.intoPacket(0, 11);
  const copy = packet.clone();
  const tail = packet.subarray(7);
  assert.deepEqual([...tail.bytes], [...encoder.encode("node")]);
  packet.release();
  assert.equal(pool.stats().inUse, 1, "the clone and the subarray keep the buffer");
  assert.equal(new TextDecoder().decode(copy.bytes), "hello, node");
  copy.release();
  assert.equal(typeof Symbol.dispose, "symbol", "this Node has Symbol.dispose");
  tail[Symbol.dispose]();
  assert.equal(tail.released, true);
  assert.equal(pool.stats().inUse, 0);
  assert.throws(() => copy.bytes, bab.ReleasedError, "a released packet cannot be read");
}

async function sharedPool() {
  const pool = new bab.BufferPool({ bufferSize: 128, bufferCount: 16, shared: true });
  const other = bab.BufferPool.attach(pool.handle);
  try {
    assert.equal(pool.stats().workers, 2);
    const buffer = pool.tryAcquire();
    buffer.bytes.set([1, 2, 3, 4]);
    const sent = buffer.intoPacket(0, 4).send();
    const received = other.receive(structuredClone(sent));
    assert.deepEqual([...received.bytes], [1, 2, 3, 4]);
    assert.throws(() => other.receive(sent), bab.ReleasedError, "a SendPacket is received once");
    received.release();

    const batch = [0, 1, 2].map((i) => {
      const b = pool.tryAcquire();
      b.bytes[0] = i;
      return b.intoPacket(0, 1);
    });
    const arrived = other.receiveBatch(structuredClone(pool.sendBatch(batch)));
    assert.deepEqual(arrived.map((p) => p.bytes[0]), [0, 1, 2]);
    for (const p of arrived) p.release();
    assert.equal(pool.stats().inUse, 0);

    // Waiting across pool objects goes through Atomics.waitAsync.
    const all = [];
    for (let b = other.tryAcquire(); b !== null; b = other.tryAcquire()) all.push(b);
    assert.equal(all.length, 16);
    const waiting = pool.acquire({ signal: AbortSignal.timeout(5000) });
    setTimeout(() => all.pop().release(), 10);
    (await waiting).release();
    for (const b of all) b.release();
    assert.equal(pool.stats().inUse, 0);
  } finally {
    other.detach();
    pool.detach();
  }
}

async function writerAndFlusher() {
  const pool = new bab.BufferPool({ bufferSize: 64, bufferCount: 8 });
  const flusher = new bab.WriteFlusher(pool);
  const writer = new bab.Writer(pool, flusher, { codec: bab.lengthPrefix(4) });
  const messages = ["alpha", "beta", "a message long enough to need a buffer of its own"];
  for (const text of messages) assert.ok(writer.tryWriteString(text), `room for ${text}`);
  await writer.write(new Uint8Array([9, 8, 7]));
  writer.close();
  flusher.close();

  const received = [];
  const reader = flusher.readable.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    for (const region of value) {
      received.push(...region.bytes);
      region.release();
    }
  }
  const expected = [];
  for (const payload of [...messages.map((m) => encoder.encode(m)), new Uint8Array([9, 8, 7])]) {
    expected.push(0, 0, 0, payload.length, ...payload);
  }
  assert.deepEqual(received, expected);
  assert.equal(pool.stats().inUse, 0, "every region went back to the pool");
}

function codecs() {
  const out = new bab.FrameBounds();
  // Frames of "AB" then "C" (fixedSize: of "A", "B", "C").
  const cases = [
    [bab.lengthPrefix(2), [0, 2, 0x41, 0x42, 0, 1, 0x43]],
    [bab.varintPrefix(), [2, 0x41, 0x42, 1, 0x43]],
    [bab.delimiter("\n"), [0x41, 0x42, 0x0a, 0x43, 0x0a]],
    [bab.fixedSize(1), [0x41, 0x42, 0x43]],
  ];
  for (const [codec, input] of cases) {
    const bytes = new Uint8Array(input);
    const payloads = [];
    let start = 0;
    while (codec.decode(bytes, start, bytes.length, 100, out)) {
      payloads.push(...bytes.subarray(out.payloadStart, out.payloadEnd));
      start = out.frameEnd;
    }
    assert.deepEqual(payloads, [0x41, 0x42, 0x43], codec.name);
    assert.equal(start, bytes.length, `${codec.name} consumed every frame`);
  }
  const big = bab.lengthPrefix(1);
  assert.throws(() => big.decode(new Uint8Array([200]), 0, 1, 100, out), bab.FrameError);
}

async function framers() {
  // 44-byte buffers: the 41-byte last frame cannot follow the first three in one.
  const pool = new bab.BufferPool({ bufferSize: 44, bufferCount: 4 });
  const codec = bab.lengthPrefix(1);
  const frames = [[1, 2, 3], [], [4], new Array(40).fill(5)];
  const stream = frames.flatMap((f) => [f.length, ...f]);
  // Three chunks cutting frames and a buffer boundary apart.
  const chunks = [stream.slice(0, 3), stream.slice(3, 30), stream.slice(30)].map((c) =>
    new Uint8Array(c)
  );
  const batches = [];
  for await (
    const batch of ReadableStream.from(chunks).pipeThrough(new bab.BatchFramer(pool, { codec }))
  ) {
    for (const packet of batch) {
      batches.push([...packet.bytes]);
      packet.release();
    }
  }
  assert.deepEqual(batches, frames);
  const single = [];
  for await (
    const packet of ReadableStream.from(chunks).pipeThrough(new bab.Framer(pool, { codec }))
  ) {
    single.push(packet.length);
    packet.release();
  }
  assert.deepEqual(single, frames.map((f) => f.length));
  const truncated = ReadableStream.from([new Uint8Array([5, 1])]).pipeThrough(
    new bab.Framer(pool, { codec }),
  );
  await assert.rejects(async () => {
    for await (const packet of truncated) packet.release();
  }, bab.TruncatedError);
  assert.equal(pool.stats().inUse, 0, "every staging buffer went back to the pool");
}

// The checks, in order.
const checks = [
  ["BufferPool: acquire, release and stats", poolAcquireRelease],
  ["Packet: clone, subarray, release and Symbol.dispose", packets],
  ["shared pool: attach in the same thread, send, receive and wait", sharedPool],
  ["Writer and WriteFlusher: framed messages read from flusher.readable", writerAndFlusher],
  ["codecs: decode frames of each codec", codecs],
  ["Framer and BatchFramer: frames across chunks and buffers, truncation", framers],
];

const watchdog = setTimeout(() => {
  console.error(`FAIL: a check did not finish within ${TIMEOUT_MS} ms`);
  process.exit(1);
}, TIMEOUT_MS);
let failures = 0;
for (const [name, check] of checks) {
  try {
    await check();
    console.log(`ok   ${name}`);
  } catch (error) {
    failures++;
    console.error(`FAIL ${name}\n${error?.stack ?? error}`);
  }
}
clearTimeout(watchdog);
console.log(
  `${checks.length - failures} of ${checks.length} checks passed on Node ${process.version}`,
);
if (failures > 0) process.exit(1);
// Nothing of bab's may keep the process alive once everything is released and closed.
setTimeout(() => {
  console.error(`FAIL: the process is still running ${EXIT_GRACE_MS} ms after the last check`);
  process.exit(1);
}, EXIT_GRACE_MS).unref();
