// What mod.ts exports is the public API: internal machinery stays out of it.
import assert from "node:assert/strict";
import * as bab from "../mod.ts";

Deno.test("mod.ts exports no internal machinery: no Chunk, no WaiterQueue, nothing named with _", () => {
  const names = Object.keys(bab);
  for (const internal of ["Chunk", "WaiterQueue", "BufferRecord"]) {
    assert.ok(!names.includes(internal), `${internal} is exported`);
  }
  assert.deepEqual(names.filter((name) => name.startsWith("_")), []);
});
