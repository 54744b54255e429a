// Run by tests/runtimes_test.ts in a child process: bab in a runtime with no
// SharedArrayBuffer, as in a browser page that is not cross-origin isolated.
// The global goes before the library is loaded, so that loading it is
// covered too. Prints "ok <check>" or "FAIL <check>" and the error for each
// check; exits 1 if any failed.
import assert from "node:assert/strict";
import { type Check, readFlushed, runChecks } from "./_child_checks.ts";

delete (globalThis as { SharedArrayBuffer?: unknown }).SharedArrayBuffer;
assert.equal(typeof SharedArrayBuffer, "undefined", "SharedArrayBuffer is gone");
const bab: typeof import("../mod.ts") = await import("../mod.ts");
bab.BufferPool.defaultLeakDetection = "paranoid";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function take(pool: InstanceType<typeof bab.BufferPool>) {
  const buffer = pool.tryAcquire();
  assert.ok(buffer !== null, "expected a free buffer");
  return buffer;
}

async function poolAcquireRelease(): Promise<void> {
  const pool = new bab.BufferPool({ bufferSize: 64, bufferCount: 2, batchSize: 1 });
  assert.equal(pool.shared, false);
  const first = take(pool);
  const second = await pool.acquire();
  assert.equal(pool.tryAcquire(), null);
  const waiting = pool.acquire({ signal: AbortSignal.timeout(5000) });
  first.release();
  const third = await waiting;
  assert.equal(pool.stats().inUse, 2);
  second.release();
  third.release();
  assert.equal(pool.stats().inUse, 0);
  assert.equal(pool.stats().free, 2);
  assert.throws(() => first.release(), bab.ReleasedError);
}

function packets(): void {
  const pool = new bab.BufferPool({ bufferSize: 64, bufferCount: 2 });
  const buffer = take(pool);
  buffer.bytes.set(encoder.encode("hello, page"));
  const packet = buffer.intoPacket(0, 11);
  const copy = packet.clone();
  const tail = packet.subarray(7);
  packet.release();
  assert.equal(decoder.decode(tail.bytes), "page");
  assert.equal(decoder.decode(copy.bytes), "hello, page");
  // Sending needs shared memory: a TypeError that says so, not a ReferenceError.
  assert.throws(() => copy.send(), (error: unknown) => {
    assert.ok(error instanceof TypeError, String(error));
    assert.match(error.message, /without shared: true/);
    return true;
  });
  assert.throws(() => pool.sendBatch([copy]), TypeError);
  copy.release();
  tail[Symbol.dispose]();
  assert.equal(pool.stats().inUse, 0);
}

function sharingRefused(): void {
  const pool = new bab.BufferPool({ bufferSize: 64, bufferCount: 2 });
  assert.throws(() => pool.handle, TypeError);
  assert.throws(() => pool.detach(), TypeError);
  assert.throws(() => pool.workerId, TypeError);
  // A structured clone of a handle from elsewhere cannot be attached here.
  const handle = { block: new ArrayBuffer(4096) as unknown as SharedArrayBuffer };
  assert.throws(() => bab.BufferPool.attach(handle), bab.SharedMemoryUnavailableError);
  const flusher = new bab.WriteFlusher(pool);
  assert.throws(() => flusher.handle, TypeError);
  const control = new ArrayBuffer(4096) as unknown as SharedArrayBuffer;
  assert.throws(() => new bab.Writer(pool, { control }), (error: unknown) => {
    assert.ok(error instanceof TypeError, String(error));
    assert.match(error.message, /neither a WriteFlusher nor a WriteFlusher's handle/);
    return true;
  });
  flusher.close();
}

function sharedPoolError(): void {
  for (const options of [{}, { maxWorkers: 4 }]) {
    assert.throws(
      () => new bab.BufferPool({ bufferSize: 64, bufferCount: 2, shared: true, ...options }),
      (error: unknown) => {
        assert.ok(error instanceof bab.SharedMemoryUnavailableError, String(error));
        assert.equal(error.name, "SharedMemoryUnavailableError");
        assert.match(error.message, /^Cannot create a shared buffer pool: SharedArrayBuffer/);
        assert.match(error.message, /cross-origin isolated/);
        assert.match(error.message, /Cross-Origin-Opener-Policy: same-origin/);
        assert.match(error.message, /Cross-Origin-Embedder-Policy: require-corp/);
        assert.match(error.message, /without shared: true/);
        return true;
      },
    );
  }
}

async function writerToReadable(): Promise<void> {
  const pool = new bab.BufferPool({ bufferSize: 32, bufferCount: 3 });
  const flusher = new bab.WriteFlusher(pool);
  const writer = new bab.Writer(pool, flusher, { codec: bab.lengthPrefix(2) });
  const messages = ["one", "two", "a message of twenty-six b", "four"];
  const reading = readFlushed(flusher.readable);
  // More bytes than the pool holds at once: the writer waits for flushed buffers.
  for (let round = 0; round < 3; round++) {
    for (const text of messages) await writer.writeString(text);
  }
  writer.close();
  flusher.close();
  const expected: number[] = [];
  for (let round = 0; round < 3; round++) {
    for (const text of messages) expected.push(0, text.length, ...encoder.encode(text));
  }
  assert.deepEqual(await reading, expected);
  assert.equal(pool.stats().inUse, 0);
}

async function framers(): Promise<void> {
  const pool = new bab.BufferPool({ bufferSize: 16, bufferCount: 4 });
  const frames = ["AB", "", "C", "a longer frame"];
  const codecs = [
    [bab.lengthPrefix(2), frames.flatMap((f) => [0, f.length, ...encoder.encode(f)])],
    [bab.varintPrefix(), frames.flatMap((f) => [f.length, ...encoder.encode(f)])],
    [bab.delimiter("\n"), frames.flatMap((f) => [...encoder.encode(f), 0x0a])],
  ] as const;
  for (const [codec, stream] of codecs) {
    // Chunks of 3 bytes cut headers, payloads and delimiters apart.
    const chunks: Uint8Array[] = [];
    for (let at = 0; at < stream.length; at += 3) {
      chunks.push(new Uint8Array(stream.slice(at, at + 3)));
    }
    const seen: string[] = [];
    for await (
      const packet of ReadableStream.from(chunks).pipeThrough(new bab.Framer(pool, { codec }))
    ) {
      seen.push(decoder.decode(packet.bytes));
      packet.release();
    }
    assert.deepEqual(seen, frames, codec.name);

    const cutter = new bab.FrameCutter(pool, { codec });
    const cut: InstanceType<typeof bab.Packet>[] = [];
    for (const chunk of chunks) cutter.push(chunk, cut);
    cutter.end(cut);
    assert.deepEqual(cut.map((p) => decoder.decode(p.bytes)), frames, codec.name);
    for (const packet of cut) packet.release();
    cutter.close();
  }
  const fixed = new bab.FrameCutter(pool, { codec: bab.fixedSize(2) });
  const pairs: InstanceType<typeof bab.Packet>[] = [];
  fixed.push(encoder.encode("abcde"), pairs);
  assert.deepEqual(pairs.map((p) => decoder.decode(p.bytes)), ["ab", "cd"]);
  for (const packet of pairs) packet.release();
  assert.throws(() => fixed.end(pairs), bab.TruncatedError);
  fixed.close();
  assert.equal(pool.stats().inUse, 0);
}

async function dispose(): Promise<void> {
  const pool = new bab.BufferPool({ bufferSize: 64, bufferCount: 1 });
  const held = take(pool);
  const waiting = pool.acquire();
  pool[Symbol.dispose]();
  await assert.rejects(waiting, bab.DetachedError);
  held.release();
  assert.equal(pool.stats().inUse, 0);
}

const checks: Check[] = [
  ["pool: acquire, wait and release on an ArrayBuffer", poolAcquireRelease],
  ["packets: clone, subarray, dispose; send refused with a TypeError", packets],
  ["handle, detach, attach, flusher handle and writer of a handle refused", sharingRefused],
  ["shared: true throws SharedMemoryUnavailableError saying how to get it", sharedPoolError],
  ["Writer to WriteFlusher to readable, waiting for buffers", writerToReadable],
  ["Framer and FrameCutter with each codec", framers],
  ["Symbol.dispose fails a waiter and takes the buffer back", dispose],
];
await runChecks(checks);
