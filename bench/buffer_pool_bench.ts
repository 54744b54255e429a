// Pool hot paths against what users do without a pool. Run: deno task bench
// Each case does OPS operations per iteration so that the harness's own cost
// per call does not blur ratios between cases of a few nanoseconds.
import { Buffer } from "node:buffer";
import { BufferPool } from "../mod.ts";

const OPS = 1000;
let sink = 0;

const pool = new BufferPool({ bufferSize: 1033, bufferCount: 1024 });

Deno.bench({
  group: "alloc-1033",
  name: "new Uint8Array(1033)",
  baseline: true,
  fn() {
    for (let i = 0; i < OPS; i++) {
      const bytes = new Uint8Array(1033);
      bytes[0] = i;
      sink += bytes[0]!;
    }
  },
});

Deno.bench({
  group: "alloc-1033",
  name: "Buffer.allocUnsafe(1033)",
  fn() {
    for (let i = 0; i < OPS; i++) {
      const bytes = Buffer.allocUnsafe(1033);
      bytes[0] = i;
      sink += bytes[0]!;
    }
  },
});

Deno.bench({
  group: "alloc-1033",
  name: "pool tryAcquire+release (cache hit)",
  fn() {
    for (let i = 0; i < OPS; i++) {
      const buffer = pool.tryAcquire()!;
      const bytes = buffer.bytes;
      bytes[0] = i;
      sink += bytes[0]!;
      buffer.release();
    }
  },
});

class Small {
  constructor(readonly a: number, readonly b: number, readonly c: number) {}
}

const held = pool.tryAcquire()!;
const packet = held.toPacket(0, 64);

Deno.bench({
  group: "packet",
  name: "allocate a small object",
  baseline: true,
  fn() {
    for (let i = 0; i < OPS; i++) {
      const small = new Small(i, 0, 64);
      sink += small.a;
    }
  },
});

Deno.bench({
  group: "packet",
  name: "packet clone+release",
  fn() {
    for (let i = 0; i < OPS; i++) {
      const copy = packet.clone();
      sink += copy.length;
      copy.release();
    }
  },
});

Deno.bench({
  group: "packet",
  name: "packet subarray+bytes+release",
  fn() {
    for (let i = 0; i < OPS; i++) {
      const part = packet.subarray(8, 40);
      sink += part.bytes.length;
      part.release();
    }
  },
});

globalThis.addEventListener("unload", () => {
  if (sink === -1) throw new Error("unreachable");
  packet.release();
  held.release();
});
