// bab where SharedArrayBuffer is missing (a browser page that is not
// cross-origin isolated), and disposing pool objects with `using`.
import assert from "node:assert/strict";
import { BufferPool, DetachedError, type PooledBuffer, WriteFlusher, Writer } from "../mod.ts";
import { assertAllFree, take, Tracked } from "./_helpers.ts";

/**
 * Runs a script of checks in a child process, with one step per check it
 * reports ("ok <check>" or "FAIL <check>" and the error), so that a failure
 * names its check.
 */
async function runChecksScript(t: Deno.TestContext, script: string, checks: number) {
  const path = new URL(script, import.meta.url).pathname;
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", path],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const out = new TextDecoder().decode(stdout);
  const err = new TextDecoder().decode(stderr);
  const results = out.split(/^(?=ok |FAIL )/m).filter((part) => part.trim() !== "");
  assert.equal(
    results.length,
    checks,
    `expected ${checks} checks, the child printed:\n${out}\n${err}`,
  );
  for (const result of results) {
    const [line = "", ...rest] = result.split("\n");
    await t.step(line.replace(/^(ok|FAIL) /, ""), () => {
      assert.ok(line.startsWith("ok "), `${line}\n${rest.join("\n")}`);
    });
  }
  assert.equal(code, 0, `the child exited ${code}:\n${out}\n${err}`);
}

Deno.test("without SharedArrayBuffer: every part that needs no sharing works, sharing fails clearly", async (t) => {
  await runChecksScript(t, "./_without_shared_memory.ts", 7);
});

Deno.test("where TextEncoder refuses shared views (Chromium): writers and flusher failures still work", async (t) => {
  await runChecksScript(t, "./_refusing_shared_views.ts", 2);
});

Deno.test("dispose of a pool of one thread: its cache goes back, held buffers stay valid", () => {
  const pool = new BufferPool({ bufferSize: 64, bufferCount: 4, batchSize: 1 });
  const held = [take(pool), take(pool), take(pool)];
  take(pool).release();
  assert.equal(pool.stats().cached, 1, "a release with nobody waiting is cached");
  pool[Symbol.dispose]();
  assert.equal(pool.stats().cached, 0, "the cache went back to the free stack");
  assert.equal(pool.stats().inUse, 3);
  assert.throws(() => pool.tryAcquire(), (error: unknown) => {
    assert.ok(error instanceof DetachedError);
    assert.match(error.message, /^Cannot acquire through this pool object: it was disposed/);
    return true;
  });
  // Still valid after the end; each goes back to the pool when released.
  for (const buffer of held) {
    buffer.bytes[0] = 1;
    const packet = buffer.intoPacket(0, 1);
    packet.clone().release();
    packet.release();
  }
  assertAllFree(pool);
  pool[Symbol.dispose](); // a second dispose does nothing
  assertAllFree(pool);
  assert.throws(() => pool.detach(), TypeError, "detach stays for shared pools only");
});

Deno.test("dispose of a pool of one thread fails its waiters: acquire() and a writer's", async () => {
  const pool = new BufferPool({ bufferSize: 64, bufferCount: 1 });
  const held = take(pool);
  const flusher = new WriteFlusher(pool);
  const writer = new Writer(pool, flusher);
  const acquiring = pool.acquire();
  const writing = writer.write(new Uint8Array(8));
  const waiter = new Tracked(acquiring);
  const write = new Tracked(writing);
  await Promise.resolve();
  assert.ok(waiter.pending && write.pending);
  {
    using _scope = pool; // the end of a `using` scope is what disposes
  }
  await assert.rejects(acquiring, DetachedError);
  await assert.rejects(writing, DetachedError);
  await assert.rejects(pool.acquire(), DetachedError);
  assert.equal(pool.stats().waiters, 0);
  held.release();
  writer.close();
  flusher.close();
  for await (const batch of flusher.readable) for (const region of batch) region.release();
  assertAllFree(pool);
});

Deno.test("using an attached pool object: the end of the scope detaches it", () => {
  const pool = new BufferPool({ bufferSize: 64, bufferCount: 8, batchSize: 2, shared: true });
  let kept: PooledBuffer;
  {
    using worker = BufferPool.attach(pool.handle);
    const all: PooledBuffer[] = [];
    for (let b = worker.tryAcquire(); b !== null; b = worker.tryAcquire()) all.push(b);
    assert.equal(all.length, 8);
    kept = all.pop()!;
    for (const b of all) b.release();
    assert.ok(worker.stats().cached > 0, "some of them stay in its cache");
    assert.equal(pool.stats().workers, 2);
  }
  assert.equal(pool.stats().workers, 1);
  // tryAcquire reaches only the free stack: the worker's cache was given back.
  const mine: PooledBuffer[] = [];
  for (let b = pool.tryAcquire(); b !== null; b = pool.tryAcquire()) mine.push(b);
  assert.equal(mine.length, 7);
  kept.bytes[0] = 9; // still valid
  kept.release();
  mine.push(take(pool));
  for (const b of mine) b.release();
  assertAllFree(pool);
  pool.detach();
});

Deno.test("dispose of the creating pool object: its waiters fail, the attached ones go on", async () => {
  const pool = new BufferPool({ bufferSize: 64, bufferCount: 2, batchSize: 1, shared: true });
  const other = BufferPool.attach(pool.handle);
  const a = take(pool);
  const b = take(pool);
  const creatorWaits = pool.acquire();
  const otherWaits = other.acquire({ signal: AbortSignal.timeout(10_000) });
  pool[Symbol.dispose]();
  await assert.rejects(creatorWaits, (error: unknown) => {
    assert.ok(error instanceof DetachedError);
    assert.match(error.message, /this worker detached from the pool; attach again/);
    return true;
  });
  assert.equal(other.stats().workers, 1);
  // Released after the end, a buffer goes to the pool, and so to the other worker's waiter.
  a.release();
  const got = await otherWaits;
  assert.equal(got.bytes.length, 64);
  got.release();
  b.release();
  // The handle still lets workers attach: the memory lives on without its creator.
  const late = BufferPool.attach(pool.handle);
  assert.equal(late.stats().workers, 2);
  late.tryAcquire()!.release();
  late.detach();
  pool.detach(); // after dispose, detach does nothing
  assertAllFree(other);
  other.detach();
});

Deno.test("where SharedArrayBuffer exists, shared: true still makes a shared pool", () => {
  const pool = new BufferPool({ bufferSize: 64, bufferCount: 2, shared: true });
  assert.equal(pool.shared, true);
  assert.ok(pool.handle.block instanceof SharedArrayBuffer);
  const other = BufferPool.attach(pool.handle);
  assert.equal(pool.stats().workers, 2);
  other.detach();
  pool.detach();
});
