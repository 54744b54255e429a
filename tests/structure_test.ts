// Rules of the source's structure, each kept by a test:
// - _layout.ts owns every address of the pool's block: no other source file
//   computes a header, slot, ticket, holder bit or send record from the
//   layout's raw fields, so a layout change is made in one place.
// - A buffer's reference counts change through its record's methods
//   (retain, release), never by another file touching the fields, except
//   the pool, which owns them.
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

/** Code lines (not comments) of src/ files other than `allowed` that match a pattern. */
async function linesMatching(patterns: RegExp[], allowed: string[]): Promise<string[]> {
  const found: string[] = [];
  for await (const entry of Deno.readDir(new URL("../src/", import.meta.url))) {
    if (!entry.name.endsWith(".ts") || allowed.includes(entry.name)) continue;
    const text = await Deno.readTextFile(new URL(`../src/${entry.name}`, import.meta.url));
    text.split("\n").forEach((line, i) => {
      if (/^\s*(\/\/|\*)/.test(line)) return;
      for (const pattern of patterns) {
        if (pattern.test(line)) found.push(`src/${entry.name}:${i + 1}: ${line.trim()}`);
      }
    });
  }
  return found;
}

Deno.test("Only _layout.ts computes addresses in the pool's block", async () => {
  assert.deepEqual(await linesMatching(RAW, ["_layout.ts"]), []);
});

Deno.test("Only a buffer's record and its pool touch its reference counts", async () => {
  const fields = [/\._refs\b/, /\._units\b/];
  assert.deepEqual(await linesMatching(fields, ["_buffer_record.ts", "buffer_pool.ts"]), []);
});
