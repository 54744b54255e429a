// Smoke test of the bundled library on Node or Bun:
// `node tools/node_smoke.mjs dist/bab.js`, `bun tools/node_smoke.mjs dist/bab.js`
// (the bundle comes from `deno bundle`, see the node:smoke task). Plain
// JavaScript that both run as is. The checks are tools/smoke_checks.mjs,
// which Chromium runs too; where the runtime has a web Worker (Bun), a worker
// check is added. Any failure names the check and exits non-zero; the last
// line names the runtime.
import path from "node:path";
import process from "node:process";
import { pathToFileURL } from "node:url";
import { runChecks, runtimeName, smokeChecks } from "./smoke_checks.mjs";

const MIN_NODE = 20;
/** A check that has not finished by then is taken as hung. */
const TIMEOUT_MS = 30_000;
/** How long the process may linger after the last check before that counts as a leak. */
const EXIT_GRACE_MS = 5_000;

const bundle = process.argv[2];
if (bundle === undefined) {
  console.error("Usage: node tools/node_smoke.mjs <bundle.js> (or bun instead of node)");
  process.exit(2);
}
const runtime = runtimeName();
const major = Number(process.versions.node.split(".")[0]);
if (runtime.startsWith("Node") && major < MIN_NODE) {
  console.error(`bab needs Node ${MIN_NODE} or later; this is ${runtime}`);
  process.exit(1);
}

const bundleUrl = pathToFileURL(path.resolve(bundle)).href;
const bab = await import(bundleUrl);
// Node's workers are worker_threads, not the web's: the worker check runs where Worker is global.
const worker = typeof Worker === "function"
  ? {
    create: () => new Worker(new URL("./smoke_worker.mjs", import.meta.url), { type: "module" }),
    bundle: bundleUrl,
  }
  : undefined;
const checks = smokeChecks(bab, { worker });

const watchdog = setTimeout(() => {
  console.error(`FAIL: a check did not finish within ${TIMEOUT_MS} ms`);
  process.exit(1);
}, TIMEOUT_MS);
const failures = await runChecks(checks, (line, failed) => {
  if (failed) console.error(line);
  else console.log(line);
});
clearTimeout(watchdog);
console.log(`${checks.length - failures} of ${checks.length} checks passed on ${runtime}`);
if (failures > 0) process.exit(1);
// Nothing of bab's may keep the process alive once everything is released and closed.
setTimeout(() => {
  console.error(`FAIL: the process is still running ${EXIT_GRACE_MS} ms after the last check`);
  process.exit(1);
}, EXIT_GRACE_MS).unref();
