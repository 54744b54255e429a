// The README's promises about itself: the worker example it shows is the
// one in examples/quickstart_workers/, word for word, and that one runs,
// prints what the README says, and exits.
import assert from "node:assert/strict";

const root = new URL("../", import.meta.url);
const readme = await Deno.readTextFile(new URL("README.md", root));

/** The bodies of the README's fenced blocks marked `ts ignore`. */
function ignoredBlocks(text: string): string[] {
  return [...text.matchAll(/```ts ignore\n([\s\S]*?)```/g)].map((match) => match[1]!);
}

Deno.test("The README's worker example is examples/quickstart_workers/, word for word", async () => {
  const blocks = ignoredBlocks(readme);
  for (const name of ["main.ts", "worker.ts"]) {
    const file = await Deno.readTextFile(new URL(`examples/quickstart_workers/${name}`, root));
    assert.ok(
      blocks.includes(file),
      `README shows ${name} as it is in examples/quickstart_workers/`,
    );
  }
});

Deno.test("The worker example runs, prints what the README says, and exits", async () => {
  const main = new URL("examples/quickstart_workers/main.ts", root).pathname;
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", main],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const out = new TextDecoder().decode(stdout);
  assert.equal(code, 0, new TextDecoder().decode(stderr));
  assert.match(out, /worker got 1,2,3/);
  assert.match(out, /buffers in use: 0/);
  assert.match(readme, /prints\s+`worker got 1,2,3`\s+and\s+`buffers in use: 0`,\s+and\s+exits/);
});

Deno.test("The published README links nothing by a path relative to the repository", () => {
  // JSR shows the README without docs/ or examples/: links must be absolute.
  const relative = [...readme.matchAll(/\]\(([^)]+)\)/g)].map((match) => match[1]!)
    .filter((target) => !/^(https?:|mailto:|#)/.test(target));
  assert.deepEqual(relative, []);
});
