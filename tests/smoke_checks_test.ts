// The smoke checks that Node, Bun and Chromium run on the bundle
// (tools/smoke_checks.mjs) pass on the source in Deno too, worker check
// included, so that they keep up with the API between smoke runs.
import assert from "node:assert/strict";
import * as bab from "../mod.ts";
import { runChecks, runtimeName, smokeChecks } from "../tools/smoke_checks.mjs";

Deno.test("the smoke checks pass in Deno, with a module worker", async () => {
  const worker = {
    create: () =>
      new Worker(new URL("../tools/smoke_worker.mjs", import.meta.url), { type: "module" }),
    bundle: new URL("../mod.ts", import.meta.url).href,
  };
  const checks = smokeChecks(bab, { worker });
  const lines: string[] = [];
  const failures = await runChecks(checks, (line: string) => lines.push(line));
  assert.equal(failures, 0, lines.join("\n"));
  assert.equal(lines.length, 8);
  assert.ok(lines.some((line) => line.startsWith("ok   worker:")));
  assert.equal(runtimeName(), `Deno ${Deno.version.deno}`);
});

Deno.test("a smoke check that throws is reported as a failure with its error", async () => {
  const lines: string[] = [];
  const failures = await runChecks([
    ["passes", () => {}],
    ["fails", () => Promise.reject(new Error("broken on purpose"))],
  ], (line: string) => lines.push(line));
  assert.equal(failures, 1);
  assert.equal(lines[0], "ok   passes");
  assert.match(lines[1]!, /^FAIL fails\nError: broken on purpose/);
});
