// Every example runs, with small sizes, and exits 0: they are documentation
// that must keep working.
import assert from "node:assert/strict";

const examples: [file: string, args: string[], expect: RegExp][] = [
  ["pool_and_packets.ts", ["--messages", "20000"], /20000/],
  ["workers.ts", ["--records", "5000"], /5000 records: .* pool in use: 0/],
  ["bson_writer.ts", ["--documents", "2000"], /2000 BSON documents .* pool in use: 0/],
  ["framer_tcp.ts", ["--lines", "2000"], /2000 lines framed, echoed and checked; pool in use: 0/],
  ["bus.ts", ["--messages", "100000", "--workers", "3"], /OK: every message arrived once/],
];

for (const [file, args, expect] of examples) {
  Deno.test(`examples/${file} runs and passes its own checks`, async () => {
    const path = new URL(`../examples/${file}`, import.meta.url).pathname;
    const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", path, ...args],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const out = new TextDecoder().decode(stdout);
    assert.equal(code, 0, `${file} exited ${code}:\n${out}\n${new TextDecoder().decode(stderr)}`);
    assert.match(out, expect);
  });
}
