// Rules of the source's structure, each kept by a test:
// - _layout.ts owns every address of the pool's block: no other source file
//   computes a header, slot, ticket, holder bit or send record from the
//   layout's raw fields, so a layout change is made in one place.
// - A buffer's reference counts change through its record's methods
//   (retain, release, lend, share...): the counts are private to the record,
//   and the shared count's and holder bits' steps are called only by the
//   record and the worker's cache (which hands a freed buffer on).
// - No import circles among src/ files, type-only imports included: the
//   layering is the data flow, from _layout.ts up.
// - No src/ file over 460 lines.
// Files under src/nats/ (the NATS entry point's) count as src/ files.
import assert from "node:assert/strict";
import { posix } from "node:path";

const SRC = new URL("../src/", import.meta.url);

/** Every .ts file under src/, as a path relative to it ("nats/nats_subject.ts"), with its text. */
async function sources(): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  const walk = async (dir: string): Promise<void> => {
    for await (const entry of Deno.readDir(new URL(dir, SRC))) {
      const path = dir + entry.name;
      if (entry.isDirectory) await walk(`${path}/`);
      else if (entry.name.endsWith(".ts")) {
        files.set(path, await Deno.readTextFile(new URL(path, SRC)));
      }
    }
  };
  await walk("");
  return files;
}

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
  for (const [path, text] of await sources()) {
    if (allowed.includes(path)) continue;
    text.split("\n").forEach((line, i) => {
      if (/^\s*(\/\/|\*)/.test(line)) return;
      for (const pattern of patterns) {
        if (pattern.test(line)) found.push(`src/${path}:${i + 1}: ${line.trim()}`);
      }
    });
  }
  return found;
}

Deno.test("Only _layout.ts computes addresses in the pool's block", async () => {
  assert.deepEqual(await linesMatching(RAW, ["_layout.ts"]), []);
});

Deno.test("Only a buffer's record and the worker's cache step its shared count and holder bits", async () => {
  const steps = [/\b(startShared|addShared|subShared|setHolder|dropHolder|setOwner)\(/];
  assert.deepEqual(await linesMatching(steps, ["_buffer_record.ts", "_worker_cache.ts"]), []);
});

/** Each src/ file and the src/ files it imports, type-only imports included. */
async function importGraph(): Promise<Map<string, string[]>> {
  const graph = new Map<string, string[]>();
  for (const [path, text] of await sources()) {
    const dir = posix.dirname(path);
    graph.set(
      path,
      [...text.matchAll(/from "(\.\.?\/[^"]+\.ts)"/g)].map((m) => posix.join(dir, m[1]!)),
    );
  }
  return graph;
}

Deno.test("No import circles among src/ files, type-only imports included", async () => {
  const graph = await importGraph();
  const circles: string[] = [];
  // Depth-first, marking files done once every path from them was followed.
  const state = new Map<string, "open" | "done">();
  const path: string[] = [];
  const visit = (file: string) => {
    if (state.get(file) === "done") return;
    if (state.get(file) === "open") {
      circles.push([...path.slice(path.indexOf(file)), file].join(" → "));
      return;
    }
    state.set(file, "open");
    path.push(file);
    for (const next of graph.get(file) ?? []) visit(next);
    path.pop();
    state.set(file, "done");
  };
  for (const file of [...graph.keys()].sort()) visit(file);
  assert.deepEqual(circles, []);
});

Deno.test("No src/ file is over 460 lines: one concept each, readable top to bottom", async () => {
  const long: string[] = [];
  for (const [path, text] of await sources()) {
    const lines = text.split("\n").length - 1;
    if (lines > 460) long.push(`src/${path}: ${lines} lines`);
  }
  assert.deepEqual(long, []);
});
