// The smoke checks of the bundled library, shared by every runtime it is
// tried on: Node and Bun (tools/node_smoke.mjs) and Chromium pages
// (tools/browser_smoke.ts). Plain JavaScript with no imports, so that a
// browser loads it as it is. Each check exercises one part through the
// public API and throws on anything unexpected.

/** The runtime this runs on, with its version, e.g. "Bun 1.4.5". */
export function runtimeName() {
  const bun = globalThis.Bun;
  if (bun !== undefined) return `Bun ${bun.version}`;
  const deno = globalThis.Deno;
  if (deno !== undefined) return `Deno ${deno.version.deno}`;
  const node = globalThis.process?.versions?.node;
  if (node !== undefined) return `Node v${node}`;
  const agent = globalThis.navigator?.userAgent ?? "an unknown runtime";
  const chrome = /(?:Headless)?Chrom(?:e|ium)\/([\d.]+)/.exec(agent);
  return chrome === null ? agent : `Chromium ${chrome[1]}`;
}

/**
 * Runs checks in order, printing "ok   <name>" or "FAIL <name>" and the
 * error for each.
 *
 * @param checks [name, function] pairs, from smokeChecks.
 * @param print Takes each line, and whether it reports a failure.
 * @returns How many checks failed.
 */
export async function runChecks(checks, print) {
  let failures = 0;
  for (const [name, check] of checks) {
    try {
      await check();
      print(`ok   ${name}`, false);
    } catch (error) {
      failures++;
      print(`FAIL ${name}\n${error?.stack ?? error}`, true);
    }
  }
  return failures;
}

/**
 * The checks for this runtime: the shared pool's where `SharedArrayBuffer`
 * exists, its absence's where it does not, and one with a worker when a
 * way to start one is given.
 *
 * @param bab The bundled library's module.
 * @param options `worker`: `{ create, bundle }`, a function that starts the
 * module worker tools/smoke_worker.mjs, and the URL it imports the bundle
 * from.
 * @returns [name, function] pairs for runChecks.
 */
export function smokeChecks(bab, options = {}) {
  const shared = typeof SharedArrayBuffer === "function";
  const checks = [
    ["BufferPool: acquire, release and stats", () => poolAcquireRelease(bab)],
    ["Packet: clone, subarray, release and Symbol.dispose", () => packets(bab)],
    shared
      ? ["shared pool: attach in the same thread, send, receive and wait", () => sharedPool(bab)]
      : [
        "no SharedArrayBuffer: shared: true fails saying how to isolate the page",
        () => sharedMemoryUnavailable(bab),
      ],
    ["Writer and WriteFlusher: framed messages read from flusher.readable", () => writer(bab)],
    ["codecs: decode frames of each codec", () => codecs(bab)],
    ["Framer and BatchFramer: frames across chunks and buffers, truncation", () => framers(bab)],
    ["BufferPool[Symbol.dispose]: waiters fail, held buffers come back", () => dispose(bab)],
  ];
  if (options.worker !== undefined) {
    checks.push([
      "worker: attaches, writes to this thread's flusher, receives a batch",
      () => workerBus(bab, options.worker),
    ]);
  }
  return checks;
}

// -- Assertions: enough for these checks, with no dependency. --

function show(value) {
  return typeof value === "string" ? JSON.stringify(value) : String(value);
}

function ok(value, message) {
  if (!value) throw new Error(message);
}

function equal(actual, expected, message) {
  if (!Object.is(actual, expected)) {
    throw new Error(`${message}: expected ${show(expected)}, got ${show(actual)}`);
  }
}

function sameItems(actual, expected, message) {
  equal(JSON.stringify(actual), JSON.stringify(expected), message);
}

function throws(fn, ErrorClass, message) {
  try {
    fn();
  } catch (error) {
    if (error instanceof ErrorClass) return error;
    throw new Error(`${message}: expected a ${ErrorClass.name}, got ${error?.stack ?? error}`);
  }
  throw new Error(`${message}: expected a ${ErrorClass.name}, nothing was thrown`);
}

async function rejects(promise, ErrorClass, message) {
  try {
    await promise;
  } catch (error) {
    if (error instanceof ErrorClass) return error;
    throw new Error(`${message}: expected a ${ErrorClass.name}, got ${error?.stack ?? error}`);
  }
  throw new Error(`${message}: expected a ${ErrorClass.name}, it resolved`);
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A stream of `chunks`: ReadableStream.from, which Chromium lacks. */
function streamOf(chunks) {
  let next = 0;
  return new ReadableStream({
    pull(controller) {
      if (next < chunks.length) controller.enqueue(chunks[next++]);
      else controller.close();
    },
  });
}

// -- The checks. --

async function poolAcquireRelease(bab) {
  const pool = new bab.BufferPool({ bufferSize: 256, bufferCount: 8, batchSize: 2 });
  const first = pool.tryAcquire();
  ok(first !== null, "tryAcquire on a fresh pool gives a buffer");
  equal(first.bytes.length, 256, "buffer length");
  first.bytes[0] = 7;
  const second = await pool.acquire();
  equal(pool.stats().inUse, 2, "in use after two acquires");
  first.release();
  second.release();
  const stats = pool.stats();
  equal(stats.inUse, 0, "in use after release");
  equal(stats.free, 8, "free after release");
  equal(stats.bufferCount, 8, "bufferCount");
  throws(() => first.release(), bab.ReleasedError, "a second release");
}

function packets(bab) {
  const pool = new bab.BufferPool({ bufferSize: 64, bufferCount: 2 });
  const buffer = pool.tryAcquire();
  buffer.bytes.set(encoder.encode("hello, smoke"));
  const packet = buffer.intoPacket(0, 12);
  const copy = packet.clone();
  const tail = packet.subarray(7);
  equal(decoder.decode(tail.bytes), "smoke", "the subarray's bytes");
  packet.release();
  equal(pool.stats().inUse, 1, "the clone and the subarray keep the buffer");
  equal(decoder.decode(copy.bytes), "hello, smoke", "the clone's bytes");
  copy.release();
  equal(typeof Symbol.dispose, "symbol", "this runtime has Symbol.dispose");
  tail[Symbol.dispose]();
  equal(tail.released, true, "disposed");
  equal(pool.stats().inUse, 0, "in use after the last release");
  throws(() => copy.bytes, bab.ReleasedError, "reading a released packet");
}

async function sharedPool(bab) {
  const pool = new bab.BufferPool({ bufferSize: 128, bufferCount: 16, shared: true });
  const other = bab.BufferPool.attach(pool.handle);
  try {
    equal(pool.stats().workers, 2, "workers");
    const buffer = pool.tryAcquire();
    buffer.bytes.set([1, 2, 3, 4]);
    const sent = buffer.intoPacket(0, 4).send();
    const received = other.receive(structuredClone(sent));
    sameItems([...received.bytes], [1, 2, 3, 4], "received bytes");
    throws(() => other.receive(sent), bab.ReleasedError, "a SendPacket is received once");
    received.release();

    const batch = [0, 1, 2].map((i) => {
      const b = pool.tryAcquire();
      b.bytes[0] = i;
      return b.intoPacket(0, 1);
    });
    const arrived = other.receiveBatch(structuredClone(pool.sendBatch(batch)));
    sameItems(arrived.map((p) => p.bytes[0]), [0, 1, 2], "a batch in order");
    for (const p of arrived) p.release();
    equal(pool.stats().inUse, 0, "in use after the batch");

    // Waiting across pool objects goes through Atomics.waitAsync.
    const all = [];
    for (let b = other.tryAcquire(); b !== null; b = other.tryAcquire()) all.push(b);
    equal(all.length, 16, "every buffer taken");
    const waiting = pool.acquire({ signal: AbortSignal.timeout(5000) });
    setTimeout(() => all.pop().release(), 10);
    (await waiting).release();
    for (const b of all) b.release();
    equal(pool.stats().inUse, 0, "in use at the end");
  } finally {
    other.detach();
    pool.detach();
  }
}

function sharedMemoryUnavailable(bab) {
  equal(typeof SharedArrayBuffer, "undefined", "SharedArrayBuffer");
  const error = throws(
    () => new bab.BufferPool({ bufferSize: 64, bufferCount: 2, shared: true }),
    bab.SharedMemoryUnavailableError,
    "a shared pool without SharedArrayBuffer",
  );
  for (const words of ["cross-origin isolated", "Cross-Origin-Opener-Policy: same-origin"]) {
    ok(error.message.includes(words), `the message names ${words}: ${error.message}`);
  }
  const pool = new bab.BufferPool({ bufferSize: 64, bufferCount: 2 });
  throws(() => pool.handle, TypeError, "the handle of a pool that is not shared");
  pool.tryAcquire().release();
  equal(pool.stats().inUse, 0, "in use");
}

async function writer(bab) {
  const pool = new bab.BufferPool({ bufferSize: 64, bufferCount: 8 });
  const flusher = new bab.WriteFlusher(pool);
  const writer = new bab.Writer(pool, flusher, { codec: bab.lengthPrefix(4) });
  const messages = ["alpha", "beta", "a message long enough to need a buffer of its own"];
  for (const text of messages) ok(writer.tryWriteString(text), `room for ${text}`);
  await writer.write(new Uint8Array([9, 8, 7]));
  writer.close();
  flusher.close();

  const received = [];
  for await (const batch of flusher.readable) {
    for (const region of batch) {
      received.push(...region.bytes);
      region.release();
    }
  }
  const expected = [];
  for (const payload of [...messages.map((m) => encoder.encode(m)), new Uint8Array([9, 8, 7])]) {
    expected.push(0, 0, 0, payload.length, ...payload);
  }
  sameItems(received, expected, "the flushed bytes");
  equal(pool.stats().inUse, 0, "every region went back to the pool");
}

function codecs(bab) {
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
    sameItems(payloads, [0x41, 0x42, 0x43], codec.name);
    equal(start, bytes.length, `${codec.name} consumed every frame`);
  }
  throws(
    () => bab.lengthPrefix(1).decode(new Uint8Array([200]), 0, 1, 100, out),
    bab.FrameError,
    "a frame over the limit",
  );
}

async function framers(bab) {
  // 44-byte buffers: the 41-byte last frame cannot follow the first three in one.
  const pool = new bab.BufferPool({ bufferSize: 44, bufferCount: 4 });
  const codec = bab.lengthPrefix(1);
  const frames = [[1, 2, 3], [], [4], new Array(40).fill(5)];
  const stream = frames.flatMap((f) => [f.length, ...f]);
  // Three chunks cutting frames and a buffer boundary apart.
  const chunks = () =>
    [stream.slice(0, 3), stream.slice(3, 30), stream.slice(30)].map((c) => new Uint8Array(c));
  const batches = [];
  for await (
    const batch of streamOf(chunks()).pipeThrough(new bab.BatchFramer(pool, { codec }))
  ) {
    for (const packet of batch) {
      batches.push([...packet.bytes]);
      packet.release();
    }
  }
  sameItems(batches, frames, "BatchFramer's frames");
  const single = [];
  for await (
    const packet of streamOf(chunks()).pipeThrough(new bab.Framer(pool, { codec }))
  ) {
    single.push(packet.length);
    packet.release();
  }
  sameItems(single, frames.map((f) => f.length), "Framer's frame lengths");
  const truncated = streamOf([new Uint8Array([5, 1])]).pipeThrough(
    new bab.Framer(pool, { codec }),
  );
  await rejects(
    (async () => {
      for await (const packet of truncated) packet.release();
    })(),
    bab.TruncatedError,
    "a stream that stops inside a frame",
  );
  equal(pool.stats().inUse, 0, "every staging buffer went back to the pool");
}

async function dispose(bab) {
  const pool = new bab.BufferPool({ bufferSize: 64, bufferCount: 1 });
  const held = pool.tryAcquire();
  const waiting = pool.acquire();
  pool[Symbol.dispose]();
  await rejects(waiting, bab.DetachedError, "an acquire waiting at the dispose");
  throws(() => pool.tryAcquire(), bab.DetachedError, "an acquire after the dispose");
  held.bytes[0] = 1;
  held.release();
  equal(pool.stats().inUse, 0, "in use after the held buffer's release");
}

/**
 * A worker attaches to a shared pool, writes framed messages to a flusher
 * here (waiting for buffers that this thread releases as it reads), and
 * receives a batch of packets sent from here.
 */
async function workerBus(bab, { create, bundle }) {
  const count = 200;
  const pool = new bab.BufferPool({ bufferSize: 64, bufferCount: 8, batchSize: 2, shared: true });
  const flusher = new bab.WriteFlusher(pool);
  const sent = pool.sendBatch([1, 2, 3].map((i) => {
    const buffer = pool.tryAcquire();
    buffer.bytes[0] = i;
    return buffer.intoPacket(0, 1);
  }));
  const worker = create();
  try {
    const done = new Promise((resolve, reject) => {
      worker.onmessage = (event) => {
        if (event.data.error !== undefined) reject(new Error(`in the worker: ${event.data.error}`));
        else resolve(event.data);
      };
      worker.onerror = (event) => {
        event.preventDefault?.();
        reject(new Error(`the worker failed: ${event.message ?? event}`));
      };
    });
    const reading = (async () => {
      const bytes = [];
      for await (const batch of flusher.readable) {
        for (const region of batch) {
          bytes.push(...region.bytes);
          region.release();
        }
      }
      return bytes;
    })();
    worker.postMessage({
      bundle,
      pool: pool.handle,
      flusher: flusher.handle,
      count,
      sent,
    });
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error("the worker did not finish within 20 s")), 20_000);
    });
    const result = await Promise.race([done, timeout]).finally(() => clearTimeout(timer));
    flusher.close();
    const bytes = await reading;
    const texts = [];
    for (let at = 0; at < bytes.length;) {
      const length = bytes[at] * 256 + bytes[at + 1];
      texts.push(decoder.decode(new Uint8Array(bytes.slice(at + 2, at + 2 + length))));
      at += 2 + length;
    }
    equal(texts.length, count, "messages from the worker");
    sameItems(texts, Array.from({ length: count }, (_, i) => `message ${i}`), "their text");
    equal(result.sum, 6, "the sum of the bytes the worker received");
    equal(pool.stats().workers, 1, "the worker detached");
    equal(pool.stats().inUse, 0, "every buffer back in the pool");
  } finally {
    worker.terminate();
    pool.detach();
  }
}
