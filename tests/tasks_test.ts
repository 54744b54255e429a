// `deno task` lists every task with a description: each task in deno.json
// is an object with a non-empty description and a command.
import assert from "node:assert/strict";

Deno.test("Every task in deno.json has a description and a command", async () => {
  const config = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url)));
  const tasks = Object.entries(config.tasks as Record<string, unknown>);
  assert.ok(tasks.length > 0);
  for (const [name, task] of tasks) {
    assert.equal(typeof task, "object", `task ${name} is a bare string, with no description`);
    const { description, command } = task as { description?: unknown; command?: unknown };
    assert.ok(typeof description === "string" && description.length > 0, `task ${name}`);
    assert.ok(typeof command === "string" && command.length > 0, `task ${name}`);
  }
});
