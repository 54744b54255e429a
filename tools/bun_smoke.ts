/**
 * Smoke test of the bundled library on Bun: runs tools/node_smoke.mjs with
 * Bun and checks that it passed and that it ran on Bun.
 *
 * `deno run -A tools/bun_smoke.ts [bundle.js]`: without a bundle it makes
 * one with `deno bundle`. Bun is `$BAB_BUN`, else `bun` on PATH (.ci/run
 * installs it from npm).
 *
 * @module
 */

import { runMain } from "./_run_main.ts";

const toolsDir = new URL(".", import.meta.url);

async function makeBundle(dir: string): Promise<string> {
  const out = `${dir}/bab.js`;
  const mod = new URL("../mod.ts", toolsDir).pathname;
  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["bundle", "--quiet", "--format", "esm", "--platform", "browser", "-o", out, mod],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (code !== 0) {
    throw new Error(`deno bundle failed (exit ${code}):\n${new TextDecoder().decode(stderr)}`);
  }
  return out;
}

async function main(): Promise<number> {
  const bun = Deno.env.get("BAB_BUN") || "bun";
  const work = await Deno.makeTempDir({ prefix: "bab-bun-smoke-" });
  try {
    const bundle = Deno.args[0] ?? await makeBundle(work);
    let output;
    try {
      output = await new Deno.Command(bun, {
        args: [new URL("node_smoke.mjs", toolsDir).pathname, bundle],
        stdin: "null",
        stdout: "piped",
        stderr: "inherit",
      }).output();
    } catch (cause) {
      throw new Error(
        `Cannot start Bun (${bun}): ${
          (cause as Error).message
        }; install it with npm (npm install bun) and put it on PATH, or set BAB_BUN`,
        { cause },
      );
    }
    const out = new TextDecoder().decode(output.stdout);
    await Deno.stdout.write(output.stdout);
    if (output.code !== 0) return output.code;
    if (!/checks passed on Bun \d/.test(out)) {
      console.error("FAIL the smoke test did not report running on Bun");
      return 1;
    }
    return 0;
  } finally {
    await Deno.remove(work, { recursive: true });
  }
}

if (import.meta.main) await runMain(main);
