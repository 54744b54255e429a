// Run by tests/runtimes_test.ts in a child process: bab where TextEncoder and
// TextDecoder refuse views of shared memory, as Chromium's do. The refusal
// is installed before the library is loaded, as a browser has it from the
// start. Prints "ok <check>" or "FAIL <check>" and the error for each check;
// exits 1 if any failed.
import assert from "node:assert/strict";
import { type Check, readFlushed, runChecks } from "./_child_checks.ts";

function refuseShared(view: ArrayBufferView | undefined): void {
  if (view !== undefined && view.buffer instanceof SharedArrayBuffer) {
    throw new TypeError("The provided Uint8Array value must not be shared.");
  }
}
const { encodeInto } = TextEncoder.prototype;
TextEncoder.prototype.encodeInto = function (text: string, view: Uint8Array) {
  refuseShared(view);
  return encodeInto.call(this, text, view);
};
const { decode } = TextDecoder.prototype;
TextDecoder.prototype.decode = function (
  view?: AllowSharedBufferSource,
  options?: TextDecodeOptions,
) {
  refuseShared(ArrayBuffer.isView(view) ? view : undefined);
  return decode.call(this, view, options);
};
assert.throws(() => new TextEncoder().encodeInto("x", new Uint8Array(new SharedArrayBuffer(1))));

const bab: typeof import("../mod.ts") = await import("../mod.ts");
bab.BufferPool.defaultLeakDetection = "paranoid";

async function writeStrings(): Promise<void> {
  const pool = new bab.BufferPool({ bufferSize: 32, bufferCount: 4, shared: true });
  const flusher = new bab.WriteFlusher(pool);
  const writer = new bab.Writer(pool, flusher, { codec: bab.lengthPrefix(1) });
  // ASCII, two- three- and four-byte characters, and a lone surrogate (U+FFFD).
  const texts = ["plain", "é and ü", "€ ✓", "🙂", "lone \ud800 half", ""];
  const reading = readFlushed(flusher.readable);
  for (let round = 0; round < 4; round++) {
    for (const text of texts) await writer.writeString(text);
  }
  assert.ok(writer.tryWriteString("last"));
  writer.close();
  flusher.close();
  const expected: number[] = [];
  const encoder = new TextEncoder();
  for (let round = 0; round < 4; round++) {
    for (const text of texts) {
      const bytes = encoder.encode(text);
      expected.push(bytes.length, ...bytes);
    }
  }
  expected.push(4, ...encoder.encode("last"));
  assert.deepEqual(await reading, expected);
  assert.equal(pool.stats().inUse, 0);
  pool.detach();
}

async function consumerFailure(): Promise<void> {
  const pool = new bab.BufferPool({ bufferSize: 32, bufferCount: 2, shared: true });
  const flusher = new bab.WriteFlusher(pool);
  const writer = new bab.Writer(pool, flusher);
  // The reason crosses to the writers as UTF-8 in the flusher's shared words.
  await flusher.readable.cancel(new Error("the peer went away ✓"));
  await assert.rejects(writer.writeString("too late"), (error: unknown) => {
    assert.ok(error instanceof bab.ClosedError, String(error));
    assert.match(error.message, /the peer went away ✓/);
    return true;
  });
  assert.equal(pool.stats().inUse, 0);
  pool.detach();
}

const checks: Check[] = [
  ["writeString into a shared pool, through the copy", writeStrings],
  ["a consumer's failure reason stored in shared words and read back", consumerFailure],
];
await runChecks(checks);
