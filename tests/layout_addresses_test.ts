// _layout.ts owns every address of the pool's block: no other source file
// computes a header, slot, ticket, holder bit or send record from the
// layout's raw fields, so a layout change is made in one place.
import assert from "node:assert/strict";

const RAW = [
  /\bHEADER_WORDS\b/,
  /\bSLOT_WORDS\b/,
  /\.headersWord\b/,
  /\.slotsWord\b/,
  /\.ticketsWord\b/,
  /\.holdersWord\b/,
  /\.bufferStride\b/,
  />>> 5\b/,
  /& 31\b/,
  /\b3 \* i\b/,
];

Deno.test("Only _layout.ts computes addresses in the pool's block", async () => {
  const found: string[] = [];
  for await (const entry of Deno.readDir(new URL("../src/", import.meta.url))) {
    if (!entry.name.endsWith(".ts") || entry.name === "_layout.ts") continue;
    const text = await Deno.readTextFile(new URL(`../src/${entry.name}`, import.meta.url));
    text.split("\n").forEach((line, i) => {
      if (/^\s*(\/\/|\*)/.test(line)) return;
      for (const pattern of RAW) {
        if (pattern.test(line)) found.push(`src/${entry.name}:${i + 1}: ${line.trim()}`);
      }
    });
  }
  assert.deepEqual(found, []);
});
